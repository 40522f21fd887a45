"""Runtime checks called from generated forwards (TorchScript-compatible)."""
from __future__ import annotations

import torch


def check_resolution(x: torch.Tensor, h: int, w: int, message: str) -> None:
    """Refuse an input whose spatial size is not the one the model was built for."""
    if x.shape[-2] != h or x.shape[-1] != w:
        raise ValueError(message + str(x.shape[-2]) + "x" + str(x.shape[-1]) + ".")
