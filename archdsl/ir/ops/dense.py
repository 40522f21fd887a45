"""Ops for dense prediction (segmentation heads): upsample and dropout2d."""
from __future__ import annotations

import math
from typing import Literal, Optional

from pydantic import PositiveFloat, confloat

from ...errors import ArchShapeError, ArchTypeError
from ..shape import Shape
from .base import Attrs, Op, Pair


class UpsampleAttrs(Attrs):
    size: Optional[Pair] = None
    scale: Optional[PositiveFloat] = None
    mode: Literal["nearest", "bilinear"] = "nearest"
    align_corners: bool = False


class Upsample(Op):
    name = "upsample"
    attrs = UpsampleAttrs
    layouts = ("grid",)
    doc = ('upsample(size=[h, w] | scale=f, mode="nearest"|"bilinear", align_corners=false): resize a feature '
           "map, as torch's F.interpolate (the output size under scale is floor(size * f))")

    def infer(self, a: UpsampleAttrs, ins):
        self.check_layout(ins)
        if (a.size is None) == (a.scale is None):
            raise ArchTypeError("upsample needs exactly one of size=[h, w] (or size=n) and scale=f",
                                hint="e.g. upsample(size=[in.h, in.w]) or upsample(scale=2)")
        if a.align_corners and a.mode != "bilinear":
            raise ArchTypeError('align_corners applies to mode="bilinear" only', hint='add mode="bilinear"')
        x = ins[0]
        if a.size is not None:
            h, w = a.size
        else:
            h, w = math.floor(x.h * a.scale), math.floor(x.w * a.scale)
            if h < 1 or w < 1:
                raise ArchShapeError(f"upsample by {a.scale:g} makes {x.describe()} empty",
                                     hint="use a larger scale, or size=[h, w]")
        return Shape.grid(x.c, h, w)


class Dropout2dAttrs(Attrs):
    p: confloat(ge=0, lt=1) = 0.0


class Dropout2d(Op):
    name = "dropout2d"
    attrs = Dropout2dAttrs
    layouts = ("grid",)
    doc = "dropout2d(p): zeroes whole channels in training (torch's Dropout2d); identity at inference"

    def infer(self, a, ins):
        self.check_layout(ins)
        return ins[0]
