"""Fuse a conv or linear with the activation that follows it."""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import OPS
from ..ir.ops.elementwise import FUSABLE_ACTIVATIONS
from .manager import PassResult


def _fuse_activation(graph: Graph, producer_op: str, fused_op: str) -> PassResult:
    g = graph.copy()
    rewrites = []
    for act in list(g):
        if act.op not in FUSABLE_ACTIVATIONS:
            continue
        src = g.inputs(act.id)[0]
        producer = g.node(src)
        if producer.op != producer_op or g.single_user(src) != act.id:
            continue
        new_attrs = OPS[fused_op].attrs(**producer.attrs.model_dump(), act=act.op)
        nid = g.replace_node(src, fused_op, new_attrs)
        g.bypass(act.id)
        rewrites.append(f"{act.scope} -> {g.node(nid).scope}")
    return PassResult(g, rewrites)


def fuse_conv_act(graph: Graph) -> PassResult:
    """`conv -> act` becomes one `conv_act` node (the conv's scope, span and tensors): on CPU
    one oneDNN kernel with the activation as a post-op (archdsl/emit/onednn.py), elsewhere
    the conv then the activation in place on its fresh output.

    Exact: the same function; the post-op applies the activation to each output as it is
    written. Applies when the conv's only user is the activation (else the pre-activation
    value is still needed).
    """
    return _fuse_activation(graph, "conv", "conv_act")


def fuse_linear_act(graph: Graph) -> PassResult:
    """`linear -> act` becomes one `linear_act` node (ConvNeXt's and MobileViT's MLP, LeViT's
    hardswish after its folded BN): on CPU one oneDNN matmul with the activation as a post-op.

    Exact: the same function. Applies when the linear's only user is the activation.
    """
    return _fuse_activation(graph, "linear", "linear_act")
