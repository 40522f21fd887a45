"""Ops that join several values: add, multiply, mean, concatenate."""
from __future__ import annotations

from ...errors import ArchShapeError
from ..shape import Shape
from .base import Op


def _same_shapes(name: str, ins: list[Shape]) -> Shape:
    first = ins[0]
    for i, s in enumerate(ins[1:], start=2):
        if s != first:
            what = "channels" if s.c != first.c else "shape"
            raise ArchShapeError(f"{name} of branches with different {what}: branch 1 is {first.describe()}, "
                                 f"branch {i} is {s.describe()}",
                                 hint="make every branch end with the same shape")
    return first


class Add(Op):
    name = "add"
    min_inputs, max_inputs = 2, None
    doc = "elementwise sum of branches of equal shape (residual connections)"

    def infer(self, a, ins):
        return _same_shapes("sum", ins)


class Mean(Op):
    name = "mean"
    min_inputs, max_inputs = 2, None
    doc = "elementwise mean of branches of equal shape (e.g. LeViT's two heads at inference)"

    def infer(self, a, ins):
        return _same_shapes("mean", ins)


class Mul(Op):
    name = "mul"
    min_inputs, max_inputs = 2, 2
    doc = "elementwise product; a [C, 1, 1] gate broadcasts over a [C, H, W] map (squeeze-excite)"

    def infer(self, a, ins):
        x, g = ins
        if g.layout == "grid" and x.layout == "grid" and (g.h, g.w) == (1, 1) and g.c == x.c:
            return x
        if g == x:
            return x
        raise ArchShapeError(f"gate of shape {g.describe()} does not fit the {x.describe()} it multiplies",
                             hint=f"end the gate with {x.c} channels (and a global pool for a per-channel gate)")


class Concat(Op):
    name = "concat"
    min_inputs, max_inputs = 2, None
    layouts = ("grid", "tokens", "vector")
    doc = "concatenation along channels; every branch keeps the same spatial size"

    def infer(self, a, ins):
        self.check_layout(ins)
        first = ins[0]
        for i, s in enumerate(ins[1:], start=2):
            if s.layout != first.layout or (s.h, s.w) != (first.h, first.w):
                raise ArchShapeError(f"concat of branches with different sizes: branch 1 is {first.describe()}, "
                                     f"branch {i} is {s.describe()}",
                                     hint="branches must keep the same spatial size; check strides and padding")
        return first.with_c(sum(s.c for s in ins))
