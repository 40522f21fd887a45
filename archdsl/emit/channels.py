"""Runtime functions of the channel ops (chunk, channel_shuffle), shared by the generated
forwards and the torch.fx emitter."""
from __future__ import annotations

import torch


def channel_chunk(x: torch.Tensor, start: int, end: int, grid: bool) -> torch.Tensor:
    """Channels [start, end): dim 1 of a feature map [B, C, H, W], the last dim otherwise."""
    return x[:, start:end] if grid else x[..., start:end]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[B, C, H, W] with channels viewed as [groups, C/groups], transposed and flattened back
    (ShuffleNet): channel g*(C/groups)+j moves to j*groups+g. Works on any memory format."""
    return x.unflatten(1, (groups, x.shape[1] // groups)).transpose(1, 2).flatten(1, 2)


__all__ = ["channel_chunk", "channel_shuffle"]
