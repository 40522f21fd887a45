"""`import_weights`: reference weights into an emitted module, checked whole, then copied: all or nothing."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import ArchWeightsError
from .checkpoint import read_weights
from .mapping import Mapping, ScopeIndex, mapping_path, read_mapping, split_tensors

_OPTIONAL_TARGETS = ("num_batches_tracked",)  # counters a checkpoint may leave out


def load_mapping(module, source: str = "hf") -> Mapping:
    info = getattr(module, "archdsl_info", None) or {}
    family_file = info.get("family_file")
    if not family_file:
        raise ArchWeightsError("this module was not built from a family, so no weight mapping applies",
                               hint="models written inline have no reference layout; load_state_dict directly")
    return read_mapping(mapping_path(family_file), source)


def map_keys(mapping: Mapping, source_keys, target_keys) -> tuple[dict[str, str], list[str]]:
    """Source key -> our key for every mappable key, and the source keys no rule maps."""
    targets = set(target_keys)
    scopes = ScopeIndex(targets)  # for `{i:PATTERN}` targets
    mapped, unmapped = {}, []
    for src_prefix, dst_prefix in mapping.in_order:  # zipped in state-dict order
        mine = [k for k in target_keys if k.startswith(dst_prefix)]
        theirs = [k for k in source_keys if k.startswith(src_prefix) and not any(p.match(k) for p in mapping.ignore)]
        mapped.update(zip(theirs, mine))
    for key in source_keys:
        if key in mapped or any(p.match(key) for p in mapping.ignore):
            continue
        out = _apply_rules(mapping, key, scopes, targets)
        if out is None:  # an HF backbone (ResNetBackbone) holds the base model's keys without its prefix
            out = next((o for p in _model_prefixes(mapping) if (o := _apply_rules(mapping, p + key, scopes, targets))),
                       None)
        if out is not None:
            mapped[key] = out
        else:
            unmapped.append(key)
    return mapped, unmapped


def _apply_rules(mapping: Mapping, key: str, scopes, targets: set[str]) -> str | None:
    for rule in mapping.rules:
        out = rule.apply(key, scopes)
        if out is not None and out in targets:
            return out
    return None


def _model_prefixes(mapping: Mapping) -> list[str]:
    """The HF base-model prefixes of the rules' sources (`resnet.`, `convnext.`)."""
    if mapping.source != "hf":
        return []
    return list(dict.fromkeys(r.source.split(".", 1)[0] + "." for r in mapping.rules if "." in r.source
                              and not r.source.startswith("classifier")))


@dataclass
class ImportReport:
    """What `import_weights(..., strict=False)` did, by our tensor names: `loaded` (names),
    `adapted` (name -> how, e.g. the first conv summed over RGB for `in_chans=1`), `skipped`
    (name -> why it was not loaded: `head.fc.weight: 1000x2048 in the checkpoint, 10x2048 in
    the model`), `missing` (ours that nothing filled) and `unmapped` (checkpoint keys no rule
    maps)."""

    source: str
    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.skipped or self.missing or self.unmapped)

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors from {self.source}"]
        lines += [f"adapted {k}: {v}" for k, v in self.adapted.items()]
        lines += [f"not loaded {k}: {v}" for k, v in self.skipped.items()]
        lines += [f"not filled {k}: nothing in the checkpoint maps to it" for k in self.missing]
        lines += [f"unused {k}: no rule maps it" for k in self.unmapped]
        return "\n".join(lines)


def import_weights(module, weights, source: str = "hf", strict: bool = True, allow_downcast: bool = False):
    """Load a reference implementation's weights into a module emitted by archdsl: all or nothing.

    Everything is checked before anything is copied (keys, shapes, dtypes, that every tensor
    has data); when the check fails the module is left unchanged.

    Args:
        module: built by `archdsl.build` (on a real device, not "meta") from a spec whose
            family has a mapping for `source`.
        weights: the reference's `state_dict()`, the reference model itself, or a checkpoint
            path (.safetensors, or .pt/.pth read with `torch.load(weights_only=True)`).
        source: "hf", "torchvision" or "timm", as the family's mapping file provides.
        strict: True: every tensor of both sides accounted for, else an error listing what is
            not. False (fine-tuning, e.g. `classes=10`): load what matches and return a report
            naming, by our tensor names, what was not loaded and why.
        allow_downcast: accept float tensors of a wider type than the module's (float64 into
            float32); otherwise only lossless casts are made (float16 into float32).

    A first conv built for other input channels (`in_chans=1`) is adapted from the RGB
    weights as timm does (summed over RGB for one channel, tiled and rescaled otherwise).

    Returns:
        The module (strict), or an `ImportReport` (strict=False).

    Raises:
        ArchWeightsError: what cannot be loaded, by name; the module is unchanged.
    """
    import torch

    tensors = read_weights(weights)
    mapping = load_mapping(module, source)
    tensors = split_tensors(mapping, tensors)  # fused tensors (timm's qkv) cut into parts
    ours = module.state_dict(keep_vars=True)
    on_meta = [k for k, v in ours.items() if v.is_meta]
    if on_meta:
        raise ArchWeightsError(f"the module's tensors are on the meta device ({len(on_meta)} of them, e.g. "
                               f"{on_meta[0]}): there is nowhere to load weights into",
                               hint="build it on a real device: archdsl.build(..., device='cpu')")
    mapped, unmapped = map_keys(mapping, tensors.keys(), ours.keys())
    report = ImportReport(source, unmapped=list(unmapped))
    first_convs = _input_convs(module)
    new: dict[str, torch.Tensor] = {}
    for src, dst in mapped.items():
        tensor, want = tensors[src], ours[dst]
        if dst in new:
            report.skipped[dst] = f"{src} maps onto it too (already filled)"
            continue
        why = _dtype_problem(tensor.dtype, want.dtype, allow_downcast)
        if why:
            report.skipped[dst] = f"{src} is {why}"
            continue
        if tensor.shape != want.shape:
            adapted = _fit(tensor, want.shape, dst in first_convs)
            if adapted is None:
                report.skipped[dst] = f"{_dims(tensor.shape)} in the checkpoint, {_dims(want.shape)} in the model"
                continue
            tensor, how = adapted
            if how:
                report.adapted[dst] = how
        new[dst] = tensor
    report.missing = [k for k in ours if k not in new and k not in report.skipped
                      and not k.endswith(_OPTIONAL_TARGETS)]
    if strict and not report.complete:
        problems = []
        if report.unmapped:
            problems.append(f"{len(report.unmapped)} checkpoint tensors map to nothing:" + _listing(report.unmapped))
        if report.skipped:
            problems.append(f"{len(report.skipped)} tensors cannot be loaded:" +
                            _listing([f"{k}: {v}" for k, v in report.skipped.items()]))
        if report.missing:
            problems.append(f"{len(report.missing)} module tensors are not filled:" + _listing(report.missing))
        raise ArchWeightsError(f"cannot load {source} weights ({mapping.reference}) into "
                               f"{module.archdsl_info.get('model')}; nothing was loaded:\n  " + "\n  ".join(problems),
                               hint="check that the spec and the reference are the same variant; to fine-tune "
                                    "with another head, import_weights(..., strict=False) loads what matches")
    with torch.no_grad():
        for key, tensor in new.items():
            ours[key].copy_(tensor)
    report.loaded = list(new)
    return module if strict else report


def _dtype_problem(have, want, allow_downcast: bool) -> str | None:
    """Why a tensor of dtype `have` cannot fill one of `want`, or None."""
    import torch

    if want.is_floating_point:
        if not have.is_floating_point:
            return f"{str(have).replace('torch.', '')}, not a floating-point tensor"
        if torch.promote_types(have, want) != want and not allow_downcast:
            return (f"{str(have).replace('torch.', '')}, which {str(want).replace('torch.', '')} cannot hold "
                    f"exactly (allow_downcast=True accepts it)")
        return None
    if have.is_floating_point or have.is_complex or (have == torch.bool) != (want == torch.bool):
        return f"{str(have).replace('torch.', '')}, not {str(want).replace('torch.', '')}"
    return None


def _fit(tensor, want, first_conv: bool):
    """(tensor in the shape `want`, how it was adapted or None), or None when it does not fit."""
    # only the layout of singleton dims may differ ([1, 1, 1, C] gamma vs [C])
    if tensor.numel() == math.prod(want) and [d for d in tensor.shape if d != 1] == [d for d in want if d != 1]:
        return tensor.reshape(want), None
    if first_conv and tensor.dim() == 4 and len(want) == 4 and tensor.shape[0] == want[0] \
            and tensor.shape[2:] == want[2:] and tensor.shape[1] == 3:
        return adapt_input_conv(tensor, want[1]), f"input channels 3 -> {want[1]} (timm's adapt_input_conv)"
    return None


def adapt_input_conv(weight, in_chans: int):
    """timm's `adapt_input_conv`: RGB conv weights for `in_chans` inputs: summed over RGB for
    one channel; else RGB tiled to `in_chans` and scaled by 3 / in_chans."""
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeat = -(-in_chans // 3)
    return weight.repeat(1, repeat, 1, 1)[:, :in_chans] * (3 / in_chans)


def _input_convs(module) -> set[str]:
    """The weight names of the convs that read the model's input."""
    graph = getattr(module, "archdsl_graph", None)
    if graph is None or graph.input is None or graph.input not in graph:
        return set()
    return {f"{graph.node(n).scope}.weight" for n in graph.users(graph.input)
            if graph.node(n).op in ("conv", "conv_act", "conv_add")}


def _dims(shape) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def _listing(items: list[str], limit: int = 12) -> str:
    shown = "\n    ".join(items[:limit])
    more = f"\n    ... and {len(items) - limit} more" if len(items) > limit else ""
    return "\n    " + shown + more
