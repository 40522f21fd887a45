"""What a forward pass costs, per node and in total, at batch 1.

FLOPs follow `torch.utils.flop_counter.FlopCounterMode`: 2 per multiply-accumulate,
counting convolutions, matrix products (linear layers) and attention (q k^T and
attention x v); biases are not counted. Norms, activations, pooling and elementwise
merges are reported apart (`other_flops`, about one operation per element they touch),
not in the headline figure. Activation memory is each node's fp32 output; the peak is
the largest set of outputs alive at once when nodes run in order and each output is
freed after its last use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir.graph import Graph
from .params import node_params

BYTES_PER_ELEMENT = 4  # fp32


@dataclass(frozen=True)
class NodeCost:
    params: int
    flops: int        # headline: conv, linear, attention
    other_flops: int  # norms, activations, pooling, merges
    out_bytes: int


def node_flops(graph: Graph, nid: int) -> tuple[int, int]:
    """(headline FLOPs, other FLOPs) of one node at batch 1."""
    node = graph.node(nid)
    ins = graph.in_shapes(nid)
    out = node.shape
    a = node.attrs
    op = node.op
    if op in ("conv", "conv_act", "conv_add"):  # fused forms (inference passes): + activation, + residual
        fused_passes = 0 if op == "conv" else 1 + (op == "conv_add" and a.act is not None)
        return 2 * out.numel * (ins[0].c // a.g) * a.k[0] * a.k[1], fused_passes * out.numel
    if op in ("linear", "linear_act"):
        rows = out.numel // out.c
        return 2 * rows * ins[0].c * a.out, out.numel if op == "linear_act" else 0
    if op in ("levit_attention", "levit_attention_gathered"):
        q, kv = ins[0], ins[-1]
        return 2 * a.heads * q.n * kv.n * (a.key_dim + a.value_dim), 0
    if op == "sdpa":
        q, k, v = ins
        batch = q.ph * q.pw if q.layout == "patches" else 1
        return 2 * batch * q.n * k.n * (q.c + v.c), 0
    if op in ("input", "identity", "dropout", "dropout2d", "drop_path", "tokens", "grid", "flatten", "subsample",
              "unfold", "fold", "concat"):
        return 0, 0
    if op in ("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"):
        return 0, ins[0].numel
    if op in ("chunk", "channel_shuffle"):  # data movement only
        return 0, 0
    if op in ("bn", "layernorm", "grn"):
        return 0, 2 * out.numel
    return 0, out.numel  # activations, layer scale, add, mean, mul


def node_costs(graph: Graph) -> dict[int, NodeCost]:
    costs = {}
    for node in graph:
        flops, other = node_flops(graph, node.id)
        costs[node.id] = NodeCost(node_params(graph, node.id), flops, other,
                                  node.shape.numel * BYTES_PER_ELEMENT)
    return costs


def peak_activation_bytes(graph: Graph, costs: dict[int, NodeCost] | None = None) -> int:
    """The most bytes of activations alive at once in a forward pass at batch 1."""
    costs = costs or node_costs(graph)
    order = [n.id for n in graph]
    position = {nid: i for i, nid in enumerate(order)}
    last_use = {nid: max([position[u] for u in graph.users(nid)] + [position[nid]]) for nid in order}
    last_use[graph.output] = len(order)
    live, peak, freed_at = 0, 0, {}
    for i, nid in enumerate(order):
        live += costs[nid].out_bytes
        peak = max(peak, live)
        freed_at.setdefault(last_use[nid], []).append(nid)
        for done in freed_at.pop(i, []):
            live -= costs[done].out_bytes
    return peak


@dataclass(frozen=True)
class Totals:
    params: int
    flops: int
    other_flops: int
    activation_bytes: int
    peak_activation_bytes: int

    @property
    def macs(self) -> int:
        return self.flops // 2


def totals(graph: Graph) -> Totals:
    costs = node_costs(graph)
    return Totals(
        params=sum(c.params for c in costs.values()),
        flops=sum(c.flops for c in costs.values()),
        other_flops=sum(c.other_flops for c in costs.values()),
        activation_bytes=sum(c.out_bytes for c in costs.values()),
        peak_activation_bytes=peak_activation_bytes(graph, costs),
    )


def human(n: float, unit: str = "") -> str:
    """1_234_567 -> '1.23M'."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.{max(0, 3 - int(math.log10(abs(n) / scale)) - 1)}f}{suffix}{unit}"
    return f"{n:g}{unit}"
