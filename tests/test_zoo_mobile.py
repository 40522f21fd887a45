"""The mobile zoo (MobileNet V1/V2/V3, MobileViT) against HF transformers, torchvision and timm:
every variant's parameter count and weight mapping on the meta device, and the logits of the
smallest variant of each family and source at full size."""
from __future__ import annotations

import pytest

from reference_libs import timm_module, torchvision_models
from zoo_support import assert_logits_match, assert_mapping_complete, prepared_reference

transformers = pytest.importorskip("transformers")


def hf(model_cls: str, config_cls: str, **config):
    """A constructor of an HF reference model with 1000 classes."""
    return lambda: getattr(transformers, model_cls)(getattr(transformers, config_cls)(num_labels=1000, **config))


def tv(name: str, **kwargs):
    return lambda: getattr(torchvision_models(), name)(weights=None, **kwargs)


def timm(name: str):
    return lambda: timm_module().create_model(name, pretrained=False)


def mobilenet_v2(**config):
    return hf("MobileNetV2ForImageClassification", "MobileNetV2Config", **config)


def mobilenet_v1(**config):
    return hf("MobileNetV1ForImageClassification", "MobileNetV1Config", **config)


def mobilevit(**config):
    return hf("MobileViTForImageClassification", "MobileViTConfig", **config)


# spec, source, reference constructor, the reference's parameter count (with its source)
VARIANTS = [
    # shared/reference/models.md
    ("mobilenet_v1", "hf", mobilenet_v1(), 4_231_976),
    ("mobilenet_v1_075_192", "hf", mobilenet_v1(depth_multiplier=0.75, image_size=192), 2_585_560),
    ("mobilenet_v2", "hf", mobilenet_v2(), 3_504_872),
    ("mobilenet_v2_140", "hf", mobilenet_v2(depth_multiplier=1.4), 6_108_776),
    ("mobilenet_v2_075_160", "hf", mobilenet_v2(depth_multiplier=0.75, image_size=160), 2_636_424),
    ("mobilenet_v2_035_96", "hf", mobilenet_v2(depth_multiplier=0.35, image_size=96), 1_677_128),
    # shared/reference/state_dicts/torchvision_mobilenet_v2.json
    ("mobilenet_v2_torchvision", "torchvision", tv("mobilenet_v2"), 3_504_872),
    # shared/reference/models.md; timm's counts measured on timm 1.0.31
    ("mobilenet_v3_large", "torchvision", tv("mobilenet_v3_large"), 5_483_032),
    ("mobilenet_v3_small", "torchvision", tv("mobilenet_v3_small"), 2_542_856),
    ("mobilenet_v3_large_timm", "timm", timm("mobilenetv3_large_100"), 5_483_032),
    ("mobilenet_v3_small_timm", "timm", timm("mobilenetv3_small_100"), 2_542_856),
    # shared/reference/models.md
    ("mobilevit_xxs", "hf", mobilevit(hidden_sizes=[64, 80, 96], neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320],
                                      expand_ratio=2.0, hidden_dropout_prob=0.05), 1_272_024),
    ("mobilevit_xs", "hf", mobilevit(hidden_sizes=[96, 120, 144],
                                     neck_hidden_sizes=[16, 32, 48, 64, 80, 96, 384]), 2_317_848),
    ("mobilevit_s", "hf", mobilevit(hidden_sizes=[144, 192, 240],
                                    neck_hidden_sizes=[16, 32, 64, 96, 128, 160, 640]), 5_578_632),
    # timm's MobileViTs compute as HF's: their weights load into the same specs (timm 1.0.31)
    ("mobilevit_xxs", "timm", timm("mobilevit_xxs"), 1_272_024),
    ("mobilevit_xs", "timm", timm("mobilevit_xs"), 2_317_848),
    ("mobilevit_s", "timm", timm("mobilevit_s"), 5_578_632),
]

# full-size logits: the smallest variant of each family and source
PARITY = {
    ("mobilenet_v1_075_192", "hf"),
    ("mobilenet_v2_035_96", "hf"),
    ("mobilenet_v2_torchvision", "torchvision"),
    ("mobilevit_xxs", "hf"),
    ("mobilevit_xxs", "timm"),
    ("mobilenet_v3_small", "torchvision"),
    ("mobilenet_v3_small_timm", "timm"),
}


def _hf_logits(out):
    return out.logits


QUICK = {("mobilenet_v3_small", "torchvision")}  # one fast representative for `pytest -m quick`


@pytest.mark.parametrize("name, source, make, params", [
    pytest.param(*v, id=f"{v[0]}-{v[1]}", marks=[pytest.mark.quick] if v[:2] in QUICK else []) for v in VARIANTS])
def test_mapping_is_complete(name, source, make, params):
    assert_mapping_complete(name, make, source, params)


PARITY_CASES = [v for v in VARIANTS if (v[0], v[1]) in PARITY]


@pytest.mark.parametrize("name, source, make, params", PARITY_CASES, ids=[f"{v[0]}-{v[1]}" for v in PARITY_CASES])
def test_logits_match(name, source, make, params):
    import archdsl
    from zoo_support import spec_path

    shape = archdsl.compile_spec(spec_path(name)).input_shape
    ref = prepared_reference(make, shape)
    assert_logits_match(name, ref, source, logits=_hf_logits if source == "hf" else (lambda out: out))


def test_nth_scope_rule_maps_a_flat_list_onto_nested_stages():
    from archdsl.weights.importer import map_keys
    from archdsl.weights.mapping import Mapping, compile_rule

    ours = ["stem.conv1.weight", "stages.0.blocks.0.conv1.weight", "stages.0.blocks.0.conv2.weight",
            "stages.1.blocks.0.conv1.weight", "stages.1.blocks.10.conv1.weight", "stages.1.blocks.2.conv1.weight"]
    rules = (compile_rule("features.{i}.conv.", "{i-1:stages.*.blocks.*}.conv1."),
             compile_rule("layer.{i}.", "{i:stages.*.blocks.*.conv*}."))
    mapping = Mapping("t", "test", rules, ())
    theirs = ["features.1.conv.weight", "features.2.conv.weight", "features.3.conv.weight",
              "features.4.conv.weight", "features.5.conv.weight", "layer.1.weight", "layer.5.weight"]
    mapped, unmapped = map_keys(mapping, theirs, ours)
    assert mapped == {  # numeric order: blocks.2 before blocks.10
        "features.1.conv.weight": "stages.0.blocks.0.conv1.weight",
        "features.2.conv.weight": "stages.1.blocks.0.conv1.weight",
        "features.3.conv.weight": "stages.1.blocks.2.conv1.weight",
        "features.4.conv.weight": "stages.1.blocks.10.conv1.weight",
        "layer.1.weight": "stages.0.blocks.0.conv2.weight",
    }
    assert unmapped == ["features.5.conv.weight", "layer.5.weight"]  # past the last scope
    with pytest.raises(ValueError):
        compile_rule("features.{i}.", "{j:stages.*}.")


def test_split_cuts_a_fused_tensor_into_parts_for_the_rules():
    import torch

    from archdsl.weights.mapping import Mapping, compile_rule, split_tensors

    mapping = Mapping("t", "test", (), (), split=((compile_rule("blocks.{i}.qkv.", "").pattern, 3),))
    qkv = torch.arange(12.0).reshape(6, 2)
    out = split_tensors(mapping, {"blocks.0.qkv.weight": qkv, "blocks.0.qkv.bias": torch.arange(6.0),
                                  "blocks.0.proj.weight": qkv, "blocks.1.qkv.odd": torch.zeros(4)})
    assert sorted(out) == ["blocks.0.proj.weight", "blocks.0.qkv.0.bias", "blocks.0.qkv.0.weight",
                           "blocks.0.qkv.1.bias", "blocks.0.qkv.1.weight", "blocks.0.qkv.2.bias",
                           "blocks.0.qkv.2.weight", "blocks.1.qkv.odd"]  # 4 rows do not cut in 3
    assert torch.equal(out["blocks.0.qkv.1.weight"], qkv[2:4]) and torch.equal(out["blocks.0.qkv.2.bias"], torch.tensor([4.0, 5.0]))
