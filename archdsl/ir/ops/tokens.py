"""Moving between feature maps and tokens: tokens, grid, subsample, MobileViT's unfold and fold."""
from __future__ import annotations

from pydantic import PositiveInt

from ...errors import ArchShapeError
from ..shape import Shape
from .base import Attrs, Op, Pair


class ToTokens(Op):
    name = "tokens"
    layouts = ("grid",)
    doc = "feature map [C, H, W] to tokens [H*W, C], row-major (the token grid is remembered)"

    def infer(self, a, ins):
        self.check_layout(ins)
        x = ins[0]
        return Shape.tokens(x.c, x.h, x.w)


class ToGrid(Op):
    name = "grid"
    layouts = ("tokens",)
    doc = "tokens [H*W, C] back to the feature map [C, H, W] they came from"

    def infer(self, a, ins):
        self.check_layout(ins)
        x = ins[0]
        return Shape.grid(x.c, x.h, x.w)


class StrideAttrs(Attrs):
    stride: PositiveInt = 2


class Subsample(Op):
    name = "subsample"
    attrs = StrideAttrs
    layouts = ("tokens",)
    doc = "subsample(stride=2): keep every stride-th token of the token grid in both directions (LeViT)"

    def infer(self, a, ins):
        self.check_layout(ins)
        x = ins[0]
        return Shape.tokens(x.c, -(-x.h // a.stride), -(-x.w // a.stride))


class PatchAttrs(Attrs):
    patch: Pair = (2, 2)


class Unfold(Op):
    name = "unfold"
    attrs = PatchAttrs
    layouts = ("grid",)
    doc = "unfold(patch=2): [C, H, W] to patches [ph*pw, (H/ph)*(W/pw), C], as MobileViT"

    def infer(self, a, ins):
        self.check_layout(ins)
        x = ins[0]
        ph, pw = a.patch
        if x.h % ph or x.w % pw:
            raise ArchShapeError(f"patch size {ph}x{pw} does not divide the {x.h}x{x.w} feature map",
                                 hint="choose a patch size that divides H and W, or change the input resolution")
        return Shape(layout="patches", c=x.c, h=x.h // ph, w=x.w // pw, ph=ph, pw=pw)


class Fold(Op):
    name = "fold"
    attrs = PatchAttrs
    layouts = ("patches",)
    doc = "fold(patch=2): patches back to the [C, H, W] feature map, the inverse of unfold"

    def infer(self, a, ins):
        self.check_layout(ins)
        x = ins[0]
        if (x.ph, x.pw) != a.patch:
            raise ArchShapeError(f"fold with patch {a.patch[0]}x{a.patch[1]} of patches unfolded at {x.ph}x{x.pw}",
                                 hint="fold with the patch size that unfolded them")
        return Shape.grid(x.c, x.h * x.ph, x.w * x.pw)
