"""Graph IR -> nn.Module whose submodule tree mirrors the spec's scopes.

Every scope (stem, stages.0, stages.0.blocks.1, shortcut, ...) becomes a module. A scope
with one input and one output gets a generated class whose `forward` is straight-line
code over its members: `t7 = self.conv1(x)`, `t8 = F.relu(t7)`, `t9 = self.shortcut(x)`.
A scope with several inputs or outputs is emitted inline into its parent's forward, its
modules reached by attribute path. Generated source is registered with linecache, so
tracebacks and `inspect.getsource` show it.
"""
from __future__ import annotations

import keyword
import linecache
import re

import torch
import torch.nn.functional as F
from torch import nn

from ..ir.graph import Graph
from .torch_ops import CODE_GLOBALS, lower

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ArchModule(nn.Module):
    """The root of an emitted model; `archdsl_info` says what spec it came from."""

    archdsl_info: dict
    archdsl_graph: Graph  # the IR the module was emitted from

    def reset_classifier(self, num_classes: int):
        """timm's `reset_classifier`: a new `head.fc` for `num_classes` (0: none; the model
        returns the pooled features). See `archdsl.finetune`."""
        from ..finetune import reset_classifier

        return reset_classifier(self, num_classes)


class Scope(nn.Module):
    """A scope emitted inline into its parent's forward: a container of modules only."""


def _ref(base: str, parts: list[str]) -> str:
    """Attribute access code: `self.stages` then `getattr(..., '0')` for numeric names."""
    expr = base
    for p in parts:
        plain = _IDENT.match(p) and not keyword.iskeyword(p)
        expr = f"{expr}.{p}" if plain else f"getattr({expr}, {p!r})"
    return expr


def _class_name(kind: str, path: str) -> str:
    if kind.startswith("block "):
        base = kind.split(" ", 1)[1]
    else:
        comps = [c for c in path.split(".") if not c.isdigit()] or ["model"]
        base = comps[-1]
    return "".join(w.capitalize() for w in base.split("_")) or "Scope"


class _Emitter:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.order = [n.id for n in graph if n.op != "input"]
        self.index = {nid: i for i, nid in enumerate(self.order)}
        self.regions = self._regions()
        self.callable = {r: self._interface(r) for r in self.regions}
        self._classes: dict[str, type] = {}
        self._lowered: dict = {}

    def _lower(self, nid: int):
        """Each node is lowered once (its module built once, holding the node's tensors)."""
        if nid not in self._lowered:
            self._lowered[nid] = lower(self.graph.node(nid), self.graph.in_shapes(nid))
        return self._lowered[nid]

    def _regions(self) -> list[str]:
        """Every scope that holds nodes, parents first, in order of first appearance."""
        seen: dict[str, None] = {"": None}
        for nid in self.order:
            parts = self.graph.node(nid).scope.split(".")[:-1]
            for i in range(1, len(parts) + 1):
                seen.setdefault(".".join(parts[:i]), None)
        return list(seen)

    def _interface(self, region: str) -> tuple[int, int] | None:
        """(input node, output node) if the region has exactly one of each, else None."""
        g = self.graph
        if region == "":
            return g.input, g.output
        prefix = region + "."
        inside = {nid for nid in self.order if g.node(nid).scope.startswith(prefix)}
        ext_in = {src for nid in inside for src in g.inputs(nid) if src not in inside}
        leaving = set(g.output_nodes())  # a backbone has several outputs
        outs = {nid for nid in inside if nid in leaving or any(u not in inside for u in g.users(nid))}
        if len(ext_in) == 1 and len(outs) == 1:
            return ext_in.pop(), outs.pop()
        return None

    def build(self) -> ArchModule:
        root = self._region_module("")
        modules: dict[str, nn.Module] = {"": root}
        for nid in self.order:
            node = self.graph.node(nid)
            parts = node.scope.split(".")
            for i in range(1, len(parts)):
                path = ".".join(parts[:i])
                if path not in modules:
                    modules[path] = self._region_module(path)
                    modules[".".join(parts[: i - 1])].add_module(parts[i - 1], modules[path])
            lowering = self._lower(nid)
            if lowering.module is not None:
                modules[node.parent_scope].add_module(node.name, lowering.module)
        return root

    def _region_module(self, region: str) -> nn.Module:
        if self.callable[region] is None:
            return Scope()
        src = self._forward_source(region)
        kind = self.graph.scopes.get(region, "section")
        name = "Model" if region == "" else _class_name(kind, region)
        key = f"{name}\n{src}"
        if key not in self._classes:
            base = ArchModule if region == "" else nn.Module
            self._classes[key] = _make_class(name, base, src, f"<archdsl:{self.graph.name}:{region or 'model'}>")
        return self._classes[key]()

    def _forward_source(self, region: str) -> str:
        g = self.graph
        inp, out = self.callable[region]
        var = {inp: "x"}
        lines = []
        done: set[str] = set()
        depth = 0 if region == "" else len(region.split("."))
        prefix = region + "." if region else ""
        for nid in self.order:
            node = g.node(nid)
            if not node.scope.startswith(prefix):
                continue
            rel = node.scope.split(".")[depth:]
            # descend through inline scopes until a callable scope or the node itself
            k = 1
            while k < len(rel):
                sub = ".".join(node.scope.split(".")[: depth + k])
                if self.callable.get(sub) is not None:
                    break
                k += 1
            if k < len(rel):
                if sub not in done:
                    done.add(sub)
                    s_in, s_out = self.callable[sub]
                    var[s_out] = f"t{s_out}"
                    lines.append(f"    t{s_out} = {_ref('self', rel[:k])}({var[s_in]})")
                continue
            args = [var[i] for i in g.inputs(nid)]
            code = self._lower(nid).code.format(*args, m=_ref("self", rel))
            var[nid] = f"t{nid}"
            lines.append(f"    t{nid} = {code}")
        if region == "" and self.graph.meta.get("memory_format") == "channels_last":
            lines.insert(0, "    x = x.contiguous(memory_format=torch.channels_last)")
        if region == "" and g.outputs is not None:  # a backbone: the list of its feature maps
            lines.append("    return [" + ", ".join(var[o] for o in g.outputs) + "]")
        else:
            lines.append(f"    return {var[out]}")
        return "def forward(self, x):\n" + "\n".join(lines) + "\n"


_CODE_GLOBALS = {"torch": torch, "F": F, **CODE_GLOBALS}


def _make_class(name: str, base: type, src: str, filename: str) -> type:
    namespace: dict = {}
    exec(compile(src, filename, "exec"), dict(_CODE_GLOBALS), namespace)  # noqa: S102 - our own generated code
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    return type(name, (base,), {"forward": namespace["forward"], "__module__": "archdsl.generated"})


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
        fn = type(sub).__dict__.get("forward")
        if fn is not None and fn.__code__.co_filename.startswith("<archdsl:"):
            out[name or "(root)"] = "".join(linecache.getlines(fn.__code__.co_filename))
    return out


__all__ = ["ArchModule", "emit_module", "generated_source"]
