"""Ops that rearrange channels or pool to a fixed size: chunk, channel_shuffle, and
adaptive average / max pooling.

`chunk(i, n)` selects one of `n` equal channel groups. It has one output, so the graph stays
a plain dataflow graph: ShuffleNetV2's split into two halves is two branches of a concat,
`{ chunk(0) }` and `{ chunk(1) -> ... }`. `channel_shuffle(groups)` interleaves the
groups' channels (ShuffleNet). `adaptive_avgpool(size)` / `adaptive_maxpool(size)` pool
any feature map to `size` x `size` (or `[h, w]`), as PyTorch's AdaptiveAvgPool2d: the
classifier after them (AlexNet's, VGG's) keeps its width at every input resolution.
"""
from __future__ import annotations

from pydantic import NonNegativeInt, PositiveInt

from ...errors import ArchShapeError, ArchTypeError
from ..shape import Shape
from .base import Attrs, Op, Pair


class ChunkAttrs(Attrs):
    i: NonNegativeInt
    n: PositiveInt = 2


class Chunk(Op):
    name = "chunk"
    attrs = ChunkAttrs
    layouts = ("grid", "tokens", "vector")
    doc = ("chunk(i, n=2): the i-th (from 0) of n equal groups of channels, as torch.chunk along "
           "the channels; use it in the branches of a concat to split a value")

    def infer(self, a: ChunkAttrs, ins):
        self.check_layout(ins)
        x = ins[0]
        if a.i >= a.n:
            raise ArchTypeError(f"chunk {a.i} of {a.n} does not exist: chunks are numbered 0 to {a.n - 1}",
                                hint=f"use chunk(i, {a.n}) with 0 <= i < {a.n}")
        if x.c % a.n:
            raise ArchShapeError(f"{a.n} chunks do not divide the {x.c} input channels",
                                 hint=f"choose n among the divisors of {x.c}")
        return x.with_c(x.c // a.n)

    @staticmethod
    def channel_range(a: ChunkAttrs, c: int) -> tuple[int, int]:
        """The [start, end) channels chunk `a` selects from `c` channels."""
        size = c // a.n
        return a.i * size, (a.i + 1) * size


class GroupsAttrs(Attrs):
    groups: PositiveInt = 2


class ChannelShuffle(Op):
    name = "channel_shuffle"
    attrs = GroupsAttrs
    layouts = ("grid",)
    doc = ("channel_shuffle(groups=2): view the C channels as [groups, C/groups], transpose, "
           "flatten (ShuffleNet); shape unchanged")

    def infer(self, a: GroupsAttrs, ins):
        self.check_layout(ins)
        x = ins[0]
        if x.c % a.groups:
            raise ArchShapeError(f"channel_shuffle groups={a.groups} do not divide the {x.c} input channels",
                                 hint=f"choose groups among the divisors of {x.c}")
        return x


class SizeAttrs(Attrs):
    size: Pair


class _AdaptivePool(Op):
    attrs = SizeAttrs
    layouts = ("grid",)

    def infer(self, a: SizeAttrs, ins):
        self.check_layout(ins)
        return Shape.grid(ins[0].c, *a.size)


class AdaptiveAvgPool(_AdaptivePool):
    name = "adaptive_avgpool"
    doc = ("adaptive_avgpool(size): average pooling to a size x size (or [h, w]) map from any input "
           "size, as PyTorch's AdaptiveAvgPool2d")


class AdaptiveMaxPool(_AdaptivePool):
    name = "adaptive_maxpool"
    doc = ("adaptive_maxpool(size): max pooling to a size x size (or [h, w]) map from any input "
           "size, as PyTorch's AdaptiveMaxPool2d")


def adaptive_window(size: int, out: int) -> tuple[int, int]:
    """(largest window, spacing) of adaptive pooling from `size` to `out` positions on one axis.
    Output i pools input [floor(i*size/out), ceil((i+1)*size/out)); when `out` divides `size`
    that is a plain window of `size // out` with that stride."""
    if size % out == 0:
        return size // out, size // out
    largest = max(-(-(i + 1) * size // out) - (i * size // out) for i in range(out))
    return largest, max(1, round(size / out))


CHANNEL_OPS = [Chunk, ChannelShuffle, AdaptiveAvgPool, AdaptiveMaxPool]
