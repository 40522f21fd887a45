"""A deterministic text dump of the graph IR: one node per line, with shape, scope and span.

    %5 = conv(out=64, k=[7, 7], s=[2, 2], p=[3, 3, 3, 3]) %0 : [64, 112, 112]  stem.conv1  @ spec.arch:6:5
"""
from __future__ import annotations

from .graph import Graph


def _value(v) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(_value(i) for i in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_node(graph: Graph, nid: int) -> str:
    node = graph.node(nid)
    attrs = ", ".join(f"{k}={_value(v)}" for k, v in node.attrs.model_dump().items() if v is not None)
    args = " ".join(f"%{i}" for i in graph.inputs(nid))
    head = f"%{nid} = {node.op}" + (f"({attrs})" if attrs else "")
    where = f"  @ {node.span}" if node.span else ""
    return f"{head}{' ' + args if args else ''} : {node.shape.describe()}  {node.scope}{where}"


def dump(graph: Graph) -> str:
    lines = [f"graph {graph.name}" + (f" (family {graph.family})" if graph.family else "")]
    lines += [format_node(graph, n.id) for n in graph]
    lines.append(f"output %{graph.output}")
    return "\n".join(lines)
