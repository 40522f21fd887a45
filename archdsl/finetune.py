"""Fine-tuning helpers on any built model, by scope name (`stem`, `stages.0`, `head`).

    model = archdsl.build("resnet50", classes=10)
    report = archdsl.import_weights(model, ref_state_dict, source="hf", strict=False)
    archdsl.freeze(model, "stem", "stages")            # the backbone
    opt = torch.optim.SGD(archdsl.param_groups(model, {"stages.3": 1e-3, "head": 1e-2}), lr=1e-4)

`reset_classifier(model, n)` (also `model.reset_classifier(n)`, timm's name) gives the model
a new `head.fc` for `n` classes, or none for `n = 0` (the model returns pooled features);
LeViT's `head.fc` is its two averaged heads, replaced together as timm does.
"""
from __future__ import annotations

from typing import Iterable

from .errors import ArchNameError
from .features import CLASSIFIER, classifier_nodes


def _scopes(model) -> set[str]:
    return {name for name, _ in model.named_modules() if name}


def _check_scopes(model, scopes: Iterable[str]) -> list[str]:
    known = _scopes(model)
    scopes = list(scopes)
    for s in scopes:
        if s not in known:
            top = sorted({n.split(".")[0] for n in known})
            raise ArchNameError(f"the model has no scope '{s}'", None,
                                f"scopes are module paths such as {', '.join(top)} (and stages.0, head.fc, ...)")
    return scopes


def _under(name: str, scope: str) -> bool:
    return name == scope or name.startswith(scope + ".")


def freeze(model, *scopes: str, keep: Iterable[str] = ()):
    """Stop gradients for the parameters under `scopes` (all when none is given), except those
    under `keep`: `freeze(model, keep=["head"])` trains the head only. Returns the model."""
    scopes, keep = _check_scopes(model, scopes), _check_scopes(model, keep)
    for name, p in model.named_parameters():
        if (not scopes or any(_under(name, s) for s in scopes)) and not any(_under(name, k) for k in keep):
            p.requires_grad_(False)
    return model


def unfreeze(model, *scopes: str):
    """Let gradients flow again to the parameters under `scopes` (all when none is given)."""
    scopes = _check_scopes(model, scopes)
    for name, p in model.named_parameters():
        if not scopes or any(_under(name, s) for s in scopes):
            p.requires_grad_(True)
    return model


def param_groups(model, lrs: dict[str, float], **options) -> list[dict]:
    """torch.optim parameter groups by scope: each trainable parameter joins the group of the
    longest scope of `lrs` it is under (`{"stages.3": 1e-3, "head": 1e-2}`), with that learning
    rate; the rest form a first group with the optimizer's default. `options` (weight_decay,
    ...) go into every group. Frozen parameters are left out."""
    _check_scopes(model, lrs)
    groups: dict[str | None, list] = {None: []}
    groups.update({s: [] for s in lrs})
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        owners = [s for s in lrs if _under(name, s)]
        groups[max(owners, key=len) if owners else None].append(p)
    out = [dict(params=groups[None], **options)] if groups[None] else []
    out += [dict(params=ps, lr=lrs[s], **options) for s, ps in groups.items() if s is not None and ps]
    return out


def reset_classifier(model, num_classes: int):
    """A new, freshly initialised classifier `head.fc` for `num_classes` (0: no classifier, the
    model returns what fed it, the pooled features). The model's graph follows, so
    `archdsl.optimize` and `emit_fx` see the new head. Returns the model.

    `head.fc` is a linear layer, or a scope (LeViT's distilled head averages two batch norm +
    linear heads): as timm's LeViT resets `head` and `head_dist`, every linear in it gets
    `num_classes` outputs and its other layers start afresh."""
    from torch import nn

    from .ir.ops import OPS

    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ArchNameError(f"num_classes must be a whole number >= 0, got {num_classes!r}", None)
    graph = getattr(model, "archdsl_graph", None)
    nodes = classifier_nodes(graph) if graph is not None else []
    if not nodes:
        raise ArchNameError(f"this model has no classifier '{CLASSIFIER}' to reset", None,
                            "reset_classifier needs the family's classifier to be `linear(classes) as fc` in `head`")
    head = model.get_submodule("head")
    graph = graph.copy()
    inside = {n.id for n in nodes}
    if num_classes == 0:
        head.fc = nn.Identity()
        # what fed the classifier now feeds what read it (or is the output)
        src = next(i for n in nodes for i in graph.inputs(n.id) if i not in inside)
        graph.replace_all_uses_with(nodes[-1].id, src)
        graph.keep_only(set(graph.node_ids()) - inside)
    else:
        head.fc = _fresh(head.fc, num_classes)
        for node in nodes:  # in order: each node's shape from its (new) inputs'
            attrs = node.attrs.model_copy(update={"out": num_classes}) if node.op == "linear" else node.attrs
            graph.replace_node(node.id, attrs=attrs, shape=OPS[node.op].infer(attrs, graph.in_shapes(node.id)))
    model.archdsl_graph = graph
    model.archdsl_info["output_shape"] = list(graph.node(graph.output).shape.dims)
    return model


def _fresh(module, num_classes: int):
    """`module` with a new linear layer of `num_classes` outputs for each of its linears, and
    its other layers' parameters (and batch-norm statistics) reset."""
    from torch import nn

    if isinstance(module, nn.Linear):
        p = module.weight
        return nn.Linear(module.in_features, num_classes, bias=module.bias is not None, device=p.device,
                         dtype=p.dtype)
    for name, child in module.named_children():
        setattr(module, name, _fresh(child, num_classes))
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
    return module


__all__ = ["freeze", "unfreeze", "param_groups", "reset_classifier"]
