"""Fold a layer scale (ConvNeXt's gamma) into the linear or conv before it."""
from __future__ import annotations

import torch

from ..ir.graph import Graph
from .manager import PassResult
from .weights import scale_out_channels, sole_producer


@torch.no_grad()
def fold_layer_scale(graph: Graph) -> PassResult:
    """`linear -> layer_scale` (or `conv -> layer_scale`) becomes one linear (conv):
    W' = gamma * W, b' = gamma * b, per output channel.

    Exact (up to rounding) when the linear or conv's only user is the layer scale and both
    carry their tensors; otherwise left alone. (In training gamma is learnt on its own; this
    is an inference rewrite.)
    """
    g = graph.copy()
    rewrites = []
    for ls in list(g):
        if ls.op != "layer_scale" or "tensors" not in ls.meta:
            continue
        prod = sole_producer(g, ls.id, ("linear", "conv"))
        if prod is None:
            continue
        gamma = ls.meta["tensors"]["gamma"].double()
        tensors = dict(prod.meta["tensors"])
        w = tensors["weight"]
        tensors["weight"] = scale_out_channels(w, gamma).to(w.dtype)
        if "bias" in tensors:
            tensors["bias"] = (tensors["bias"].double() * gamma).to(w.dtype)
        nid = g.replace_node(prod.id, meta=dict(prod.meta, tensors=tensors))
        g.bypass(ls.id)
        rewrites.append(f"{ls.scope} -> {g.node(nid).scope}")
    return PassResult(g, rewrites)
