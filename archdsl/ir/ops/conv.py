"""Convolution and pooling over feature maps."""
from __future__ import annotations

import math
from typing import Literal, Optional, Union

from pydantic import NonNegativeInt, PositiveInt, field_validator

from ...errors import ArchShapeError
from ..shape import Shape
from .base import Attrs, NonNegPair, Op, Pair
from .elementwise import FUSABLE_ACTIVATIONS

Padding4 = tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt]


class ConvAttrs(Attrs):
    out: PositiveInt
    k: Pair
    s: Pair = (1, 1)
    p: Union[Padding4, NonNegPair, Literal["same", "centred"], None] = None
    d: Pair = (1, 1)
    g: PositiveInt = 1
    bias: bool = False

    @field_validator("p", mode="before")
    @classmethod
    def _padding(cls, v):
        if isinstance(v, (list, tuple)) and len(v) == 4:
            return tuple(v)
        if isinstance(v, (list, tuple)) and len(v) == 2:
            return tuple(v)
        if isinstance(v, int) and not isinstance(v, bool):
            return (v, v)
        return v

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right), once resolved."""
        assert isinstance(self.p, tuple) and len(self.p) == 4, "padding is resolved at elaboration"
        return self.p


def same_padding(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding for one axis: output ceil(size / s), extra pixel after."""
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def conv_out(size: int, k: int, s: int, before: int, after: int, d: int, what: str) -> int:
    extent = (k - 1) * d + 1
    if size + before + after < extent:
        raise ArchShapeError(f"{what} kernel {k}" + (f" (dilation {d}, extent {extent})" if d > 1 else "")
                             + f" is larger than its padded input ({size} + {before + after})",
                             hint="use a smaller kernel, more padding, or a larger input resolution")
    return (size + before + after - extent) // s + 1


class Conv(Op):
    name = "conv"
    attrs = ConvAttrs
    layouts = ("grid",)
    doc = ("2-d convolution: conv(out, k, s=1, p, d=1, g=1, bias=false); p defaults to \"centred\" "
           "((k-1)//2*d for odd k, 0 for even k); \"same\" is TensorFlow's; or n, [h, w], [top, bottom, left, right]")

    def resolve(self, a: ConvAttrs, ins):
        x = ins[0]
        if a.p is None or a.p == "centred":  # keeps the size at stride 1 for odd kernels; none for even
            ph = (a.k[0] - 1) // 2 * a.d[0] if a.k[0] % 2 else 0
            pw = (a.k[1] - 1) // 2 * a.d[1] if a.k[1] % 2 else 0
            pads = (ph, ph, pw, pw)
        elif a.p == "same":
            pads = same_padding(x.h, a.k[0], a.s[0], a.d[0]) + same_padding(x.w, a.k[1], a.s[1], a.d[1])
        elif len(a.p) == 2:
            pads = (a.p[0], a.p[0], a.p[1], a.p[1])
        else:
            pads = a.p
        return a.model_copy(update={"p": pads})

    def infer(self, a: ConvAttrs, ins):
        self.check_layout(ins)
        x = ins[0]
        if x.c % a.g:
            raise ArchShapeError(f"groups g={a.g} do not divide the {x.c} input channels",
                                 hint=f"choose g among the divisors of {x.c}")
        if a.out % a.g:
            raise ArchShapeError(f"groups g={a.g} do not divide the {a.out} output channels",
                                 hint=f"choose an output width that is a multiple of {a.g}")
        t, b, l, r = a.pads
        h = conv_out(x.h, a.k[0], a.s[0], t, b, a.d[0], "conv")
        w = conv_out(x.w, a.k[1], a.s[1], l, r, a.d[1], "conv")
        return Shape.grid(a.out, h, w)

    def lint(self, a: ConvAttrs, ins):
        x = ins[0]
        extent = ((a.k[0] - 1) * a.d[0] + 1, (a.k[1] - 1) * a.d[1] + 1)
        if extent[0] > x.h or extent[1] > x.w:
            return [(f"conv kernel {a.k[0]}x{a.k[1]} (extent {extent[0]}x{extent[1]}) is larger than its "
                     f"{x.h}x{x.w} input: most of what it sees is padding",
                     "check the input resolution, or use a smaller kernel or dilation")]
        return []

    def params(self, a: ConvAttrs, ins):
        specs = {"weight": (a.out, ins[0].c // a.g, a.k[0], a.k[1])}
        if a.bias:
            specs["bias"] = (a.out,)
        return specs


class ConvActAttrs(ConvAttrs):
    act: Literal[FUSABLE_ACTIVATIONS]  # type: ignore[valid-type]


class ConvAct(Conv):
    """A conv followed by an activation on its output, as one node (made by the inference
    passes, not written in specs): same tensors as the conv, same shape."""

    name = "conv_act"
    attrs = ConvActAttrs
    doc = "conv then an elementwise activation (internal: made by archdsl.passes.fuse_conv_act)"


class ConvAddAttrs(ConvAttrs):
    act: Optional[Literal[FUSABLE_ACTIVATIONS]] = None  # type: ignore[valid-type]


class ConvAdd(Conv):
    """A conv whose output is added to a second input of the same shape, then optionally
    activated, as one node (made by the inference passes): ResNet's `conv3 + shortcut -> relu`.
    Inputs: the conv's input, the residual. Same tensors as the conv."""

    name = "conv_add"
    attrs = ConvAddAttrs
    min_inputs, max_inputs = 2, 2
    doc = "conv, plus a residual, then an optional activation (internal: made by archdsl.passes.fuse_conv_add)"

    def infer(self, a: ConvAddAttrs, ins):
        out = super().infer(a, ins[:1])
        if ins[1] != out:
            raise ArchShapeError(f"conv_add: the residual is {ins[1].describe()}, the conv's output {out.describe()}")
        return out


class PoolAttrs(Attrs):
    k: Pair | None = None
    s: Pair | None = None
    p: NonNegPair = (0, 0)
    ceil: bool = False


def pool_out(size: int, k: int, s: int, p: int, ceil: bool, what: str) -> int:
    if p * 2 > k:
        raise ArchShapeError(f"{what} padding {p} is more than half its kernel {k}",
                             hint="padding may be at most half the kernel size")
    if size + 2 * p < k:
        raise ArchShapeError(f"{what} kernel {k} is larger than its padded input ({size} + {2 * p})",
                             hint="use a smaller window or a larger input resolution")
    num = size + 2 * p - k
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + p:  # the last window must start inside the input
        out -= 1
    return out


class _Pool(Op):
    attrs = PoolAttrs
    layouts = ("grid",)

    def infer(self, a: PoolAttrs, ins):
        self.check_layout(ins)
        x = ins[0]
        if a.k is None:
            return Shape.grid(x.c, 1, 1)
        s = a.s or a.k
        h = pool_out(x.h, a.k[0], s[0], a.p[0], a.ceil, self.name)
        w = pool_out(x.w, a.k[1], s[1], a.p[1], a.ceil, self.name)
        return Shape.grid(x.c, h, w)


class MaxPool(_Pool):
    name = "maxpool"
    doc = "max pooling: maxpool(k, s=k, p=0, ceil=false); no k: global, to [C, 1, 1]"


class AvgPool(_Pool):
    name = "avgpool"
    layouts = ("grid", "tokens")
    doc = "average pooling: avgpool(k, s=k, p=0, ceil=false); no k: global ([C, 1, 1]; tokens: mean, to [C])"

    def infer(self, a: PoolAttrs, ins):
        if ins[0].layout == "tokens":
            if a.k is not None:
                raise ArchShapeError("avgpool over tokens takes no window: it averages all tokens",
                                     hint="drop k, or turn the tokens into a feature map with `grid`")
            return Shape.vector(ins[0].c)
        return super().infer(a, ins)
