"""Channel mixing and reshaping: linear, layer scale, flatten."""
from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from ..shape import Shape
from .base import Attrs, Op
from .elementwise import FUSABLE_ACTIVATIONS


class LinearAttrs(Attrs):
    out: PositiveInt
    bias: bool = True


class Linear(Op):
    name = "linear"
    attrs = LinearAttrs
    doc = "linear(out, bias=true) over channels: on feature maps per pixel, on tokens per token"

    def infer(self, a, ins):
        return ins[0].with_c(a.out)

    def params(self, a, ins):
        specs = {"weight": (a.out, ins[0].c)}
        if a.bias:
            specs["bias"] = (a.out,)
        return specs


class LinearActAttrs(LinearAttrs):
    act: Literal[FUSABLE_ACTIVATIONS]  # type: ignore[valid-type]


class LinearAct(Linear):
    """A linear followed by an activation on its output, as one node (made by the inference
    passes, not written in specs): same tensors as the linear, same shape."""

    name = "linear_act"
    attrs = LinearActAttrs
    doc = "linear then an elementwise activation (internal: made by archdsl.passes.fuse_linear_act)"


class LayerScaleAttrs(Attrs):
    init: float = 1e-6


class LayerScale(Op):
    name = "layer_scale"
    attrs = LayerScaleAttrs
    doc = "layer_scale(init=1e-6): a learnable per-channel factor gamma (ConvNeXt, CaiT)"

    def params(self, a, ins):
        return {"gamma": (ins[0].c,)}


class Flatten(Op):
    name = "flatten"
    layouts = ("grid", "tokens", "vector")
    doc = "flatten to a vector: [C, H, W] -> [C*H*W]"

    def infer(self, a, ins):
        self.check_layout(ins)
        return Shape.vector(ins[0].numel)
