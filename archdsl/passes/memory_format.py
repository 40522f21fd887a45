"""Channels-last (NHWC) memory format for conv-heavy graphs."""
from __future__ import annotations

from ..ir.graph import Graph
from .manager import PassResult

CONV_OPS = ("conv", "conv_act", "conv_add")


def channels_last(graph: Graph, min_conv_fraction: float = 0.5) -> PassResult:
    """Mark the graph for channels-last emission (`graph.meta["memory_format"]`): the emitted
    module converts its input and its 4-d weights to NHWC, and the layout then flows through.

    Exact in value (the same math on a different layout; conv kernels may round differently,
    within float tolerance). Applied when the graph is conv-dominated: at least
    `min_conv_fraction` of its FLOP-carrying ops (conv and linear) on feature maps are
    convs, and no op works on tokens or patches through layout-sensitive views
    (measured: docs/inference.md).
    """
    g = graph.copy()
    convs = sum(1 for n in g if n.op in CONV_OPS)
    grid_linears = sum(1 for n in g if n.op in ("linear", "linear_act") and g.in_shapes(n.id)[0].layout == "grid")
    token_ops = sum(1 for n in g if n.op in ("tokens", "unfold"))
    if convs == 0 or token_ops or convs / (convs + grid_linears) < min_conv_fraction:
        return PassResult(g)
    g.meta["memory_format"] = "channels_last"
    return PassResult(g, [f"channels_last ({convs} convs)"])
