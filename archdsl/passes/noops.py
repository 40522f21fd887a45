"""Remove the nodes that compute nothing at inference: identity, dropout, drop_path, and the
auxiliary heads (`aux name { ... }`, outputs of training only)."""
from __future__ import annotations

from ..ir.graph import Graph
from .manager import PassResult

INFERENCE_NOOPS = ("identity", "dropout", "dropout2d", "drop_path")


def remove_inference_noops(graph: Graph) -> PassResult:
    """Bypass identity, dropout and drop_path nodes: their users read the node's input.

    Exact at inference (eval mode): dropout and drop_path are the identity when not
    training, and identity always is. The optimized module is for inference only, so the
    auxiliary heads, which an eval-mode forward never runs, go too.
    """
    g = graph.copy()
    rewrites = [f"{name} removed (auxiliary head)" for name in g.drop_aux()]
    for node in list(g):
        if node.op in INFERENCE_NOOPS:
            g.bypass(node.id)
            rewrites.append(f"{node.scope} removed")
    return PassResult(g, rewrites)
