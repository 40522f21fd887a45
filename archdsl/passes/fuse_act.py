"""Fuse a conv with the activation that follows it."""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import OPS
from ..ir.ops.conv import FUSABLE_ACTIVATIONS
from .manager import PassResult


def fuse_conv_act(graph: Graph) -> PassResult:
    """`conv -> act` becomes one `conv_act` node (the conv's scope, span and tensors), emitted
    as the conv followed by the activation applied in place on the conv's fresh output.

    Exact: the same function, computed the same way. Applies when the conv's only user is the
    activation (else the pre-activation value is still needed). What it gains on CPU eager
    is the activation's output allocation and one memory pass (docs/inference.md); under
    torch.compile the backend fuses either form.
    """
    g = graph.copy()
    rewrites = []
    for act in list(g):
        if act.op not in FUSABLE_ACTIVATIONS:
            continue
        src = g.inputs(act.id)[0]
        conv = g.node(src)
        if conv.op != "conv" or g.single_user(src) != act.id:
            continue
        attrs = g.node(src).attrs
        new_attrs = OPS["conv_act"].attrs(**attrs.model_dump(), act=act.op)
        nid = g.replace_node(src, "conv_act", new_attrs)
        g.bypass(act.id)
        rewrites.append(f"{act.scope} -> {g.node(nid).scope}")
    return PassResult(g, rewrites)
