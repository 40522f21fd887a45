"""The ResNet, ResNeXt and Wide ResNet specs against HF transformers, torchvision and timm.

All three libraries build the same v1.5 ResNet (stride on the bottleneck's 3x3, BN eps
1e-5), so one spec per variant loads the weights of each. Every variant and source is
checked for its mapping on the meta device; the logits are compared at full size on the
smallest variant of each family and source (HF's resnet18/resnet50 are in test_parity.py).
"""
from __future__ import annotations

import pytest

from reference_libs import timm_module, torchvision_models
from zoo_support import assert_logits_match, assert_mapping_complete, prepared_reference

# Parameter counts of the references (shared/reference/models.md, measured on HF
# transformers 5.23, torchvision 0.28 and timm 1.0.31, which agree on every variant).
PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
    "wide_resnet50_2": 68_883_240,
}

# HF ResNetForImageClassification configs (models.md, "HF constructors"); ResNeXt and Wide
# ResNet have no HF model.
HF_CONFIGS = {
    "resnet18": dict(depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], layer_type="basic"),
    "resnet34": dict(depths=[3, 4, 6, 3], hidden_sizes=[64, 128, 256, 512], layer_type="basic"),
    "resnet50": dict(depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], layer_type="bottleneck"),
    "resnet101": dict(depths=[3, 4, 23, 3], hidden_sizes=[256, 512, 1024, 2048], layer_type="bottleneck"),
    "resnet152": dict(depths=[3, 8, 36, 3], hidden_sizes=[256, 512, 1024, 2048], layer_type="bottleneck"),
}


def hf_reference(name):
    def make():
        import transformers

        config = transformers.ResNetConfig(num_labels=1000, **HF_CONFIGS[name])
        return transformers.ResNetForImageClassification(config)
    return make


def torchvision_reference(name):
    return lambda: getattr(torchvision_models(), name)(weights=None)


def timm_reference(name):
    return lambda: timm_module().create_model(name, pretrained=False)


REFERENCES = {"hf": hf_reference, "torchvision": torchvision_reference, "timm": timm_reference}
CASES = [(name, "hf") for name in HF_CONFIGS] + [(name, source) for name in PARAMS for source in ("torchvision", "timm")]


@pytest.mark.parametrize("name,source", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_mapping_is_complete(name, source):
    if source == "hf":
        pytest.importorskip("transformers")
    assert_mapping_complete(name, REFERENCES[source](name), source, PARAMS[name])


@pytest.mark.quick
def test_resnet18_torchvision_logits():
    ref = prepared_reference(torchvision_reference("resnet18"), (3, 224, 224))
    assert_logits_match("resnet18", ref, "torchvision")


def test_resnet18_timm_logits():
    ref = prepared_reference(timm_reference("resnet18"), (3, 224, 224))
    assert_logits_match("resnet18", ref, "timm")


def test_resnext50_32x4d_torchvision_logits():
    # grouped 3x3 convs: the smallest of the ResNeXt family
    ref = prepared_reference(torchvision_reference("resnext50_32x4d"), (3, 224, 224))
    assert_logits_match("resnext50_32x4d", ref, "torchvision")


@pytest.mark.slow
def test_resnext50_32x4d_timm_logits():
    ref = prepared_reference(timm_reference("resnext50_32x4d"), (3, 224, 224))
    assert_logits_match("resnext50_32x4d", ref, "timm")


@pytest.mark.slow
def test_wide_resnet50_2_torchvision_logits():
    # 23 GFLOPs: timm's wide_resnet50_2 is timm's ResNet class again (checked above on
    # resnet18 and resnext50_32x4d), its mapping on the meta device
    ref = prepared_reference(torchvision_reference("wide_resnet50_2"), (3, 224, 224))
    assert_logits_match("wide_resnet50_2", ref, "torchvision")
