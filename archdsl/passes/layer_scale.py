"""Fold a layer scale (ConvNeXt's gamma) into the linear or conv before it."""
from __future__ import annotations

import torch

from ..ir.graph import Graph
from .manager import PassResult


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
        src = g.inputs(ls.id)[0]
        prod = g.node(src)
        if prod.op not in ("linear", "conv") or "tensors" not in prod.meta or g.single_user(src) != ls.id:
            continue
        gamma = ls.meta["tensors"]["gamma"].double()
        tensors = dict(prod.meta["tensors"])
        w = tensors["weight"]
        tensors["weight"] = (w.double() * gamma.view((-1,) + (1,) * (w.ndim - 1))).to(w.dtype)
        if "bias" in tensors:
            tensors["bias"] = (tensors["bias"].double() * gamma).to(w.dtype)
        nid = g.replace_node(src, meta=dict(prod.meta, tensors=tensors))
        g.bypass(ls.id)
        rewrites.append(f"{ls.scope} -> {g.node(nid).scope}")
    return PassResult(g, rewrites)
