"""What every op of the IR declares: attributes, arity, shape rule, learnable tensors.

An op is a small class: a frozen pydantic model of its attributes (field order is the
positional order in the language), how many inputs it takes, how it maps input shapes
to the output shape, and the shapes of its parameters and buffers. Ops know nothing of
torch; emitters turn them into modules.
"""
from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, NonNegativeInt, PositiveInt

from ...errors import ArchShapeError
from ..shape import Layout, Shape


class Attrs(BaseModel):
    """Base of every op's attributes: frozen, no unknown fields."""

    # defer_build: a schema is built when the op is first used, not at import (a small
    # spec uses a few of the ops; building all of them cost ~30 ms of every command)
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class NoAttrs(Attrs):
    pass


def _to_pair(v):
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError("expected one number or a pair [h, w]")
        return tuple(v)
    return (v, v)


Pair = Annotated[tuple[PositiveInt, PositiveInt], BeforeValidator(_to_pair)]
NonNegPair = Annotated[tuple[NonNegativeInt, NonNegativeInt], BeforeValidator(_to_pair)]
TensorSpecs = dict[str, tuple[int, ...]]


class Op:
    """One kind of IR node. Subclasses set the class attributes and override the rules."""

    name: ClassVar[str]
    attrs: ClassVar[type[Attrs]] = NoAttrs
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    layouts: ClassVar[tuple[Layout, ...]] = ("grid", "tokens", "patches", "vector")
    doc: ClassVar[str] = ""

    def resolve(self, attrs: Attrs, ins: list[Shape]) -> Attrs:
        """Fill attributes that follow from the input shapes (e.g. 'same' padding)."""
        return attrs

    def infer(self, attrs: Attrs, ins: list[Shape]) -> Shape:
        """The output shape; raise `ArchShapeError` (no span: the caller adds it)."""
        return ins[0]

    def lint(self, attrs: Attrs, ins: list[Shape]) -> list[tuple[str, str | None]]:
        """Warnings (message, hint) about legal but suspicious uses."""
        return []

    def params(self, attrs: Attrs, ins: list[Shape]) -> TensorSpecs:
        """Learnable tensors by name, with shapes."""
        return {}

    def buffers(self, attrs: Attrs, ins: list[Shape]) -> TensorSpecs:
        """Persistent, non-learnable tensors (state_dict entries), with shapes."""
        return {}

    def check_layout(self, ins: list[Shape]) -> None:
        for s in ins:
            if s.layout not in self.layouts:
                want = " or ".join(self.layouts)
                raise ArchShapeError(f"{self.name} expects a {want} input, got {s.layout} {s.describe()}",
                                     hint=_layout_hint(s.layout, self.layouts))


def _layout_hint(have: str, want: tuple[str, ...]) -> str | None:
    if have == "tokens" and "grid" in want:
        return "turn tokens back into a feature map with `grid` first"
    if have == "grid" and "tokens" in want:
        return "flatten the feature map into tokens with `tokens` first"
    if have == "vector" and "grid" in want:
        return "this op needs a feature map; the input was already pooled or flattened"
    return None


class Activation(Op):
    """An elementwise function; shape unchanged."""

    doc = "elementwise activation"


class OpRegistry:
    """Every op by name. Duplicates are an error; nothing registers itself on import."""

    def __init__(self, ops: list[Op]):
        self._ops: dict[str, Op] = {}
        for op in ops:
            if op.name in self._ops:
                raise ValueError(f"op {op.name!r} registered twice")
            self._ops[op.name] = op

    def __contains__(self, name: str) -> bool:
        return name in self._ops

    def __getitem__(self, name: str) -> Op:
        return self._ops[name]

    def names(self) -> list[str]:
        return sorted(self._ops)

    def items(self):
        return self._ops.items()
