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


def leaf(m: nn.Module, same: bool = False) -> tuple[str, list]:
    """(constructor, [(keyword or None, value, default, hint)]) of a leaf module. `same`: a conv
    the spec asks for TensorFlow's "same" padding, which the file computes from the input as
    TensorFlow does (`pads="same"`), so that its instances at stride 1 (symmetric, the conv's
    own padding in archdsl) and 2 (asymmetric, padded apart) are built alike. A 1x1 kernel,
    never padded by "same", keeps its plain form."""
    t = type(m)
    same = same and _pair(m.kernel_size) != 1
    if t is rt.PaddedConv2d or (t is nn.Conv2d and same):
        left, right, top, bottom = m.pads if t is rt.PaddedConv2d else (0,) * 4
        pads = "same" if same else (top, bottom, left, right)
        return "PaddedConv2d", _conv_args(m, padding=False) + [("pads", pads, NO_DEFAULT, "pads")]
    if t in (rt.ConvAct2d, rt.ConvAdd2d):
        return t.__name__, _conv_args(m, padding=False) + [("act", m.act, NO_DEFAULT, "act"),
                                                           ("pads", "same" if same else _fused_pads(m), NO_DEFAULT, "pads")]
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



_PAD_SOURCE = '''
def pad_zeros(x, pads, conv):
    """`x` zero-padded for `conv` by `pads`: (top, bottom, left, right), or "same": TensorFlow's,
    from x's size: the output is ceil(size / stride), the odd pixel of padding goes after."""
    if pads == "same":
        pads = ()
        for size, k, s, d in zip(x.shape[-2:], conv.kernel_size, conv.stride, conv.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += (total // 2, total - total // 2)
    top, bottom, left, right = pads
    return F.pad(x, (left, right, top, bottom))


class PaddedConv2d(nn.Conv2d):
    """A conv whose zero padding is applied before it (pad_zeros), as TensorFlow pads."""

    def __init__(self, *args, pads, **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.pads = pads

    def forward(self, x):
        return self._conv_forward(pad_zeros(x, self.pads, self), self.weight, self.bias)
'''

_FUSED_SOURCE = '''
_ACTIVATIONS = {"relu": F.relu, "relu6": F.relu6, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid,
                "silu": F.silu, "gelu": F.gelu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


class _FusedConv2d(nn.Conv2d):
    """A conv whose output gets an activation (and a residual); zero `pads` as pad_zeros takes them."""

    def __init__(self, *args, act, pads, **kwargs):
        symmetric = pads != "same" and pads[0] == pads[1] and pads[2] == pads[3]
        super().__init__(*args, padding=(pads[0], pads[2]) if symmetric else 0, **kwargs)
        self.pads = None if symmetric else pads  # symmetric padding is the conv's own
        self.act = act

    def _fused(self, x, residual=None):
        if self.pads is not None:
            x = pad_zeros(x, self.pads, self)
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
    if used_classes & (_FUSED | {"PaddedConv2d"}):
        pad = _PAD_SOURCE.strip("\n")
        out.append(pad if "PaddedConv2d" in used_classes else pad[:pad.index("\n\n\nclass PaddedConv2d")])
    if used_classes & _FUSED:
        out.append(_FUSED_SOURCE.strip("\n"))
    for name in sorted(used_classes - _FUSED - {"PaddedConv2d"}):
        obj = getattr(rt, name)
        if name == "LevitAttention":
            from ..ir.ops.attention import levit_bias_offsets

            out.append(inspect.getsource(levit_bias_offsets).rstrip())
        out.append(inspect.getsource(obj).rstrip())
    for name, fn in [*CODE_GLOBALS.items(), ("make_divisible", make_divisible)]:
        if re.search(rf"\b{name}\(", code):
            out.append(inspect.getsource(fn).rstrip())
    return "\n\n\n".join(out)
