"""Shape checking: re-infer every node's shape from its inputs and compare with the IR.

Elaboration infers shapes as it builds; passes that rewrite the graph call `check_shapes`
afterwards so that a rewrite that breaks shapes fails at once, at the node's spec span.
"""
from __future__ import annotations

from ..errors import ArchDSLError, ArchShapeError
from ..ir.graph import Graph
from ..ir.ops import OPS


def check_shapes(graph: Graph) -> None:
    for node in graph:
        if node.op == "input":
            continue
        op = OPS[node.op]
        ins = graph.in_shapes(node.id)
        try:
            shape = op.infer(node.attrs, ins)
        except ArchDSLError as e:
            raise e.at(node.span)
        if shape != node.shape:
            raise ArchShapeError(f"{node.scope}: recorded shape {node.shape.describe()} but the inputs give "
                                 f"{shape.describe()}", node.span)
