"""Parameter counts from the op registry: what the emitted module's `parameters()` will hold."""
from __future__ import annotations

import math

from ..ir.graph import Graph
from ..ir.ops import OPS


def node_params(graph: Graph, nid: int) -> int:
    node = graph.node(nid)
    specs = OPS[node.op].params(node.attrs, graph.in_shapes(nid))
    return sum(math.prod(dims) for dims in specs.values())


def count_params(graph: Graph) -> int:
    return sum(node_params(graph, node.id) for node in graph)
