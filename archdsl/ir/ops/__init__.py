"""The op registry: every primitive the language offers, in one explicit list."""
from __future__ import annotations

from .attention import LevitAttention, LevitAttentionGathered, ScaledDotProductAttention
from .base import Attrs, Op, OpRegistry
from .channels import CHANNEL_OPS
from .conv import AvgPool, Conv, ConvAct, ConvAdd, MaxPool
from .dense import Dropout2d, Upsample
from .elementwise import ACTIVATIONS, Dropout, DropPath
from .linear import Flatten, LayerScale, Linear, LinearAct
from .merge import Add, Concat, Mean, Mul
from .norm import BatchNorm, GlobalResponseNorm, LayerNorm
from .tap import Tap
from .tokens import Fold, Subsample, ToGrid, ToTokens, Unfold


class Input(Op):
    """The graph's input placeholder (not callable from specs)."""

    name = "input"
    min_inputs, max_inputs = 0, 0


OPS = OpRegistry([
    Input(), Conv(), MaxPool(), AvgPool(), BatchNorm(), LayerNorm(), GlobalResponseNorm(),
    *[cls() for cls in ACTIVATIONS], Dropout(), DropPath(), Linear(), LayerScale(), Flatten(),
    Add(), Mean(), Mul(), Concat(), ToTokens(), ToGrid(), Subsample(), Unfold(), Fold(),
    LevitAttention(), ScaledDotProductAttention(), Tap(), Upsample(), Dropout2d(),
    *[cls() for cls in CHANNEL_OPS],  # chunk, channel_shuffle, adaptive_avgpool, adaptive_maxpool
    ConvAct(), ConvAdd(), LinearAct(), LevitAttentionGathered(),  # internal: made by the inference passes
])

# Ops that join branches (usable after `merge`), and those a spec may not call directly.
MERGE_OPS = {"add", "mean", "mul", "concat", "levit_attention", "sdpa"}
INTERNAL_OPS = {"input", "conv_act", "conv_add", "linear_act", "levit_attention_gathered"}

__all__ = ["OPS", "MERGE_OPS", "INTERNAL_OPS", "Op", "Attrs"]
