"""The static shape of a value flowing through the graph (batch dimension left out)."""
from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveInt

Layout = Literal["grid", "tokens", "patches", "vector"]


class Shape(BaseModel):
    """A feature map `[C, H, W]`, tokens `[N, C]` (N = H*W of the grid they came from),
    MobileViT patches `[P, N, C]` (P = ph*pw pixels per patch, N = H*W patches), or a vector `[C]`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layout: Layout
    c: PositiveInt
    h: PositiveInt | None = None
    w: PositiveInt | None = None
    ph: PositiveInt = 1
    pw: PositiveInt = 1

    @classmethod
    def grid(cls, c: int, h: int, w: int) -> "Shape":
        return cls(layout="grid", c=c, h=h, w=w)

    @classmethod
    def tokens(cls, c: int, h: int, w: int) -> "Shape":
        return cls(layout="tokens", c=c, h=h, w=w)

    @classmethod
    def vector(cls, c: int) -> "Shape":
        return cls(layout="vector", c=c)

    @property
    def n(self) -> int:
        """Token (or patch) count."""
        return (self.h or 1) * (self.w or 1)

    @property
    def dims(self) -> tuple[int, ...]:
        """The tensor shape without batch, in PyTorch's layout."""
        if self.layout == "grid":
            return (self.c, self.h, self.w)
        if self.layout == "tokens":
            return (self.n, self.c)
        if self.layout == "patches":
            return (self.ph * self.pw, self.n, self.c)
        return (self.c,)

    @property
    def numel(self) -> int:
        return math.prod(self.dims)

    def with_c(self, c: int) -> "Shape":
        return self.model_copy(update={"c": c})

    def __str__(self) -> str:
        return "[" + ", ".join(str(d) for d in self.dims) + "]"

    def describe(self) -> str:
        """`[64, 56, 56]` plus the layout word where dims alone are ambiguous."""
        if self.layout == "tokens":
            return f"{self} tokens ({self.h}x{self.w})"
        if self.layout == "patches":
            return f"{self} patches"
        return str(self)
