"""Every shipped spec *is* its reference model: same parameter count, and the reference's
weights, loaded with import_weights, give the same logits."""
from __future__ import annotations

import pytest
import torch

import archdsl
from conftest import ROOT
from reference import HF_MODELS, hf_model

pytest.importorskip("transformers")

# Parameter counts of the HF reference models (shared/reference/models.md, measured with
# transformers 5.23 / torch 2.13); the test also counts the HF model it builds.
PUBLISHED_PARAMS = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "convnext_tiny": 28_589_128,
    "mobilenet_v2": 3_504_872,
    "levit_128s": 7_777_058,
    "mobilevit_s": 5_578_632,
}


@pytest.mark.parametrize("name", sorted(HF_MODELS))
def test_spec_matches_hf_reference(name):
    ref = hf_model(name, seed=0)
    ref_params = sum(p.numel() for p in ref.parameters())
    assert ref_params == PUBLISHED_PARAMS[name]

    model = archdsl.build(ROOT / "specs" / f"{name}.arch")
    assert sum(p.numel() for p in model.parameters()) == ref_params
    archdsl.import_weights(model, ref.state_dict(), source="hf")
    model.eval()

    x = torch.randn(2, *model.archdsl_info["input_shape"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ref(x).logits
        got = model(x)
    assert got.shape == want.shape == (2, 1000)
    # the reference must depend on its input, or the comparison would only test the head
    assert (want[0] - want[1]).abs().max() > 0.05
    diff = (got - want).abs().max().item()
    print(f"{name}: max |logits - HF logits| = {diff:.2e} (logits scale {want.abs().mean():.2f})")
    assert diff < 1e-4, f"{name}: logits differ from HF by {diff:.3e}"
