"""Resource limits, checked while elaborating: before any tensor exists.

Memory limits are in bytes (fp32, batch 1), so that they read as what they protect: the
machine's memory. Their defaults fit a normal machine and every model of the zoo many
times over:

- parameters: 8 GiB (about 2.1e9 fp32 parameters). The largest image classifiers in timm
  (ViT-gigantic, 1.8e9 parameters: 7.4 GB) fit; a four-line spec with a 5e9-parameter linear
  (20 GB) is refused before `build` allocates a byte. ConvNeXt-XL, the largest of the zoo's
  families, needs 1.4 GB.
- one feature map, the input included: 4 GiB (1.07e9 elements). A 64-channel map at
  4096 x 4096 (segmentation-sized inputs) is 4 GiB; the zoo's largest at 224 px is 3.2 MB.

Raise them explicitly: `Limits(max_param_bytes=32 * 2**30)` in Python, or on the command
line `archdsl build spec.arch --limit params=32GiB --limit activation=16GiB --limit nodes=100000`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

from .errors import ArchLimitError, Span

BYTES_PER_ELEMENT = 4  # fp32: what `build` allocates by default
GiB = 2**30


@dataclass(frozen=True)
class Limits:
    """Resource limits checked while elaborating, before anything is allocated."""

    max_nodes: int = 50_000
    max_repeat: int = 10_000
    max_iterations: int = 1_000_000  # loop iterations in all, with or without ops
    max_work: int = 200_000  # steps of elaboration work beyond the ops built: see elaborate/environment.py
    max_block_depth: int = 48
    max_param_bytes: int = 8 * GiB  # all parameters, fp32
    max_activation_bytes: int = 4 * GiB  # any one feature map (the input included), fp32, batch 1

    def check_activation(self, shape, span: Span | None, what: str = "this op's output") -> None:
        """Refuse a feature map over `max_activation_bytes` (named, with the limit and how to raise it)."""
        size = shape.numel * BYTES_PER_ELEMENT
        if size > self.max_activation_bytes:
            raise ArchLimitError(f"{what} {shape.describe()} takes {human_bytes(size)} (fp32, batch 1), over "
                                 f"the limit of {human_bytes(self.max_activation_bytes)} for one feature map", span,
                                 "check the input resolution and channel counts; to allow it, raise the limit: "
                                 "--limit activation=SIZE, or Limits(max_activation_bytes=...)")

    def check_params(self, count: int, span: Span | None) -> None:
        """Refuse a model whose parameters so far take more than `max_param_bytes`."""
        size = count * BYTES_PER_ELEMENT
        if size > self.max_param_bytes:
            raise ArchLimitError(f"the model's parameters take more than {human_bytes(self.max_param_bytes)} "
                                 f"({count:,} parameters so far: {human_bytes(size)} in fp32)", span,
                                 "check channel counts; to allow it, raise the limit: --limit params=SIZE, "
                                 "or Limits(max_param_bytes=...)")


def human_bytes(n: int) -> str:
    """4294967296 -> '4 GiB', 1536 -> '1.5 KiB'."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


# `--limit NAME=VALUE`: the name on the command line, the Limits field, and whether it is bytes
LIMIT_NAMES = {"params": "max_param_bytes", "activation": "max_activation_bytes", "nodes": "max_nodes",
               "repeat": "max_repeat", "iterations": "max_iterations", "block-depth": "max_block_depth", "work": "max_work"}
_SIZE = re.compile(r"(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgt]i?)?b?", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(text: str) -> int:
    """'16GiB' -> 17179869184, '2e9' -> 2000000000, '512MB' -> 512000000; ValueError otherwise."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a size: {text!r} (write e.g. 16GiB, 500MB or 2e9)")
    value = float(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    if not value < 2**63:
        raise ValueError(f"{text!r} is too large")
    return int(value)


def with_overrides(limits: Limits, items: list[str]) -> Limits:
    """`limits` with `--limit NAME=VALUE` items applied; ValueError with a readable message."""
    changes = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in LIMIT_NAMES:
            raise ValueError(f"--limit expects NAME=VALUE with NAME one of {', '.join(LIMIT_NAMES)}; got {item!r}")
        number = parse_size(value)
        if number <= 0:
            raise ValueError(f"--limit {name} must be positive")
        changes[LIMIT_NAMES[name]] = number
    known = {f.name for f in fields(Limits)}
    assert set(changes) <= known
    return replace(limits, **changes)
