"""Shape-preserving ops: activations, identity, and the regularisers that vanish at inference."""
from __future__ import annotations

from pydantic import confloat

from .base import Activation, Attrs, Op


def _activation(op_name: str, text: str) -> type[Activation]:
    return type(op_name.capitalize(), (Activation,), {"name": op_name, "doc": text})


ACTIVATIONS = [
    _activation("relu", "max(x, 0)"),
    _activation("relu6", "min(max(x, 0), 6)"),
    _activation("gelu", "x * Phi(x), exact (erf) form"),
    _activation("gelu_tanh", "GELU, tanh approximation"),
    _activation("silu", "x * sigmoid(x) (swish)"),
    _activation("hardswish", "x * relu6(x + 3) / 6"),
    _activation("hardsigmoid", "relu6(x + 3) / 6"),
    _activation("sigmoid", "1 / (1 + exp(-x))"),
    _activation("tanh", "tanh(x)"),
    _activation("identity", "x, unchanged (a branch that passes its input through)"),
]


# Activations the inference passes fuse into the conv or linear before them (internal ops
# conv_act, conv_add, linear_act): those with an in-place form and a oneDNN post-op.
FUSABLE_ACTIVATIONS = ("relu", "relu6", "hardswish", "silu", "gelu", "hardsigmoid", "sigmoid", "tanh")


class DropAttrs(Attrs):
    p: confloat(ge=0, lt=1) = 0.0


class Dropout(Op):
    name = "dropout"
    attrs = DropAttrs
    doc = "dropout(p): zeroes elements in training; identity at inference"


class DropPath(Op):
    name = "drop_path"
    attrs = DropAttrs
    doc = "drop_path(p): stochastic depth, drops the whole branch per sample in training; identity at inference"
