"""Shared checks for the zoo tests: a spec against a reference model from HF, torchvision or timm.

- `reference_params_and_mapping`: on the meta device (no memory), the reference and our model
  have the same parameter count, and the family's mapping for `source` maps every reference
  tensor onto one of ours with the same shape, filling every one of ours.
- `assert_logits_match`: full size, the reference's (randomised, calibrated) weights loaded with
  `archdsl.import_weights` give the reference's logits within `tol` of their scale.
"""
from __future__ import annotations

from typing import Callable

import torch

import archdsl
from archdsl.weights import load_mapping, map_keys
from archdsl.weights.mapping import split_tensors
from conftest import ROOT
from reference import calibrate, randomize

OPTIONAL = ("num_batches_tracked",)


def spec_path(name: str):
    return ROOT / "specs" / f"{name}.arch"


def assert_mapping_complete(name: str, make_reference: Callable[[], torch.nn.Module], source: str,
                            expected_params: int, **overrides) -> None:
    """Meta-device check of a variant: parameter counts and a complete, shape-exact mapping.
    `overrides` are family parameters for our build (`aux_logits=True`)."""
    with torch.device("meta"):
        ref = make_reference()
    ref_params = sum(p.numel() for p in ref.parameters())
    assert ref_params == expected_params, f"{name}: the {source} reference has {ref_params:,} parameters"
    ours = archdsl.build(spec_path(name), device="meta", **overrides)
    assert sum(p.numel() for p in ours.parameters()) == ref_params
    mapping = load_mapping(ours, source)
    theirs, mine = split_tensors(mapping, ref.state_dict()), ours.state_dict()
    mapped, unmapped = map_keys(mapping, theirs.keys(), mine.keys())
    assert not unmapped, f"{name}: {source} tensors map to nothing: {unmapped[:8]}"
    for src, dst in mapped.items():
        a, b = theirs[src].shape, mine[dst].shape
        assert a.numel() == b.numel() and [d for d in a if d != 1] == [d for d in b if d != 1], \
            f"{name}: {src} {list(a)} -> {dst} {list(b)}"
    filled = set(mapped.values())
    missing = [k for k in mine if k not in filled and not k.endswith(OPTIONAL)]
    assert not missing, f"{name}: our tensors left unfilled by {source}: {missing[:8]}"
    assert len(filled) == len(mapped), f"{name}: two {source} tensors map onto one of ours"


def prepared_reference(make_reference: Callable[[], torch.nn.Module], input_shape, seed: int = 0):
    """A reference model with weights that cannot hide a wrong mapping (see reference.py)."""
    torch.manual_seed(seed)
    ref = make_reference()
    randomize(ref, seed)
    calibrate(ref, tuple(input_shape), seed)
    return ref.eval()


def assert_logits_match(name: str, ref: torch.nn.Module, source: str, tol: float = 1e-4,
                        logits: Callable = lambda out: out) -> None:
    """import_weights(ref) into our spec, then equal logits on a random batch of 2."""
    model = archdsl.build(spec_path(name))
    archdsl.import_weights(model, ref.state_dict(), source=source)
    model.eval()
    x = torch.randn(2, *model.archdsl_info["input_shape"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = logits(ref(x))
        got = model(x)
    assert got.shape == want.shape
    assert (want[0] - want[1]).abs().max() > 0.05 * want.abs().mean(), "the reference ignores its input"
    scale = max(1.0, want.abs().max().item())
    diff = (got - want).abs().max().item()
    print(f"{name} vs {source}: max |diff| = {diff:.2e} (logits scale {scale:.2f})")
    assert diff <= tol * scale, f"{name}: logits differ from {source} by {diff:.3e} (scale {scale:.2f})"
