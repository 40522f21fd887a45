"""Normalisations: batch norm, layer norm, ConvNeXt V2's global response norm."""
from __future__ import annotations

from pydantic import PositiveFloat

from .base import Attrs, Op


class NormAttrs(Attrs):
    eps: PositiveFloat = 1e-5


class BatchNorm(Op):
    name = "bn"
    attrs = NormAttrs
    doc = "batch norm over channels (2-d on feature maps, 1-d on tokens and vectors): bn(eps=1e-5)"

    def params(self, a, ins):
        return {"weight": (ins[0].c,), "bias": (ins[0].c,)}

    def buffers(self, a, ins):
        return {"running_mean": (ins[0].c,), "running_var": (ins[0].c,), "num_batches_tracked": ()}


class LayerNorm(Op):
    name = "layernorm"
    attrs = NormAttrs
    doc = "layer norm over channels (per pixel on feature maps, as ConvNeXt): layernorm(eps=1e-5)"

    def params(self, a, ins):
        return {"weight": (ins[0].c,), "bias": (ins[0].c,)}


class GRNAttrs(Attrs):
    eps: PositiveFloat = 1e-6


class GlobalResponseNorm(Op):
    name = "grn"
    attrs = GRNAttrs
    layouts = ("grid",)
    doc = "ConvNeXt V2 global response norm: x + gamma * (x * N(x)) + beta, N = L2 over H, W / its channel mean"

    def infer(self, a, ins):
        self.check_layout(ins)
        return ins[0]

    def params(self, a, ins):
        return {"gamma": (ins[0].c,), "beta": (ins[0].c,)}
