"""Graph IR -> torch.fx.GraphModule, built straight from the IR (no tracing).

One FX node per IR node, named after its scope (`stages.1.blocks.0.conv2` ->
`stages_1_blocks_0_conv2`): `call_module` for ops with tensors (and for dropout and
drop_path, which follow `self.training`), the submodule tree mirroring the scopes;
`call_function` / `call_method` for the rest. Identity nodes are no nodes at all. The
generated code (`gm.code`) is one flat forward.
"""
from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..ir.graph import Graph, Node
from ..ir.ops import OPS
from ..ir.shape import Shape
from . import channels as ch
from . import runtime as rt
from .torch_module import camel
from .torch_ops import lower

_ACTIVATIONS = {
    "relu": (F.relu, {}), "relu6": (F.relu6, {}), "gelu": (F.gelu, {}),
    "gelu_tanh": (F.gelu, {"approximate": "tanh"}), "silu": (F.silu, {}), "hardswish": (F.hardswish, {}),
    "hardsigmoid": (F.hardsigmoid, {}), "sigmoid": (torch.sigmoid, {}), "tanh": (torch.tanh, {}),
}


def _call(fxg: fx.Graph, node: Node, ins: list[Shape], args: list[fx.Node], name: str) -> fx.Node:
    """The FX node of an op without tensors."""
    a, op = node.attrs, node.op
    fn = lambda target, *xs, **kw: fxg.create_node("call_function", target, tuple(xs), kw, name=name)  # noqa: E731
    method = lambda target, *xs, **kw: fxg.create_node("call_method", target, tuple(xs), kw, name=name)  # noqa: E731
    if op in _ACTIVATIONS:
        target, kwargs = _ACTIVATIONS[op]
        return fn(target, args[0], **kwargs)
    if op in ("maxpool", "avgpool"):
        if a.k is None:
            if ins[0].layout == "tokens":
                return method("mean", args[0], 1)
            return fn(F.adaptive_max_pool2d if op == "maxpool" else F.adaptive_avg_pool2d, args[0], 1)
        s = a.s or a.k
        pool = F.max_pool2d if op == "maxpool" else F.avg_pool2d
        return fn(pool, args[0], tuple(a.k), tuple(s), tuple(a.p), ceil_mode=a.ceil)
    if op == "flatten":
        return method("flatten", args[0], 1)
    if op == "add":
        out = args[0]
        for i, x in enumerate(args[1:], start=1):
            part = name if i == len(args) - 1 else f"{name}_part{i}"
            out = fxg.create_node("call_function", operator.add, (out, x), {}, name=part)
        return out
    if op == "mean":
        return fn(rt.mean_of, *args)
    if op == "mul":
        return fn(operator.mul, *args)
    if op == "concat":
        return fn(torch.cat, list(args), 1 if ins[0].layout == "grid" else -1)
    if op == "tokens":
        return fn(rt.to_tokens, args[0])
    if op == "grid":
        return fn(rt.to_grid, args[0], ins[0].h, ins[0].w)
    if op == "subsample":
        return fn(rt.subsample_tokens, args[0], ins[0].h, ins[0].w, a.stride)
    if op == "unfold":
        return fn(rt.unfold_patches, args[0], *a.patch)
    if op == "fold":
        return fn(rt.fold_patches, args[0], *a.patch, node.shape.h, node.shape.w)
    if op == "sdpa":
        return fn(rt.multi_head_attention, *args, a.heads)
    if op == "chunk":
        return fn(ch.channel_chunk, args[0], *OPS["chunk"].channel_range(a, ins[0].c), ins[0].layout == "grid")
    if op == "channel_shuffle":
        return fn(ch.channel_shuffle, args[0], a.groups)
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        return fn(F.adaptive_avg_pool2d if op == "adaptive_avgpool" else F.adaptive_max_pool2d, args[0], tuple(a.size))
    if op == "upsample":
        corners = {"align_corners": a.align_corners} if a.mode == "bilinear" else {}
        return fn(F.interpolate, args[0], size=(node.shape.h, node.shape.w), mode=a.mode, **corners)
    raise NotImplementedError(f"no FX lowering for op {op!r} ({node.scope})")


def _module_for(node: Node, ins: list[Shape]) -> nn.Module | None:
    if node.op == "dropout":
        return nn.Dropout(node.attrs.p)
    if node.op == "drop_path":
        return rt.DropPath(node.attrs.p)
    if node.op == "dropout2d":
        return nn.Dropout2d(node.attrs.p)
    return lower(node, ins).module


def _install(root: nn.Module, target: str, module: nn.Module) -> None:
    *parents, leaf = target.split(".")
    owner = root
    for p in parents:
        if not hasattr(owner, p):
            owner.add_module(p, nn.Module())
        owner = getattr(owner, p)
    owner.add_module(leaf, module)


def emit_fx_graph(graph: Graph, info: dict | None = None) -> fx.GraphModule:
    """The GraphModule of a checked graph; its modules hold the nodes' `meta["tensors"]` where
    the graph carries them (torch's default initialisation otherwise). Auxiliary heads
    (`aux`, outputs of training only) are left out: the GraphModule returns the main output."""
    if getattr(graph, "aux_outputs", None):
        graph = graph.copy()
        graph.drop_aux()
    root = nn.Module()
    fxg = fx.Graph()
    env: dict[int, fx.Node] = {}
    x = fxg.placeholder("x")
    if graph.meta.get("memory_format") == "channels_last":
        x = fxg.call_method("contiguous", (x,), {"memory_format": torch.channels_last})
    for node in graph:
        args = [env[i] for i in graph.inputs(node.id)]
        if node.op == "input":
            env[node.id] = x
            continue
        if node.op == "identity":
            env[node.id] = args[0]
            continue
        ins = graph.in_shapes(node.id)
        name = node.scope.replace(".", "_")
        module = _module_for(node, ins)
        if module is not None:
            _install(root, node.scope, module)
            env[node.id] = fxg.create_node("call_module", node.scope, tuple(args), {}, name=name)
        else:
            env[node.id] = _call(fxg, node, ins, args, name)
    # a backbone (archdsl.features) returns the list of its feature maps
    fxg.output([env[o] for o in graph.outputs] if graph.outputs is not None else env[graph.output])
    if graph.meta.get("memory_format") == "channels_last":
        root.to(memory_format=torch.channels_last)
    gm = fx.GraphModule(root, fxg, class_name=camel(graph.name))
    gm.archdsl_graph = graph
    gm.archdsl_info = dict(info or {}, model=graph.name, family=graph.family)
    return gm


def emit_fx(spec: Any, *, model: str | None = None, **overrides: Any) -> fx.GraphModule:
    """`spec`: a module built by archdsl (its graph and current tensors, its train/eval mode),
    a CompiledSpec, or a spec path or source text."""
    from ..compiler import CompiledSpec, compile_spec

    if isinstance(spec, nn.Module):
        graph = getattr(spec, "archdsl_graph", None)
        if graph is None:
            raise ValueError("this module carries no archdsl graph; build it with archdsl.build")
        from ..passes.weights import attach_weights

        gm = emit_fx_graph(attach_weights(graph, spec), getattr(spec, "archdsl_info", None))
        return gm.train(spec.training)
    compiled = spec if isinstance(spec, CompiledSpec) else compile_spec(spec, model, overrides)
    return emit_fx_graph(compiled.graph, {"input_shape": compiled.input_shape,
                                          "output_shape": compiled.output_shape})


__all__ = ["emit_fx", "emit_fx_graph"]
