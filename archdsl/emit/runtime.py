"""The torch building blocks that emitted modules are made of.

Standard layers are used where one fits (their state_dict names are what reference
checkpoints use); the small classes here add the layout handling the IR needs: channel-wise
linear and layer norm on [B, C, H, W] maps, batch norm over tokens, LeViT's attention with
its bias table, MobileViT's patch unfolding.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ir.ops.attention import levit_bias_offsets
from . import onednn


class PaddedConv2d(nn.Conv2d):
    """A conv with asymmetric zero padding (TensorFlow 'SAME'), applied before the conv."""

    def __init__(self, *args, pads: tuple[int, int, int, int], **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        top, bottom, left, right = pads
        self.pads = (left, right, top, bottom)  # F.pad order: last dim first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(F.pad(x, self.pads), self.weight, self.bias)


def _relu_(x):
    return F.relu_(x)


def _relu6_(x):
    return F.hardtanh_(x, 0.0, 6.0)


def _hardswish_(x):
    return F.hardswish(x, inplace=True)


def _hardsigmoid_(x):
    return F.hardsigmoid(x, inplace=True)


def _silu_(x):
    return F.silu(x, inplace=True)


def _sigmoid_(x):
    return x.sigmoid_()


def _tanh_(x):
    return x.tanh_()


# In-place activations on a fresh output; named functions (not lambdas), so modules pickle.
_INPLACE_ACT = {
    "relu": _relu_, "relu6": _relu6_, "hardswish": _hardswish_, "hardsigmoid": _hardsigmoid_,
    "silu": _silu_, "gelu": F.gelu,  # no in-place form
    "sigmoid": _sigmoid_, "tanh": _tanh_,
}


class _FusedConv2d(nn.Conv2d):
    """An nn.Conv2d (same tensors, same state_dict names) whose output gets elementwise work
    fused onto it, with optional asymmetric zero padding as PaddedConv2d. On CPU in float32
    this is one oneDNN kernel with the work as a post-op (`onednn`); elsewhere the aten conv,
    then the work in place on its fresh output."""

    def __init__(self, *args, act: str | None, pads: tuple[int, int, int, int], **kwargs):
        top, bottom, left, right = pads
        symmetric = top == bottom and left == right
        super().__init__(*args, padding=(top, left) if symmetric else 0, **kwargs)
        self.pads = None if symmetric else (left, right, top, bottom)
        self.act = act
        self._act = _INPLACE_ACT[act] if act else None

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop(onednn.CACHE_ATTR, None)  # an opaque oneDNN tensor: rebuilt on the next call
        return state

    def _fused(self, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        if self.pads is not None:
            x = F.pad(x, self.pads)
        act = self._act
        if onednn.applies(x, self.weight):
            post_op = self.act if residual is None or self.act in onednn.SUM_POST_OPS else None
            y = onednn.conv(self, x, post_op, residual)
            if post_op is not None:
                act = None
        else:
            y = self._conv_forward(x, self.weight, self.bias)
            if residual is not None:
                y = y + residual
        return act(y) if act else y

    def extra_repr(self) -> str:
        return super().extra_repr() + f", act={self.act}"


class ConvAct2d(_FusedConv2d):
    """A conv and the activation of its output (IR op `conv_act`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fused(x, None)


class ConvAdd2d(_FusedConv2d):
    """A conv, plus a residual of its output's shape, then an optional activation (IR op
    `conv_add`: ResNet's last conv of a block with the shortcut sum and the ReLU)."""

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self._fused(x, residual)


class LinearAct(nn.Linear):
    """A linear and the activation of its output (IR op `linear_act`), over the last dim, or
    over the channels of a [B, C, H, W] map when `grid`; one oneDNN kernel on CPU in float32."""

    def __init__(self, *args, act: str, grid: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.act, self.grid = act, grid
        self._act = _INPLACE_ACT[act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grid:
            x = x.permute(0, 2, 3, 1)
        if self.act in onednn.LINEAR_POST_OPS and onednn.applies(x, self.weight):
            y = onednn.linear(x, self.weight, self.bias, self.act)
        else:
            y = self._act(F.linear(x, self.weight, self.bias))
        return y.permute(0, 3, 1, 2) if self.grid else y

    def extra_repr(self) -> str:
        return super().extra_repr() + f", act={self.act}"


class ChannelLinear(nn.Linear):
    """nn.Linear over the channels of a [B, C, H, W] map (ConvNeXt's pointwise MLP)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(0, 3, 1, 2)


class ChannelLayerNorm(nn.LayerNorm):
    """nn.LayerNorm over the channels of a [B, C, H, W] map, per pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class TokenBatchNorm(nn.BatchNorm1d):
    """Batch norm over the last (channel) dim of tokens [B, N, C] or patches [B*P, N, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # nn.BatchNorm1d's forward, spelt out: TorchScript has no super() calls
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        out = F.batch_norm(x.flatten(0, -2), self.running_mean if keep else None, self.running_var if keep else None,
                           self.weight, self.bias, use_batch, factor, self.eps)
        return out.view(x.shape)


class LayerScale(nn.Module):
    """A learnable per-channel factor."""

    def __init__(self, channels: int, init: float, grid: bool):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), float(init)))
        self.init, self.grid = float(init), grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.gamma.view(-1, 1, 1) if self.grid else self.gamma)


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's GRN on a [B, C, H, W] map: x + gamma * (x * N(x)) + beta."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.linalg.vector_norm(x, ord=2, dim=(2, 3), keepdim=True)
        nx = gx / (gx.mean(dim=1, keepdim=True) + self.eps)
        return self.gamma.view(-1, 1, 1) * (x * nx) + self.beta.view(-1, 1, 1) + x


class LevitAttention(nn.Module):
    """LeViT attention with a learned bias per head and relative offset.

    One input: per-head [q k v] tokens. Two inputs (stride > 1): queries and per-head [k v].
    """

    def __init__(self, key_dim: int, heads: int, attn_ratio: int, stride: int,
                 q_grid: tuple[int, int], k_grid: tuple[int, int], gathered: bool = False):
        super().__init__()
        self.key_dim, self.heads, self.value_dim = key_dim, heads, attn_ratio * key_dim
        self.scale = key_dim ** -0.5
        self.gathered = gathered
        self.attn_ratio, self.stride, self.q_grid, self.k_grid = attn_ratio, stride, tuple(q_grid), tuple(k_grid)
        offsets, idxs = levit_bias_offsets(q_grid, k_grid, stride)
        if gathered:
            # inference form: the [heads, Nq, Nk] bias, gathered once (see passes.levit)
            # a buffer: derived from the learnt table (parameter counts stay the model's)
            self.register_buffer("attention_bias", torch.zeros(heads, len(idxs), len(idxs[0])))
            # TorchScript compiles both forms' code: the other form's names exist, empty
            self.register_buffer("attention_biases", torch.zeros(heads, 0), persistent=False)
            self.register_buffer("attention_bias_idxs", torch.zeros(0, 0, dtype=torch.long), persistent=False)
            return
        self.attention_biases = nn.Parameter(torch.zeros(heads, len(offsets)))
        # rebuilt from the grids, so not part of the state_dict (as in timm and HF)
        self.register_buffer("attention_bias_idxs", torch.tensor(idxs, dtype=torch.long), persistent=False)
        self.register_buffer("attention_bias", torch.zeros(0), persistent=False)  # the gathered form's (TorchScript)

    def bias(self) -> torch.Tensor:
        if self.gathered:
            return self.attention_bias
        return self.attention_biases[:, self.attention_bias_idxs]

    def forward(self, x: torch.Tensor, kv: torch.Tensor | None = None) -> torch.Tensor:
        b = x.shape[0]
        if kv is None:
            q, k, v = x.view(b, x.shape[1], self.heads, -1).split([self.key_dim, self.key_dim, self.value_dim], 3)
        else:
            k, v = kv.view(b, kv.shape[1], self.heads, -1).split([self.key_dim, self.value_dim], 3)
            q = x.view(b, x.shape[1], self.heads, self.key_dim)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if self.gathered:
            # inference form: scale q (Nq x d values) rather than the scores (Nq x Nk), add the
            # bias in place on the fresh scores (1.07x-1.15x on LeViT-128S at batch 8)
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn += self.attention_bias
        else:  # the reference's order of operations, for bit-exact parity
            attn = (q @ k.transpose(-2, -1)) * self.scale + self.bias()
        out = attn.softmax(dim=-1) @ v
        return out.transpose(1, 2).reshape(b, q.shape[2], self.heads * self.value_dim)


def multi_head_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v with `heads` heads over [B, N, C] tensors."""
    b, n, c = q.shape
    q = q.view(b, n, heads, -1).transpose(1, 2)
    k = k.view(b, k.shape[1], heads, -1).transpose(1, 2)
    v = v.view(b, v.shape[1], heads, -1).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v)
    return out.transpose(1, 2).reshape(b, n, v.shape[1] * v.shape[3])


def unfold_patches(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """[B, C, H, W] -> [B*ph*pw, (H/ph)*(W/pw), C]: one sequence per pixel position in a patch."""
    b, c, h, w = x.shape
    nh, nw = h // ph, w // pw
    x = x.reshape(b * c * nh, ph, nw, pw).transpose(1, 2)
    x = x.reshape(b, c, nh * nw, ph * pw).transpose(1, 3)
    return x.reshape(b * ph * pw, nh * nw, c)


def fold_patches(x: torch.Tensor, ph: int, pw: int, h: int, w: int) -> torch.Tensor:
    """The inverse of `unfold_patches`, back to [B, C, H, W]."""
    bp, n, c = x.shape
    b = bp // (ph * pw)
    nh, nw = h // ph, w // pw
    x = x.contiguous().view(b, ph * pw, n, c).transpose(1, 3)
    x = x.reshape(b * c * nh, nw, ph, pw).transpose(1, 2)
    return x.reshape(b, c, h, w)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero the whole branch for a random subset of samples in training."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> tokens [B, H*W, C]."""
    return x.flatten(2).transpose(1, 2)


def to_grid(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Tokens [B, H*W, C] -> [B, C, H, W]."""
    return x.transpose(1, 2).unflatten(2, (h, w))


def subsample_tokens(x: torch.Tensor, h: int, w: int, stride: int) -> torch.Tensor:
    """Every stride-th token of an h x w token grid, in both directions."""
    return x.unflatten(1, (h, w))[:, ::stride, ::stride].flatten(1, 2)


def mean_of(*xs: torch.Tensor) -> torch.Tensor:
    """The elementwise mean of branches."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out / len(xs)


class DropPath(nn.Module):
    """Stochastic depth as a module (the FX emitter's form: it follows `self.training`)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)


__all__ = ["ConvAct2d", "ConvAdd2d", "LinearAct", "to_tokens", "to_grid", "subsample_tokens", "mean_of", "DropPath", "PaddedConv2d", "ChannelLinear", "ChannelLayerNorm", "TokenBatchNorm", "LayerScale",
           "GlobalResponseNorm", "LevitAttention", "multi_head_attention", "unfold_patches", "fold_patches",
           "drop_path", "math"]
