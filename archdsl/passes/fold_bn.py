"""Fold eval-mode batch norm into the conv or linear next to it.

At inference a batch norm is a fixed per-channel affine map, y = s * x + t with
s = gamma / sqrt(running_var + eps) and t = beta - running_mean * s, so it can be merged
into the weights of an adjacent conv or linear. The folding is computed in float64 and
stored in the tensors' own dtype.
"""
from __future__ import annotations

import torch

from ..ir.graph import Graph
from .manager import PassResult
from .weights import scale_out_channels, sole_producer

PRODUCERS = ("conv", "linear")


def _affine(tensors: dict, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, t) of an eval-mode batch norm's tensors, in float64."""
    s = tensors["weight"].double() / torch.sqrt(tensors["running_var"].double() + eps)
    return s, tensors["bias"].double() - tensors["running_mean"].double() * s


def _with_bias(attrs):
    return attrs.model_copy(update={"bias": True})


@torch.no_grad()
def fold_bn_into_producer(graph: Graph) -> PassResult:
    """`conv -> bn` and `linear -> bn` (on feature maps, tokens or vectors) become one conv or
    linear with a bias: W' = s * W (per output channel), b' = s * b + t.

    Exact (up to rounding) when: the bn runs on running statistics (inference), the conv or
    linear's only user is the bn (else the unnormalised value is still needed), and both carry
    their tensors. Otherwise the pair is left alone.
    """
    g = graph.copy()
    rewrites = []
    for bn in list(g):
        if bn.op != "bn" or "tensors" not in bn.meta:
            continue
        prod = sole_producer(g, bn.id, PRODUCERS)
        if prod is None:
            continue
        s, t = _affine(bn.meta["tensors"], bn.attrs.eps)
        w = prod.meta["tensors"]["weight"]
        b = prod.meta["tensors"].get("bias")
        new_w = scale_out_channels(w, s).to(w.dtype)
        new_b = ((b.double() if b is not None else 0) * s + t).to(w.dtype)
        meta = dict(prod.meta, tensors={"weight": new_w, "bias": new_b})
        nid = g.replace_node(prod.id, attrs=_with_bias(prod.attrs), meta=meta)
        g.bypass(bn.id)
        rewrites.append(f"{bn.scope} -> {g.node(nid).scope}")
    return PassResult(g, rewrites)


def _zero_padding(attrs) -> bool:
    return all(p == 0 for p in attrs.pads)


@torch.no_grad()
def fold_bn_into_consumer(graph: Graph) -> PassResult:
    """`bn -> linear` and `bn -> conv` become one linear or conv: W' = W * s (per input
    channel), b' = b + W t (summed over the kernel for a conv).

    Exact (up to rounding) when: the bn runs on running statistics, its only user is the
    linear or conv, both carry their tensors, and, for a conv, it pads with nothing (zero
    padding would be normalised by the bn but not by the folded conv: t would leak into the
    border). Otherwise the pair is left alone. LeViT's head (`avgpool -> bn -> linear`) is
    the case in the zoo.
    """
    g = graph.copy()
    rewrites = []
    for bn in list(g):
        if bn.op != "bn" or "tensors" not in bn.meta:
            continue
        dst = g.single_user(bn.id)
        if dst is None:
            continue
        cons = g.node(dst)
        if cons.op not in PRODUCERS or "tensors" not in cons.meta:
            continue
        if cons.op == "conv" and not _zero_padding(cons.attrs):
            continue
        s, t = _affine(bn.meta["tensors"], bn.attrs.eps)
        w = cons.meta["tensors"]["weight"]
        b = cons.meta["tensors"].get("bias")
        w64 = w.double()
        if cons.op == "linear":
            new_w = w64 * s.view(1, -1)
            extra = w64 @ t
        else:
            groups = cons.attrs.g
            out, cin_g = w.shape[0], w.shape[1]
            wv = w64.view(groups, out // groups, cin_g, -1)
            new_w = (wv * s.view(groups, 1, cin_g, 1)).view_as(w64)
            extra = (wv.sum(-1) * t.view(groups, 1, cin_g)).sum(-1).reshape(out)
        new_b = (b.double() if b is not None else 0) + extra
        meta = dict(cons.meta, tensors={"weight": new_w.to(w.dtype), "bias": new_b.to(w.dtype)})
        nid = g.replace_node(dst, attrs=_with_bias(cons.attrs), meta=meta)
        g.bypass(bn.id)
        rewrites.append(f"{bn.scope} -> {g.node(nid).scope}")
    return PassResult(g, rewrites)

