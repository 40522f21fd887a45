"""Attention primitives: LeViT's attention with its relative-position bias table, and plain SDPA."""
from __future__ import annotations

import itertools

from pydantic import PositiveInt

from ...errors import ArchShapeError
from ..shape import Shape
from .base import Attrs, Op, Pair


class LevitAttentionAttrs(Attrs):
    key_dim: PositiveInt
    heads: PositiveInt
    attn_ratio: PositiveInt = 2
    stride: PositiveInt = 1
    resolution: Pair | None = None  # the key grid; filled from the input tokens

    @property
    def value_dim(self) -> int:
        return self.attn_ratio * self.key_dim


def levit_bias_offsets(q_grid: tuple[int, int], k_grid: tuple[int, int], stride: int):
    """LeViT's bias table: column per distinct |offset| between a query and a key point,
    numbered in order of first appearance, and the [Nq, Nk] index of each pair."""
    q_points = list(itertools.product(range(q_grid[0]), range(q_grid[1])))
    k_points = list(itertools.product(range(k_grid[0]), range(k_grid[1])))
    offsets: dict[tuple[int, int], int] = {}
    idxs = []
    for qy, qx in q_points:
        row = []
        for ky, kx in k_points:
            off = (abs(qy * stride - ky), abs(qx * stride - kx))
            row.append(offsets.setdefault(off, len(offsets)))
        idxs.append(row)
    return offsets, idxs


def _distinct(n_q: int, n_k: int, stride: int) -> int:
    return len({abs(q * stride - k) for q in range(n_q) for k in range(n_k)})


class LevitAttention(Op):
    name = "levit_attention"
    attrs = LevitAttentionAttrs
    min_inputs, max_inputs = 1, 2
    layouts = ("tokens",)
    doc = ("levit_attention(key_dim, heads, attn_ratio=2, stride=1): multi-head attention with a learned "
           "relative-position bias per head; one input of fused per-head [q k v], or (stride > 1) "
           "two inputs: subsampled queries and per-head [k v]")

    def resolve(self, a, ins):
        kv = ins[-1]
        if a.resolution is not None and a.resolution != (kv.h, kv.w):
            raise ArchShapeError(f"{kv.n} tokens ({kv.h}x{kv.w}) do not match the attention resolution "
                                 f"{a.resolution[0]}x{a.resolution[1]}",
                                 hint="leave out resolution: it follows from the incoming tokens")
        return a.model_copy(update={"resolution": (kv.h, kv.w)})

    def infer(self, a, ins):
        self.check_layout(ins)
        kd, h, vd = a.key_dim, a.heads, a.value_dim
        if len(ins) == 1:
            x = ins[0]
            if a.stride != 1:
                raise ArchShapeError("levit_attention with stride > 1 needs two inputs: queries and keys/values",
                                     hint="use it in `merge levit_attention(...) { {queries} {keys_values} }`")
            want = h * (2 * kd + vd)
            if x.c != want:
                raise ArchShapeError(f"levit_attention expects {want} channels of q, k, v "
                                     f"({h} heads x ({kd} + {kd} + {vd})), got {x.c}",
                                     hint=f"project to {want} channels before the attention")
            return Shape.tokens(h * vd, x.h, x.w)
        q, kv = ins
        if q.c != h * kd:
            raise ArchShapeError(f"levit_attention queries have {q.c} channels, expected {h} heads x {kd}",
                                 hint=f"project the queries to {h * kd} channels")
        if kv.c != h * (kd + vd):
            raise ArchShapeError(f"levit_attention keys/values have {kv.c} channels, expected "
                                 f"{h} heads x ({kd} + {vd})", hint=f"project them to {h * (kd + vd)} channels")
        want = (-(-kv.h // a.stride), -(-kv.w // a.stride))
        if (q.h, q.w) != want:
            raise ArchShapeError(f"{q.n} query tokens ({q.h}x{q.w}) do not match the {kv.h}x{kv.w} key grid "
                                 f"at stride {a.stride} ({want[0]}x{want[1]})",
                                 hint="subsample the queries with the attention's stride")
        return Shape.tokens(h * vd, q.h, q.w)

    def params(self, a, ins):
        kv = ins[-1]
        q_h, q_w = (ins[0].h, ins[0].w)
        n = _distinct(q_h, kv.h, a.stride) * _distinct(q_w, kv.w, a.stride)
        return {"attention_biases": (a.heads, n)}


class HeadsAttrs(Attrs):
    heads: PositiveInt


class ScaledDotProductAttention(Op):
    name = "sdpa"
    attrs = HeadsAttrs
    min_inputs, max_inputs = 3, 3
    layouts = ("tokens", "patches")
    doc = "sdpa(heads): softmax(q k^T / sqrt(d)) v over heads; inputs query, key, value (merge with three branches)"

    def infer(self, a, ins):
        self.check_layout(ins)
        q, k, v = ins
        if q.c != k.c:
            raise ArchShapeError(f"query has {q.c} channels but key has {k.c}", hint="project both to the same width")
        for what, s in (("query", q), ("value", v)):
            if s.c % a.heads:
                raise ArchShapeError(f"{a.heads} heads do not divide the {s.c} {what} channels",
                                     hint=f"choose heads among the divisors of {s.c}")
        if k.n != v.n or k.layout != v.layout:
            raise ArchShapeError(f"key has {k.n} tokens but value has {v.n}", hint="keys and values come in pairs")
        return q.with_c(v.c)


class LevitAttentionGathered(LevitAttention):
    """LeViT attention whose bias is already gathered into its [heads, Nq, Nk] form (made by
    the inference passes from `levit_attention`: the gather runs once, not per forward)."""

    name = "levit_attention_gathered"
    doc = "levit_attention with its bias table pre-gathered to [heads, Nq, Nk] (internal, inference)"

    def params(self, a, ins):
        return {}

    def buffers(self, a, ins):  # derived from the learnt table, not learnt itself
        return {"attention_bias": (a.heads, ins[0].n, ins[-1].n)}
