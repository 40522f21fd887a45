"""Leaf modules in source form, for `archdsl eject`: the constructor call of each module the
lowering table makes (`nn.Conv2d(64, 128, kernel_size=3, ...)`), and the source of the
runtime classes and functions an ejected file uses, copied from archdsl."""
from __future__ import annotations

import inspect
import re

from torch import nn

from ..elaborate.values import make_divisible
from . import runtime as rt
from .torch_ops import CODE_GLOBALS

NO_DEFAULT = object()


# ------------------------------------------------------------------------ leaf modules
def _pair(v):
    v = tuple(v) if isinstance(v, (tuple, list)) else v
    return v[0] if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1] else v


def _conv_args(m: nn.Conv2d, padding=None) -> list:
    return [(None, m.in_channels, NO_DEFAULT, "in_channels"), (None, m.out_channels, NO_DEFAULT, "out_channels"),
            ("kernel_size", _pair(m.kernel_size), NO_DEFAULT, "kernel_size"),
            ("stride", _pair(m.stride), 1, "stride"),
            *([("padding", _pair(m.padding), 0, "padding")] if padding is None else []),
            ("dilation", _pair(m.dilation), 1, "dilation"), ("groups", m.groups, 1, "groups"),
            ("bias", m.bias is not None, True, "bias")]


def _fused_pads(m) -> tuple:
    if m.pads is None:
        top, left = m.padding
        return (top, top, left, left)
    left, right, top, bottom = m.pads
    return (top, bottom, left, right)


def leaf(m: nn.Module) -> tuple[str, list]:
    """(constructor, [(keyword or None, value, default, hint)]) of a leaf module."""
    t = type(m)
    if t is rt.PaddedConv2d:
        left, right, top, bottom = m.pads
        return "PaddedConv2d", _conv_args(m, padding=False) + [("pads", (top, bottom, left, right), NO_DEFAULT, "pads")]
    if t in (rt.ConvAct2d, rt.ConvAdd2d):
        return t.__name__, _conv_args(m, padding=False) + [("act", m.act, NO_DEFAULT, "act"),
                                                           ("pads", _fused_pads(m), NO_DEFAULT, "pads")]
    if t is nn.Conv2d:
        return "nn.Conv2d", _conv_args(m)
    if t in (nn.BatchNorm2d, nn.BatchNorm1d, rt.TokenBatchNorm):
        name = t.__name__ if t is rt.TokenBatchNorm else f"nn.{t.__name__}"
        return name, [(None, m.num_features, NO_DEFAULT, "channels"), ("eps", m.eps, 1e-5, "eps"),
                      ("momentum", m.momentum, 0.1, "momentum")]
    if t in (nn.LayerNorm, rt.ChannelLayerNorm):
        name = "ChannelLayerNorm" if t is rt.ChannelLayerNorm else "nn.LayerNorm"
        return name, [(None, m.normalized_shape[0], NO_DEFAULT, "channels"), ("eps", m.eps, 1e-5, "eps")]
    if t in (nn.Linear, rt.ChannelLinear, rt.LinearAct):
        name = "nn.Linear" if t is nn.Linear else t.__name__
        args = [(None, m.in_features, NO_DEFAULT, "in_features"), (None, m.out_features, NO_DEFAULT, "out_features"),
                ("bias", m.bias is not None, True, "bias")]
        if t is rt.LinearAct:
            args += [("act", m.act, NO_DEFAULT, "act"), ("grid", m.grid, NO_DEFAULT, "grid")]
        return name, args
    if t is rt.GlobalResponseNorm:
        return "GlobalResponseNorm", [(None, m.gamma.shape[0], NO_DEFAULT, "channels"), ("eps", m.eps, NO_DEFAULT, "eps")]
    if t is rt.LayerScale:
        return "LayerScale", [(None, m.gamma.shape[0], NO_DEFAULT, "channels"), ("init", m.init, NO_DEFAULT, "init"),
                              ("grid", m.grid, NO_DEFAULT, "grid")]
    if t is rt.LevitAttention:
        return "LevitAttention", [(None, m.key_dim, NO_DEFAULT, "key_dim"), (None, m.heads, NO_DEFAULT, "heads"),
                                  (None, m.attn_ratio, NO_DEFAULT, "attn_ratio"), (None, m.stride, NO_DEFAULT, "stride"),
                                  (None, m.q_grid, NO_DEFAULT, "q_grid"), (None, m.k_grid, NO_DEFAULT, "k_grid"),
                                  ("gathered", m.gathered, False, "gathered")]
    raise NotImplementedError(f"eject: no source form for {t.__module__}.{t.__qualname__}; "
                              "add one to archdsl/emit/eject.py (leaf)")


def literal(v) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(literal(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)



_FUSED_SOURCE = '''
_ACTIVATIONS = {"relu": F.relu, "relu6": F.relu6, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid,
                "silu": F.silu, "gelu": F.gelu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


class _FusedConv2d(nn.Conv2d):
    """A conv whose output gets an activation (and a residual); zero `pads` (top, bottom, left, right)."""

    def __init__(self, *args, act, pads, **kwargs):
        top, bottom, left, right = pads
        symmetric = top == bottom and left == right
        super().__init__(*args, padding=(top, left) if symmetric else 0, **kwargs)
        self.pads = None if symmetric else (left, right, top, bottom)
        self.act = act

    def _fused(self, x, residual=None):
        if self.pads is not None:
            x = F.pad(x, self.pads)
        y = self._conv_forward(x, self.weight, self.bias)
        if residual is not None:
            y = y + residual
        return _ACTIVATIONS[self.act](y) if self.act else y


class ConvAct2d(_FusedConv2d):
    def forward(self, x):
        return self._fused(x)


class ConvAdd2d(_FusedConv2d):
    def forward(self, x, residual):
        return self._fused(x, residual)


class LinearAct(nn.Linear):
    """A linear and its activation, over the last dim or the channels of a [B, C, H, W] map."""

    def __init__(self, *args, act, grid, **kwargs):
        super().__init__(*args, **kwargs)
        self.act, self.grid = act, grid

    def forward(self, x):
        if self.grid:
            x = x.permute(0, 2, 3, 1)
        y = _ACTIVATIONS[self.act](F.linear(x, self.weight, self.bias))
        return y.permute(0, 3, 1, 2) if self.grid else y
'''

_FUSED = {"ConvAct2d", "ConvAdd2d", "LinearAct"}


def helpers(used_classes: set[str], sources: list[str]) -> str:
    """The source of the runtime classes and functions the file uses, copied from archdsl."""
    out = []
    code = "\n".join(sources)
    if used_classes & _FUSED:
        out.append(_FUSED_SOURCE.strip("\n"))
    for name in sorted(used_classes - _FUSED):
        obj = getattr(rt, name)
        if name == "LevitAttention":
            from ..ir.ops.attention import levit_bias_offsets

            out.append(inspect.getsource(levit_bias_offsets).rstrip())
        out.append(inspect.getsource(obj).rstrip())
    for name, fn in [*CODE_GLOBALS.items(), ("make_divisible", make_divisible)]:
        if re.search(rf"\b{name}\(", code):
            out.append(inspect.getsource(fn).rstrip())
    return "\n\n\n".join(out)
