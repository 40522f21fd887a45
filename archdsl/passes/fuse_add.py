"""Fuse a residual sum (and the activation after it) into the conv that produces one side."""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import OPS
from ..ir.ops.elementwise import FUSABLE_ACTIVATIONS
from .manager import PassResult


def fuse_conv_add(graph: Graph) -> PassResult:
    """`add(conv(x), r) [-> act]` becomes one `conv_add(x, r)` node with the activation as its
    attribute (the conv's scope, span and tensors): on CPU one oneDNN kernel with the sum and
    the activation as post-ops (ResNet's `conv3 + shortcut -> relu`, the projection + shortcut
    of inverted residuals), elsewhere the conv, the sum and the activation in place.

    Exact: the same sum of the same two values (addition is commutative in floating point);
    the activation is taken only when it is the sum's only user. Applies to a two-input add of
    equal shapes where a conv input's only user is the add; when both inputs are such convs
    (a projection shortcut) the first, the block's main path, is fused.
    """
    g = graph.copy()
    rewrites = []
    for add in list(g):
        if add.op != "add":
            continue
        args = g.inputs(add.id)
        if len(args) != 2 or len(set(args)) != 2 or g.node(args[0]).shape != g.node(args[1]).shape:
            continue
        fusable = [i for i, a in enumerate(args) if g.node(a).op == "conv" and g.single_user(a) == add.id]
        if not fusable:
            continue
        conv_id, residual = args[fusable[0]], args[1 - fusable[0]]
        conv = g.node(conv_id)
        user = g.single_user(add.id)
        act = g.node(user) if user is not None and g.node(user).op in FUSABLE_ACTIVATIONS else None
        attrs = OPS["conv_add"].attrs(**conv.attrs.model_dump(), act=act.op if act else None)
        nid = g.replace_node(conv_id, "conv_add", attrs, inputs=g.inputs(conv_id) + [residual])
        g.bypass(add.id, arg=fusable[0])
        what = add.scope
        if act is not None:
            g.bypass(act.id)
            what += f" + {act.scope}"
        rewrites.append(f"{what} -> {g.node(nid).scope}")
    return PassResult(g, rewrites)
