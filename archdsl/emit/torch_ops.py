"""How each IR op becomes torch: a leaf module (for ops with tensors) and a code expression.

`lower(node, ins)` returns a `Lowering`: the module to place at the node's scope (or None)
and a template for the generated forward, where `{m}` is the module reference and `{0}`,
`{1}`, ... the argument variables.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..ir.graph import Node
from ..ir.ops import OPS
from ..ir.shape import Shape
from . import channels as ch
from . import runtime as rt
from .checks import check_resolution


@dataclass
class Lowering:
    module: nn.Module | None
    code: str  # e.g. "F.relu({0})" or "{m}({0})"


_ACTIVATION_CODE = {
    "relu": "F.relu({0})", "relu6": "F.relu6({0})", "gelu": "F.gelu({0})",
    "gelu_tanh": "F.gelu({0}, approximate='tanh')", "silu": "F.silu({0})", "hardswish": "F.hardswish({0})",
    "hardsigmoid": "F.hardsigmoid({0})", "sigmoid": "torch.sigmoid({0})", "tanh": "torch.tanh({0})",
    "identity": "{0}",
}


def _conv_args(n: Node, ins: list[Shape]) -> dict:
    """nn.Conv2d's arguments for a conv node (and its fused forms), padding aside."""
    a = n.attrs
    return dict(in_channels=ins[0].c, out_channels=a.out, kernel_size=a.k, stride=a.s, dilation=a.d,
                groups=a.g, bias=a.bias)


def _conv(n: Node, ins: list[Shape]) -> Lowering:
    top, bottom, left, right = n.attrs.pads
    if top == bottom and left == right:
        return Lowering(nn.Conv2d(padding=(top, left), **_conv_args(n, ins)), "{m}({0})")
    return Lowering(rt.PaddedConv2d(pads=n.attrs.pads, **_conv_args(n, ins)), "{m}({0})")


def _fused_conv(cls: type, code: str) -> Callable[[Node, list[Shape]], Lowering]:
    def lower(n: Node, ins: list[Shape]) -> Lowering:
        return Lowering(cls(act=n.attrs.act, pads=n.attrs.pads, **_conv_args(n, ins)), code)
    return lower


def _bn(n: Node, ins: list[Shape]) -> Lowering:
    c, layout = ins[0].c, ins[0].layout
    cls = {"grid": nn.BatchNorm2d, "vector": nn.BatchNorm1d}.get(layout, rt.TokenBatchNorm)
    return Lowering(cls(c, eps=n.attrs.eps), "{m}({0})")


def _layernorm(n: Node, ins: list[Shape]) -> Lowering:
    cls = rt.ChannelLayerNorm if ins[0].layout == "grid" else nn.LayerNorm
    return Lowering(cls(ins[0].c, eps=n.attrs.eps), "{m}({0})")


def _linear(n: Node, ins: list[Shape]) -> Lowering:
    cls = rt.ChannelLinear if ins[0].layout == "grid" else nn.Linear
    return Lowering(cls(ins[0].c, n.attrs.out, bias=n.attrs.bias), "{m}({0})")


def _linear_act(n: Node, ins: list[Shape]) -> Lowering:
    module = rt.LinearAct(ins[0].c, n.attrs.out, bias=n.attrs.bias, act=n.attrs.act, grid=ins[0].layout == "grid")
    return Lowering(module, "{m}({0})")


def _pool(kind: str) -> Callable[[Node, list[Shape]], Lowering]:
    def lower(n: Node, ins: list[Shape]) -> Lowering:
        a = n.attrs
        if a.k is None:
            if ins[0].layout == "tokens":
                return Lowering(None, "{0}.mean(1)")
            return Lowering(None, f"F.adaptive_{kind}_pool2d({{0}}, 1)")
        s = a.s or a.k
        return Lowering(None, f"F.{kind}_pool2d({{0}}, {tuple(a.k)}, {tuple(s)}, {tuple(a.p)}, ceil_mode={a.ceil})")
    return lower


def _align_corners(a) -> str:
    return f", align_corners={a.align_corners}" if a.mode == "bilinear" else ""


def _concat(n: Node, ins: list[Shape]) -> Lowering:
    dim = 1 if ins[0].layout == "grid" else -1
    args = ", ".join(f"{{{i}}}" for i in range(len(ins)))
    return Lowering(None, f"torch.cat([{args}], {dim})")


def _chunk(n: Node, ins: list[Shape]) -> Lowering:
    start, end = OPS["chunk"].channel_range(n.attrs, ins[0].c)
    return Lowering(None, f"channel_chunk({{0}}, {start}, {end}, {ins[0].layout == 'grid'})")


def _levit_attention(n: Node, ins: list[Shape]) -> Lowering:
    a = n.attrs
    q = ins[0]
    module = rt.LevitAttention(a.key_dim, a.heads, a.attn_ratio, a.stride, (q.h, q.w), a.resolution,
                               gathered=n.op == "levit_attention_gathered")
    return Lowering(module, "{m}(" + ", ".join(f"{{{i}}}" for i in range(len(ins))) + ")")


LOWERINGS: dict[str, Callable[[Node, list[Shape]], Lowering]] = {
    "conv": _conv,
    "conv_act": _fused_conv(rt.ConvAct2d, "{m}({0})"),
    "conv_add": _fused_conv(rt.ConvAdd2d, "{m}({0}, {1})"),
    "bn": _bn,
    "layernorm": _layernorm,
    "linear": _linear,
    "linear_act": _linear_act,
    "grn": lambda n, ins: Lowering(rt.GlobalResponseNorm(ins[0].c, n.attrs.eps), "{m}({0})"),
    "layer_scale": lambda n, ins: Lowering(rt.LayerScale(ins[0].c, n.attrs.init, ins[0].layout == "grid"), "{m}({0})"),
    "maxpool": _pool("max"),
    "avgpool": _pool("avg"),
    "flatten": lambda n, ins: Lowering(None, "{0}.flatten(1)"),
    "dropout": lambda n, ins: Lowering(None, f"F.dropout({{0}}, {n.attrs.p}, self.training)"),
    "dropout2d": lambda n, ins: Lowering(None, f"F.dropout2d({{0}}, {n.attrs.p}, self.training)"),
    "upsample": lambda n, ins: Lowering(None, f"F.interpolate({{0}}, size={(n.shape.h, n.shape.w)}, "
                                              f"mode={n.attrs.mode!r}{_align_corners(n.attrs)})"),
    "drop_path": lambda n, ins: Lowering(None, f"drop_path({{0}}, {n.attrs.p}, self.training)"),
    "add": lambda n, ins: Lowering(None, " + ".join(f"{{{i}}}" for i in range(len(ins)))),
    "mean": lambda n, ins: Lowering(None, "(" + " + ".join(f"{{{i}}}" for i in range(len(ins))) + f") / {len(ins)}"),
    "mul": lambda n, ins: Lowering(None, "{0} * {1}"),
    "concat": _concat,
    "tokens": lambda n, ins: Lowering(None, "{0}.flatten(2).transpose(1, 2)"),
    "grid": lambda n, ins: Lowering(None, f"{{0}}.transpose(1, 2).unflatten(2, ({ins[0].h}, {ins[0].w}))"),
    "subsample": lambda n, ins: Lowering(
        None, f"{{0}}.unflatten(1, ({ins[0].h}, {ins[0].w}))[:, ::{n.attrs.stride}, ::{n.attrs.stride}].flatten(1, 2)"),
    "unfold": lambda n, ins: Lowering(None, f"unfold_patches({{0}}, {n.attrs.patch[0]}, {n.attrs.patch[1]})"),
    "fold": lambda n, ins: Lowering(
        None, f"fold_patches({{0}}, {n.attrs.patch[0]}, {n.attrs.patch[1]}, {n.shape.h}, {n.shape.w})"),
    "levit_attention": _levit_attention,
    "levit_attention_gathered": _levit_attention,
    "sdpa": lambda n, ins: Lowering(None, f"multi_head_attention({{0}}, {{1}}, {{2}}, {n.attrs.heads})"),
    "chunk": _chunk,
    "channel_shuffle": lambda n, ins: Lowering(None, f"channel_shuffle({{0}}, {n.attrs.groups})"),
    "adaptive_avgpool": lambda n, ins: Lowering(None, f"F.adaptive_avg_pool2d({{0}}, {tuple(n.attrs.size)})"),
    "adaptive_maxpool": lambda n, ins: Lowering(None, f"F.adaptive_max_pool2d({{0}}, {tuple(n.attrs.size)})"),
    **{name: (lambda code: lambda n, ins: Lowering(None, code))(code) for name, code in _ACTIVATION_CODE.items()},
}

# Names the generated code may use.
CODE_GLOBALS = {
    "drop_path": rt.drop_path, "multi_head_attention": rt.multi_head_attention,
    "unfold_patches": rt.unfold_patches, "fold_patches": rt.fold_patches,
    "channel_chunk": ch.channel_chunk, "channel_shuffle": ch.channel_shuffle,
    "check_resolution": check_resolution,
}


def lower(node: Node, ins: list[Shape]) -> Lowering:
    """The lowering of a node; its module holds the node's `meta["tensors"]` when it carries them."""
    lowering = LOWERINGS[node.op](node, ins)
    tensors = node.meta.get("tensors")
    if lowering.module is not None and tensors is not None:
        load_tensors(lowering.module, tensors, node.scope)
    return lowering


def load_tensors(module: nn.Module, tensors: dict, scope: str = "") -> None:
    """Put a node's tensors into its module as they are (dtype and device included), every
    state_dict entry accounted for."""
    want = set(module.state_dict())
    if set(tensors) != want:
        raise ValueError(f"{scope}: node carries tensors {sorted(tensors)} but its module has {sorted(want)}")
    module.load_state_dict(tensors, strict=True, assign=True)
