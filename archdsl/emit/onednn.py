"""oneDNN kernels for the fused inference ops on CPU: conv + activation, conv + residual add
(+ activation), linear + activation, each one kernel with the elementwise work as a post-op,
and conv weights reordered once into oneDNN's blocked layout instead of on every call.

These are the kernels inductor selects for the same patterns on CPU (`mkldnn._convolution_
pointwise`, `mkldnn._linear_pointwise`); archdsl knows the patterns from the IR, so an eager
module gets them with no compile step. They are used only where they are valid: float32 on
CPU with oneDNN built in, no autograd recording (they have no backward), and not while
torch.compile traces (inductor makes its own choice there). Everywhere else the modules run
the plain aten ops, so the same module still trains, runs in float64, or on another device.
"""
from __future__ import annotations

import contextlib

import torch

# archdsl activation -> oneDNN post-op (attr, scalars, algorithm), as inductor spells them.
POST_OPS: dict[str, tuple[str, list, str]] = {
    "relu": ("relu", [], ""),
    "relu6": ("hardtanh", [0.0, 6.0], ""),
    "silu": ("swish", [], ""),
    "hardswish": ("hardswish", [], ""),
    "hardsigmoid": ("hardsigmoid", [], ""),
    "sigmoid": ("sigmoid", [], ""),
    "tanh": ("tanh", [], ""),
    "gelu": ("gelu", [], "none"),
}

# Activations oneDNN applies after a residual sum in the same kernel (the binary post-op takes
# only these; others run in place on its output).
SUM_POST_OPS = frozenset({"relu"})

# Activations worth a fused oneDNN matmul rather than MKL's sgemm and the activation in place:
# GELU (erf) is costly enough that fusing it pays (ConvNeXt-T 1.06x at batch 1); for the
# cheap ones on LeViT's and MobileViT's small matmuls sgemm measured faster.
LINEAR_POST_OPS = frozenset({"gelu"})

_enabled = torch.backends.mkldnn.is_available()


def available() -> bool:
    """Whether the oneDNN kernels are built in and switched on."""
    return _enabled


@contextlib.contextmanager
def disabled():
    """Run the plain aten ops inside this block (ablations, debugging)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """The oneDNN kernel can stand in for the aten ops on this call."""
    return (_enabled and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.device.type == "cpu" and weight.device.type == "cpu"
            and not torch.compiler.is_compiling() and not torch.jit.is_tracing()  # traces keep aten ops
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)))


CACHE_ATTR = "_onednn_weight"  # where a conv module keeps its reordered weight (not state)


def _packed_conv_weight(conv, x: torch.Tensor) -> torch.Tensor:
    """The conv's weight in oneDNN's layout for inputs shaped like `x`, reordered once and
    kept until the weight (its storage or version) or the input shape changes."""
    key = (conv.weight.data_ptr(), conv.weight._version, tuple(x.shape))
    cached = conv.__dict__.get(CACHE_ATTR)
    if cached is None or cached[0] != key:
        packed = torch.ops.mkldnn._reorder_convolution_weight(
            conv.weight.detach(), list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups,
            list(x.shape))
        cached = conv.__dict__[CACHE_ATTR] = (key, packed)
    return cached[1]


def conv(conv, x: torch.Tensor, act: str | None = None, residual: torch.Tensor | None = None) -> torch.Tensor:
    """`act(conv(x) [+ residual])` in one oneDNN kernel; `conv` is an nn.Conv2d with symmetric
    padding (asymmetric padding is applied to `x` before). With a residual, `act` must be in
    SUM_POST_OPS."""
    weight = _packed_conv_weight(conv, x)
    geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
    attr, scalars, algorithm = POST_OPS[act] if act else ("none", [], "")
    if residual is None:
        return torch.ops.mkldnn._convolution_pointwise(x, weight, conv.bias, *geometry, attr, scalars, algorithm)
    return torch.ops.mkldnn._convolution_pointwise.binary(
        x, residual, weight, conv.bias, *geometry, "add", None,
        attr if act else None, scalars, algorithm if act else None)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: str) -> torch.Tensor:
    """`act(x @ weight.T + bias)` over the last dim of `x`, in one oneDNN kernel."""
    attr, scalars, algorithm = POST_OPS[act]
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, attr, scalars, algorithm)
