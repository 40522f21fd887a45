"""The typed graph IR: shapes, ops, nodes and the graph."""
from .graph import Graph, Node
from .ops import OPS
from .shape import Shape

__all__ = ["Graph", "Node", "OPS", "Shape"]
