"""Weights in the IR: a module's tensors attached to the nodes they belong to.

`attach_weights(graph, module)` returns a copy of the graph whose nodes with tensors carry
`meta["tensors"] = {name: tensor}`: the state_dict of the module at the node's scope (the
emitted module tree mirrors the scopes). `emit_module` of such a graph builds a module
holding exactly these tensors, so graph -> passes -> module keeps the weights.
"""
from __future__ import annotations

import torch

from ..ir.graph import Graph
from ..ir.ops import OPS


def has_tensors(graph: Graph, nid: int) -> bool:
    node = graph.node(nid)
    op = OPS[node.op]
    ins = graph.in_shapes(nid)
    return bool(op.params(node.attrs, ins) or op.buffers(node.attrs, ins))


@torch.no_grad()
def attach_weights(graph: Graph, module: torch.nn.Module, clone: bool = True) -> Graph:
    """A copy of `graph` whose nodes carry the tensors of `module` (built from that graph)."""
    graph = graph.copy()
    for node in graph:
        if node.op == "input" or not has_tensors(graph, node.id):
            continue
        try:
            sub = module.get_submodule(node.scope)
        except AttributeError as e:
            raise ValueError(f"{node.scope}: the module has no submodule for this node; "
                             "was it built from this graph?") from e
        node.meta["tensors"] = {k: (v.detach().clone() if clone else v.detach())
                                for k, v in sub.state_dict().items()}
    return graph


def tensors_of(graph: Graph, nid: int) -> dict | None:
    return graph.node(nid).meta.get("tensors")


def sole_producer(graph: Graph, nid: int, ops: tuple[str, ...]):
    """The node feeding `nid` when it is one of `ops`, carries tensors, and has `nid` as its only
    user (so its own output is not needed once folded); else None. The match of every fold."""
    src = graph.inputs(nid)[0]
    prod = graph.node(src)
    if prod.op in ops and "tensors" in prod.meta and graph.single_user(src) == nid:
        return prod
    return None


def scale_out_channels(weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """`weight` (conv or linear, output channels first) times a per-output-channel factor, in float64."""
    return weight.double() * scale.view((-1,) + (1,) * (weight.ndim - 1))
