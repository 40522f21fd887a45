"""Inference passes over the graph IR (graph -> graph), and `optimize`.

The pipeline is the one list below, run by `run_passes`, which lints the graph and
re-checks every shape after each pass. Each pass says in its docstring when its rewrite
is exact and leaves the graph alone where that does not hold. Passes that touch weights
need them in the graph: `attach_weights(graph, module)` puts each module's tensors on its
node (`node.meta["tensors"]`), and `emit_module` of such a graph builds a module holding them.
"""
from __future__ import annotations

from .fold_bn import fold_bn_into_consumer, fold_bn_into_producer
from .fuse_act import fuse_conv_act, fuse_linear_act
from .fuse_add import fuse_conv_add
from .layer_scale import fold_layer_scale
from .levit import gather_levit_bias
from .manager import Pass, PassError, PassResult, run_passes
from .memory_format import channels_last
from .noops import remove_inference_noops
from .pointwise_conv import linear_to_conv1x1
from .weights import attach_weights

# The inference pipeline, in order. Folding runs before fusion (a bn between a conv and its
# activation must be gone first); per-pixel linears become 1x1 convs before the fusions that
# then apply to them; the residual sum is fused before the activations (a conv
# whose only user is a sum keeps its activation-free form for it); the memory format is
# decided last, on the final graph.
PIPELINE: list[Pass] = [
    remove_inference_noops,
    fold_bn_into_producer,
    fold_bn_into_consumer,
    fold_layer_scale,
    gather_levit_bias,
    linear_to_conv1x1,
    fuse_conv_add,
    fuse_conv_act,
    fuse_linear_act,
    channels_last,
]


def optimize(module, passes: list[Pass] | None = None):
    """An inference module (eval mode) equivalent to `module`, built by running the pass
    pipeline on `module.archdsl_graph` with the module's current tensors.

    `module` is left as it is; the result holds its own tensors (same dtype and device), with
    `requires_grad=False`. `result.archdsl_passes` records what each pass rewrote.
    """
    from ..emit.torch_module import emit_module

    graph = getattr(module, "archdsl_graph", None)
    if graph is None:
        raise ValueError("this module carries no archdsl graph; build it with archdsl.build")
    weighted = attach_weights(graph, module)
    optimized, log = run_passes(weighted, PIPELINE if passes is None else passes)
    out = emit_module(optimized, getattr(module, "archdsl_info", None))
    out.archdsl_passes = log
    # An inference module: its tensors need no gradient, so the fused CPU kernels apply even
    # outside torch.no_grad(). `.requires_grad_()` makes it trainable again (on the aten ops).
    return out.eval().requires_grad_(False)


__all__ = ["PIPELINE", "Pass", "PassError", "PassResult", "attach_weights", "channels_last",
           "fold_bn_into_consumer", "fold_bn_into_producer", "fold_layer_scale", "fuse_conv_act", "fuse_conv_add",
           "fuse_linear_act",
           "gather_levit_bias", "linear_to_conv1x1", "optimize", "remove_inference_noops", "run_passes"]
