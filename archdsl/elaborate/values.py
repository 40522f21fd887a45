"""Values of the language at elaboration time, beyond numbers, booleans, strings and lists."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ArchTypeError
from ..frontend import ast
from ..ir.shape import Shape


@dataclass(frozen=True)
class BoundArgs:
    """Arguments bound to a block or op named as a value (`bottleneck(groups = 32)`), added
    to every use like Python's functools.partial: positional ones first, keyword ones
    replaced by the same keyword at the use."""

    positional: tuple = ()
    keyword: tuple = ()  # (name, value, span) triples, in order

    def then(self, pos: list, kw: dict) -> tuple[list, dict]:
        """This binding followed by a use's arguments `pos` and `kw` ({name: (value, span)})."""
        merged = {name: (value, span) for name, value, span in self.keyword}
        merged.update(kw)
        return list(self.positional) + list(pos), merged

    def __str__(self) -> str:
        items = [_short(v) for v in self.positional] + [f"{n}={_short(v)}" for n, v, _ in self.keyword]
        return f"({', '.join(items)})" if items else ""


@dataclass(frozen=True)
class OpRef:
    """A primitive named as a value (`act = relu6`), possibly with arguments (`gelu(...)`)."""

    name: str
    bound: BoundArgs = BoundArgs()

    def __str__(self) -> str:
        return f"op '{self.name}{self.bound}'"


@dataclass(frozen=True)
class BlockRef:
    """A block named as a value (`block = basic`), possibly configured (`bottleneck(groups = 32)`)."""

    decl: ast.BlockDecl
    bound: BoundArgs = BoundArgs()

    def __str__(self) -> str:
        return f"block '{self.decl.name}{self.bound}'"


@dataclass(frozen=True)
class FamilyRef:
    decl: ast.FamilyDecl

    def __str__(self) -> str:
        return f"family '{self.decl.name}'"


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round to the nearest multiple of `divisor`, never below `min_value` (default divisor)
    and never more than 10% below `value`: the MobileNet / EfficientNet channel rule."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class ScaleRule:
    """A declared scaling rule, applied by calling it: `width(64)`, `depth(3)`.

    kind "width": make_divisible(n * factor, divisor, minimum); kind "depth": rounding(n * factor).
    """

    name: str
    kind: str
    factor: float
    divisor: int = 1
    minimum: int | None = None
    rounding: str = "ceil"

    def __call__(self, n: float) -> int:
        if self.kind == "width":
            return make_divisible(n * self.factor, self.divisor, self.minimum)
        scaled = n * self.factor
        if self.rounding == "ceil":
            return int(math.ceil(scaled))
        if self.rounding == "floor":
            return int(math.floor(scaled))
        return int(round(scaled))

    def __str__(self) -> str:
        return f"scale rule '{self.name}'"


@dataclass(frozen=True)
class Builtin:
    name: str
    fn: Callable[..., Any]
    doc: str

    def __str__(self) -> str:
        return f"function '{self.name}'"


@dataclass(frozen=True)
class ShapeView:
    """What `in` evaluates to: the incoming shape, read through attributes."""

    shape: Shape

    FIELDS = {
        "channels": "channel count C", "c": "channel count C", "h": "height H (token grid height)",
        "w": "width W (token grid width)", "tokens": "token count N", "shape": "dims as a list",
        "rank": "number of dims",
    }

    def get(self, name: str):
        s = self.shape
        if name in ("channels", "c"):
            return s.c
        if name in ("h", "w"):
            value = getattr(s, name)
            if value is None:
                raise ArchTypeError(f"in.{name}: the incoming {s.describe()} has no spatial size")
            return value
        if name == "tokens":
            if s.layout not in ("tokens", "patches"):
                raise ArchTypeError(f"in.tokens: the incoming {s.describe()} is not tokens")
            return s.n
        if name == "shape":
            return list(s.dims)
        if name == "rank":
            return len(s.dims)
        raise KeyError(name)

    def __str__(self) -> str:
        return f"shape {self.shape.describe()}"


def describe(value: Any) -> str:
    """A value as the language would spell it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"number {value:g}" if isinstance(value, float) else f"number {value}"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list):
        return "list [" + ", ".join(_short(v) for v in value[:6]) + (", ..." if len(value) > 6 else "") + "]"
    return str(value)


def _short(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return str(v)
    return describe(v)


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return describe(value).split(" '")[0]
