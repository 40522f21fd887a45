"""The ConvNeXt, ConvNeXt V2 and LeViT specs against HF transformers, torchvision and timm.

HF's ConvNeXt (V1 and V2) normalises the pooled features with LayerNorm eps 1e-12;
torchvision's and timm's use 1e-6, so their weights load into the `_torchvision` /
`_timm` specs (`head_eps = 1e-6`), which otherwise are the same model. timm's LeViT (the
distilled model, its default) computes what HF's does and loads into the same spec.
Every variant and source: mapping on the meta device; full-size logits on the smallest
variant of each family and source (HF's convnext_tiny and levit_128s are in test_parity.py).
"""
from __future__ import annotations

import pytest
import torch

import archdsl
from reference_libs import timm_module, torchvision_models
from zoo_support import assert_logits_match, assert_mapping_complete, prepared_reference, spec_path

# Parameter counts of the references (shared/reference/models.md, HF transformers 5.23;
# torchvision 0.28 and timm 1.0.31 build the same counts, which the mapping test checks).
PARAMS = {
    "convnext_tiny": 28_589_128, "convnext_small": 50_223_688, "convnext_base": 88_591_464,
    "convnext_large": 197_767_336, "convnext_xlarge": 350_196_968,
    "convnextv2_atto": 3_708_400, "convnextv2_femto": 5_233_240, "convnextv2_pico": 9_066_280,
    "convnextv2_nano": 15_623_800, "convnextv2_tiny": 28_635_496, "convnextv2_base": 88_717_800,
    "convnextv2_large": 197_956_840, "convnextv2_huge": 660_289_640,
    "levit_128s": 7_777_058, "levit_128": 9_213_936, "levit_192": 10_947_069,
    "levit_256": 18_893_876, "levit_384": 39_128_836,
}

# HF configs (models.md, "HF constructors" and "More variants"; ConvNeXt V2 as the HF hub's
# facebook/convnextv2-*-1k-224 checkpoints).
CONVNEXT = {
    "tiny": ([3, 3, 9, 3], [96, 192, 384, 768]), "small": ([3, 3, 27, 3], [96, 192, 384, 768]),
    "base": ([3, 3, 27, 3], [128, 256, 512, 1024]), "large": ([3, 3, 27, 3], [192, 384, 768, 1536]),
    "xlarge": ([3, 3, 27, 3], [256, 512, 1024, 2048]),
}
CONVNEXTV2 = {
    "atto": ([2, 2, 6, 2], [40, 80, 160, 320]), "femto": ([2, 2, 6, 2], [48, 96, 192, 384]),
    "pico": ([2, 2, 6, 2], [64, 128, 256, 512]), "nano": ([2, 2, 8, 2], [80, 160, 320, 640]),
    "tiny": ([3, 3, 9, 3], [96, 192, 384, 768]), "base": ([3, 3, 27, 3], [128, 256, 512, 1024]),
    "large": ([3, 3, 27, 3], [192, 384, 768, 1536]), "huge": ([3, 3, 27, 3], [352, 704, 1408, 2816]),
}
LEVIT = {  # hidden_sizes, num_attention_heads, depths, key_dim
    "128s": ([128, 256, 384], [4, 6, 8], [2, 3, 4], 16), "128": ([128, 256, 384], [4, 8, 12], [4, 4, 4], 16),
    "192": ([192, 288, 384], [3, 5, 6], [4, 4, 4], 32), "256": ([256, 384, 512], [4, 6, 8], [4, 4, 4], 32),
    "384": ([384, 512, 768], [6, 9, 12], [4, 4, 4], 32),
}


def hf_reference(name):
    def make():
        import transformers

        family, variant = name.split("_")
        if family == "convnext":
            depths, sizes = CONVNEXT[variant]
            return transformers.ConvNextForImageClassification(
                transformers.ConvNextConfig(num_labels=1000, depths=depths, hidden_sizes=sizes))
        if family == "convnextv2":
            depths, sizes = CONVNEXTV2[variant]
            return transformers.ConvNextV2ForImageClassification(
                transformers.ConvNextV2Config(num_labels=1000, depths=depths, hidden_sizes=sizes))
        sizes, heads, depths, key_dim = LEVIT[variant]
        return transformers.LevitForImageClassificationWithTeacher(transformers.LevitConfig(
            num_labels=1000, hidden_sizes=sizes, num_attention_heads=heads, depths=depths,
            key_dim=[key_dim] * 3, drop_path_rate=0))
    return make


def torchvision_reference(name):
    return lambda: getattr(torchvision_models(), name)(weights=None)


def timm_reference(name):
    return lambda: timm_module().create_model(name, pretrained=False)


def _timm_spec(name):
    """The spec timm's model of that name loads into."""
    if name.startswith("levit"):
        return name
    if name.startswith("convnextv2") or name == "convnext_xlarge":
        return name + "_timm"
    return name + "_torchvision"


# (spec, reference name, source)
CASES = ([(name, name, "hf") for name in PARAMS]
         + [(f"convnext_{v}_torchvision", f"convnext_{v}", "torchvision") for v in CONVNEXT if v != "xlarge"]
         + [(_timm_spec(name), name, "timm") for name in PARAMS])
REFERENCES = {"hf": hf_reference, "torchvision": torchvision_reference, "timm": timm_reference}


@pytest.mark.parametrize("spec,name,source", CASES, ids=[f"{s}-{src}" for s, _, src in CASES])
def test_mapping_is_complete(spec, name, source):
    if source == "hf":
        pytest.importorskip("transformers")
    assert_mapping_complete(spec, REFERENCES[source](name), source, PARAMS[name])


def _head_norm_eps(module):
    return [m.eps for m in module.modules() if isinstance(m, torch.nn.LayerNorm)][-1]


@pytest.mark.parametrize("spec,name,source", [
    ("convnext_tiny", "convnext_tiny", "hf"),
    ("convnextv2_atto", "convnextv2_atto", "hf"),
    ("convnext_tiny_torchvision", "convnext_tiny", "torchvision"),
    ("convnext_tiny_torchvision", "convnext_tiny", "timm"),
    ("convnextv2_atto_timm", "convnextv2_atto", "timm"),
])
def test_head_norm_eps_is_the_references(spec, name, source):
    # the one difference between the HF and the torchvision/timm forms: the last LayerNorm
    # (after pooling) of each model, ours and the reference's, read from the modules
    with torch.device("meta"):
        ref = REFERENCES[source](name)()
    ours = archdsl.build(spec_path(spec), device="meta")
    assert _head_norm_eps(ours) == _head_norm_eps(ref)


def _prepared(make):
    """prepared_reference, with every LayerNorm's weight near 1: torchvision's and timm's
    norms have no `norm` in their key (`features.0.1`, `stem.1`), so `randomize` gives
    them weights near 0, and the logits would hardly depend on the input."""
    ref = prepared_reference(make, (3, 224, 224))
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.LayerNorm) and m.weight is not None:
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
    return ref


@pytest.mark.quick
def test_convnextv2_atto_hf_logits():
    assert_logits_match("convnextv2_atto", _prepared(hf_reference("convnextv2_atto")), "hf",
                        logits=lambda out: out.logits)


def test_convnextv2_atto_timm_logits():
    assert_logits_match("convnextv2_atto_timm", _prepared(timm_reference("convnextv2_atto")), "timm")


@pytest.mark.parametrize("source", ["torchvision", "timm"])
def test_convnext_tiny_torchvision_logits(source):
    assert_logits_match("convnext_tiny_torchvision", _prepared(REFERENCES[source]("convnext_tiny")), source)


def test_levit_128s_timm_logits():
    assert_logits_match("levit_128s", _prepared(timm_reference("levit_128s")), "timm")
