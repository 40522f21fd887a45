"""LeViT's attention bias, gathered once for inference."""
from __future__ import annotations

import torch

from ..ir.graph import Graph
from ..ir.ops.attention import levit_bias_offsets
from .manager import PassResult


@torch.no_grad()
def gather_levit_bias(graph: Graph) -> PassResult:
    """`levit_attention` becomes `levit_attention_gathered`, whose tensor is the bias table
    already indexed by every (query, key) pair: attention_biases[:, idxs], [heads, Nq, Nk].
    The training form gathers it on every forward.

    Exact: the same values, looked up once. Left alone where the node carries no tensors.
    """
    g = graph.copy()
    rewrites = []
    for node in list(g):
        if node.op != "levit_attention" or "tensors" not in node.meta:
            continue
        a = node.attrs
        q = g.in_shapes(node.id)[0]
        _, idxs = levit_bias_offsets((q.h, q.w), a.resolution, a.stride)
        table = node.meta["tensors"]["attention_biases"]
        gathered = table[:, torch.tensor(idxs, dtype=torch.long, device=table.device)].contiguous()
        g.replace_node(node.id, "levit_attention_gathered", meta=dict(node.meta, tensors={"attention_bias": gathered}))
        rewrites.append(node.scope)
    return PassResult(g, rewrites)
