"""Graph IR -> nn.Module whose submodule tree mirrors the spec's scopes.

Every scope (stem, stages.0, stages.0.blocks.1, shortcut, ...) becomes a module. A scope
with one input and one output gets a generated class whose `forward` is straight-line
code over its members: `t7 = self.conv1(x)`, `t8 = F.relu(t7)`, `t9 = self.shortcut(x)`.
A scope with several inputs or outputs is a container emitted inline into its parent's
forward, its modules reached by attribute path.

Generated classes are named after what they are (`ResNet50` for the root, `Bottleneck` for
a block, `Stem`, `Stages`, `Shortcut`) and carry their own source: pickling an instance
stores that source, and unpickling makes the class again (`generated_class`), so
`torch.save(model)` loads in a fresh process. Each distinct class's source is registered in
linecache under its own file name, so tracebacks, `inspect.getsource` and TorchScript see it.
The emitter is linear in the graph's size (times the scope depth).
"""
from __future__ import annotations

import builtins
import itertools
import keyword
import linecache
import re
import threading
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from ..ir.graph import Graph
from .torch_ops import CODE_GLOBALS, lower

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Well-known spellings of family names, for class names (`resnet50` -> `ResNet50`).
_SPELLINGS = {
    "resnet": "ResNet", "resnext": "ResNeXt", "convnext": "ConvNeXt", "convnextv2": "ConvNeXtV2",
    "mobilenet": "MobileNet", "mobilevit": "MobileViT", "levit": "LeViT", "vit": "ViT", "deit": "DeiT",
    "efficientnet": "EfficientNet", "regnet": "RegNet", "densenet": "DenseNet", "vgg": "VGG",
    "swin": "Swin", "mlp": "MLP", "se": "SE", "fpn": "FPN", "ghostnet": "GhostNet", "mnasnet": "MNASNet",
    "shufflenet": "ShuffleNet", "squeezenet": "SqueezeNet", "poolformer": "PoolFormer",
    "efficientformer": "EfficientFormer", "repvgg": "RepVGG", "fastvit": "FastViT", "coatnet": "CoAtNet",
    "maxvit": "MaxViT", "edgenext": "EdgeNeXt", "inception": "Inception", "alexnet": "AlexNet",
}


class ArchModule(nn.Module):
    """The root of an emitted model: `archdsl_info` says what spec it came from,
    `archdsl_graph` is the IR it was emitted from."""

    # not TorchScript attributes: the graph and the info are for archdsl, not the model
    __jit_ignored_attributes__ = ["archdsl_info", "archdsl_graph", "archdsl_passes"]

    def __getstate__(self):
        state = dict(self.__dict__)
        graph = state.get("archdsl_graph")
        if graph is not None:  # the module's own tensors are pickled once, not again in the IR
            state["archdsl_graph"] = _without_tensors(graph)
        return state

    def reset_classifier(self, num_classes: int):
        """timm's `reset_classifier`: a new `head.fc` for `num_classes` (0: none; the model
        returns the pooled features). See `archdsl.finetune`."""
        from ..finetune import reset_classifier

        return reset_classifier(self, num_classes)


class Scope(nn.Module):
    """A container module (a scope emitted inline into its parent's forward); generated
    containers subclass it under the scope's own name."""


def _without_tensors(graph: Graph) -> Graph:
    if not any("tensors" in graph.node(nid).meta for nid in graph.node_ids()):
        return graph
    graph = graph.copy()
    for nid in graph.node_ids():
        graph.node(nid).meta.pop("tensors", None)
    return graph


# ----------------------------------------------------------------------------- names
def _ref(base: str, parts: list[str]) -> str:
    """Attribute access code: `self.stages` then `getattr(..., '0')` for numeric names."""
    expr = base
    for p in parts:
        plain = _IDENT.match(p) and not keyword.iskeyword(p)
        expr = f"{expr}.{p}" if plain else f"getattr({expr}, {p!r})"
    return expr


def camel(name: str) -> str:
    """`inverted_residual` -> `InvertedResidual`, `resnet50` -> `ResNet50`, `levit_128s` -> `LeViT128S`."""
    out = []
    for word in name.split("_"):
        m = re.match(r"[A-Za-z]+", word)
        letters = m.group(0) if m else ""
        head = _SPELLINGS.get(letters.lower(), letters[:1].upper() + letters[1:])
        out.append(head + word[len(letters):].upper())
    text = "".join(out)
    return text if text.isidentifier() else "Model" + text


def class_name(kind: str, path: str, model: str) -> str:
    """The class of a scope: the model's name at the root, the block's name for a block,
    else the scope's own name (`stem` -> `Stem`); items of a loop or repeat are singular
    (`stages.0` -> `Stage`)."""
    if path == "":
        return camel(model) or "Model"
    if kind.startswith("block "):
        return camel(kind.split(" ", 1)[1]) or "Block"
    comps = [c for c in path.split(".") if not c.isdigit()] or ["scope"]
    base = comps[-1]
    if kind in ("loop item", "repeat item") and base.endswith("s") and len(base) > 3:
        base = base[:-1]
    return camel(base) or "Scope"


# ----------------------------------------------------------------------------- classes
_CODE_GLOBALS = {"torch": torch, "F": F, **CODE_GLOBALS}
_BASES = {"root": ArchModule, "module": nn.Module, "container": Scope}
_classes: "weakref.WeakValueDictionary[tuple, type]" = weakref.WeakValueDictionary()
_class_lock = threading.Lock()
_serial = itertools.count(1)


def generated_class(name: str, base: str, src: str) -> type:
    """The generated class `name` (base "root", "module" or "container") whose forward is
    `src` ("" for a container): one class per distinct (name, base, source), shared by
    every module that needs it, and made again from these three when unpickled."""
    key = (name, base, src)
    with _class_lock:
        cls = _classes.get(key)
        if cls is None:
            cls = _make_class(name, base, src)
            _classes[key] = cls
    return cls


def _make_class(name: str, base: str, src: str) -> type:
    body = {"__module__": "archdsl.generated", "__qualname__": name, "archdsl_source": src,
            "__reduce_ex__": _reduce_generated}
    if src:
        # a file name of its own: a second model never replaces this class's source
        filename = f"<archdsl-generated {name} #{next(_serial)}>"
        namespace: dict = {}
        exec(compile(src, filename, "exec"), dict(_CODE_GLOBALS), namespace)  # noqa: S102 - our own generated code
        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
        body["forward"] = namespace["forward"]
    cls = type(name, (_BASES[base],), body)
    if src:
        weakref.finalize(cls, linecache.cache.pop, filename, None)
    return cls


def _reduce_generated(self, protocol):
    """Pickle a generated module as (its class's name, base and source) + its state."""
    cls = type(self)
    base = next(k for k, b in _BASES.items() if issubclass(cls, b) and b in cls.__bases__)
    return _new_generated, (cls.__name__, base, cls.archdsl_source), self.__getstate__()


def _new_generated(name: str, base: str, src: str) -> nn.Module:
    cls = generated_class(name, base, src)
    return cls.__new__(cls)


# ----------------------------------------------------------------------------- emitter
class _Emitter:
    """One pass over the nodes to group them by region, one per region over its own nodes:
    O(nodes x scope depth) overall."""

    def __init__(self, graph: Graph):
        self.graph = graph
        g = graph
        self.order = [n.id for n in g if n.op != "input"]
        self.ins = {nid: g.inputs(nid) for nid in self.order}
        self.users = {nid: g.users(nid) for nid in self.order}
        self.parts = {nid: g.node(nid).scope.split(".") for nid in self.order}
        # every scope that holds nodes, parents first, in order of first appearance, with the
        # nodes inside it at any depth, in order
        self.members: dict[str, list[int]] = {"": list(self.order)}
        for nid in self.order:
            parts = self.parts[nid]
            for i in range(1, len(parts)):
                self.members.setdefault(".".join(parts[:i]), []).append(nid)
        self.callable = {r: self._interface(r) for r in self.members}
        self._lowered: dict = {}

    @property
    def regions(self) -> list[str]:
        return list(self.members)

    def _lower(self, nid: int):
        """Each node is lowered once (its module built once, holding the node's tensors)."""
        if nid not in self._lowered:
            self._lowered[nid] = lower(self.graph.node(nid), self.graph.in_shapes(nid))
        return self._lowered[nid]

    def _interface(self, region: str) -> tuple[int, int] | None:
        """(input node, output node) if the region has exactly one of each, else None."""
        g = self.graph
        if region == "":
            return g.input, g.output
        inside = set(self.members[region])
        ext_in = {src for nid in inside for src in self.ins[nid] if src not in inside}
        leaving = set(g.output_nodes())  # a backbone has several outputs
        outs = {nid for nid in inside if nid in leaving or any(u not in inside for u in self.users[nid])}
        if len(ext_in) == 1 and len(outs) == 1:
            return ext_in.pop(), outs.pop()
        return None

    def build(self) -> ArchModule:
        root = self._region_module("")
        modules: dict[str, nn.Module] = {"": root}
        for nid in self.order:
            node = self.graph.node(nid)
            parts = self.parts[nid]
            for i in range(1, len(parts)):
                path = ".".join(parts[:i])
                if path not in modules:
                    modules[path] = self._region_module(path)
                    modules[".".join(parts[: i - 1])].add_module(parts[i - 1], modules[path])
            lowering = self._lower(nid)
            if lowering.module is not None:
                modules[node.parent_scope].add_module(node.name, lowering.module)
        return root

    def region_class(self, region: str) -> tuple[str, str, str]:
        """(class name, base, forward source) of a region's module."""
        kind = self.graph.scopes.get(region, "section")
        name = class_name(kind, region, self.graph.name)
        if self.callable[region] is None:
            return name, "container", ""
        return name, "root" if region == "" else "module", self.forward_source(region)

    def _region_module(self, region: str) -> nn.Module:
        return generated_class(*self.region_class(region))()

    def steps(self, region: str):
        """The statements of a callable region's forward, in order: ("call", sub, rel parts,
        input node, output node) for a callable sub-scope, ("node", nid, rel parts) for a node."""
        depth = 0 if region == "" else region.count(".") + 1
        done: set[str] = set()
        for nid in self.members[region]:
            parts = self.parts[nid]
            rel = parts[depth:]
            # descend through inline scopes until a callable scope or the node itself
            k = 1
            sub = None
            while k < len(rel):
                sub = ".".join(parts[: depth + k])
                if self.callable.get(sub) is not None:
                    break
                k += 1
            if k < len(rel):
                if sub not in done:
                    done.add(sub)
                    s_in, s_out = self.callable[sub]
                    yield ("call", sub, rel[:k], s_in, s_out)
                continue
            yield ("node", nid, rel)

    def forward_source(self, region: str) -> str:
        """The forward of a callable region; variables are named after the scopes they hold
        (`conv1`, `shortcut`, `branch1_conv1`), so identical scopes get identical source."""
        g = self.graph
        inp, out = self.callable[region]
        var = {inp: "x"}
        lines = []
        aux_names = set(g.aux_outputs) if region == "" else set()
        training = []  # the auxiliary heads' statements: computed only in training (see below)
        for step in self.steps(region):
            target = training if step[2][0] in aux_names else lines
            if step[0] == "call":
                _, sub, rel, s_in, s_out = step
                var[s_out] = _var_name(rel)
                target.append(f"    {var[s_out]} = {_ref('self', rel)}({var[s_in]})")
                continue
            _, nid, rel = step
            args = [var[i] for i in self.ins[nid]]
            code = self._lower(nid).code.format(*args, m=_ref("self", rel))
            var[nid] = _var_name(rel)
            target.append(f"    {var[nid]} = {code}")
        if region == "" and g.meta.get("memory_format") == "channels_last":
            lines.insert(0, "    x = x.contiguous(memory_format=torch.channels_last)")
        if region == "" and g.meta.get("fixed_resolution"):  # see archdsl/resolution.py
            h, w, message = g.meta["fixed_resolution"]
            lines.insert(0, f"    check_resolution(x, {h}, {w}, {message!r})")
        if aux_names:  # in training, (main, aux outputs from the last declared to the first), as
            # torchvision's GoogLeNetOutputs(logits, aux_logits2, aux_logits1); else the main output
            outs = ", ".join([var[out]] + [var[o] for o in reversed(g.aux_outputs.values())])
            lines += ["    if self.training:"] + ["    " + t for t in training] + [f"        return ({outs})"]
        if region == "" and g.outputs is not None:  # a backbone: the list of its feature maps
            lines.append("    return [" + ", ".join(var[o] for o in g.outputs) + "]")
        else:
            lines.append(f"    return {var[out]}")
        signature = "def forward(self, x):"
        if aux_names:  # TorchScript needs the two return types declared (else: a type error)
            outs = ", ".join(["torch.Tensor"] * (len(aux_names) + 1))
            signature = f"def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[{outs}]:"
        return signature + "\n" + "\n".join(lines) + "\n"


_RESERVED = frozenset({"x", "self", "torch", "F", "nn", "math", "itertools", *CODE_GLOBALS, *dir(builtins)})


def _var_name(rel: list[str]) -> str:
    """A local variable for the value of the scope `rel` (relative to the forward's own scope)."""
    name = "_".join(rel)
    if name[:1].isdigit():
        name = "item" + name if len(rel) == 1 else name
    if name[:1].isdigit() or not name.isidentifier():
        name = "t_" + re.sub(r"\W", "_", name)
    if keyword.iskeyword(name) or name in _RESERVED:
        name += "_"
    return name


def emit_module(graph: Graph, info: dict | None = None) -> ArchModule:
    """Build the nn.Module for a checked graph: parameters initialised by torch's defaults, or
    the nodes' own `meta["tensors"]` where the graph carries them (see `archdsl.passes`).
    The graph is kept as `module.archdsl_graph` (what `archdsl.optimize` and `emit_fx` start from)."""
    module = _Emitter(graph).build()
    if graph.meta.get("memory_format") == "channels_last":
        module.to(memory_format=torch.channels_last)
    module.archdsl_info = dict(info or {}, model=graph.name, family=graph.family)
    module.archdsl_graph = graph
    return module


def generated_source(module: nn.Module) -> dict[str, str]:
    """The generated forward source of each module class in `module`, by qualified name."""
    out = {}
    for name, sub in module.named_modules():
        src = type(sub).__dict__.get("archdsl_source")
        if src:
            out[name or "(root)"] = src
    return out


__all__ = ["ArchModule", "Scope", "camel", "class_name", "emit_module", "generated_class", "generated_source"]
