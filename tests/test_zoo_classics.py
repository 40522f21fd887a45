"""The classic CNNs of the zoo against torchvision: LeNet-5, AlexNet, VGG (with and without
batch norm), GoogLeNet, Inception v3, DenseNet and ShuffleNetV2; and against timm where it
has the model: DenseNet and Inception v3 load into the same specs, timm's VGG (hidden layers
as convs) is its own spec, `vgg*_timm`.

Every variant: the reference's parameter count and a complete, shape-exact torchvision
mapping (meta device). At full size, the smallest variant of each family: torchvision's
weights (randomised, BatchNorm statistics calibrated) give the same logits. LeNet-5 has no
library: it is compared with a torch model written out here from its description.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import archdsl
from reference_libs import timm_module, torchvision_models
from zoo_support import assert_logits_match, assert_mapping_complete, prepared_reference, spec_path

# Parameter counts of the torchvision models (shared/reference/models.md, measured with
# torchvision 0.28; GoogLeNet and Inception v3 without their auxiliary classifiers).
TORCHVISION = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992, "vgg19_bn": 143_678_248,
    "googlenet": 6_624_904, "inception_v3": 23_834_568,
    "densenet121": 7_978_856, "densenet169": 14_149_480, "densenet201": 20_013_928,
    "shufflenet_v2_x0_5": 1_366_792, "shufflenet_v2_x1_0": 2_278_604, "shufflenet_v2_x1_5": 3_503_624,
    "shufflenet_v2_x2_0": 7_393_996,
}


def _constructor(name: str):
    tv = torchvision_models()
    if name in ("googlenet", "inception_v3"):  # the auxiliary classifiers are not part of these specs
        return lambda: getattr(tv, name)(aux_logits=False, init_weights=True)
    return lambda: getattr(tv, name)()


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_mapping_is_complete(name):
    assert_mapping_complete(name, _constructor(name), "torchvision", TORCHVISION[name])


# timm model -> (our spec, parameters); timm's counts equal torchvision's (measured, timm 1.0.31)
TIMM = {
    "densenet121": ("densenet121", 7_978_856), "densenet169": ("densenet169", 14_149_480),
    "densenet201": ("densenet201", 20_013_928), "inception_v3": ("inception_v3", 23_834_568),
    **{v: (f"{v}_timm", TORCHVISION[v]) for v in ("vgg11", "vgg13", "vgg16", "vgg19",
                                                    "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")},
}


def _timm_constructor(name: str):
    timm = timm_module()
    return lambda: timm.create_model(name, pretrained=False)


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_mapping_is_complete(name):
    spec, params = TIMM[name]
    assert_mapping_complete(spec, _timm_constructor(name), "timm", params)


@pytest.mark.slow
@pytest.mark.parametrize("name, resolution", [("densenet121", 224), ("inception_v3", 299), ("vgg11", 224)])
def test_timm_logits_match(name, resolution):
    ref = prepared_reference(_timm_constructor(name), (3, resolution, resolution))
    assert_logits_match(TIMM[name][0], ref, "timm")


# The smallest variant of each family, at full size. VGG-11 has 133M parameters, most of
# them in its classifier: it runs with the heavy ones.
PARITY = {
    "shufflenet_v2_x0_5": (224, []),
    "alexnet": (224, []),
    "googlenet": (224, []),
    "densenet121": (224, [pytest.mark.slow]),
    "inception_v3": (299, [pytest.mark.slow]),
    "vgg11_bn": (224, [pytest.mark.slow]),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=m) for n, (_, m) in PARITY.items()])
def test_torchvision_logits_match(name):
    res = PARITY[name][0]
    ref = prepared_reference(_constructor(name), (3, res, res))
    assert_logits_match(name, ref, "torchvision")


def _lenet5_by_hand() -> nn.Sequential:
    # shared/reference/models.md: conv 6@5x5 -> tanh -> avgpool 2 -> conv 16@5x5 -> tanh ->
    # avgpool 2 -> flatten 400 -> linear 120 -> tanh -> linear 84 -> tanh -> linear 10
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),
    )


@pytest.mark.quick
def test_lenet5_matches_a_hand_written_model():
    torch.manual_seed(0)
    ref = _lenet5_by_hand().eval()
    model = archdsl.build(spec_path("lenet5")).eval()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters()) == 61_706
    # both list conv, conv, linear, linear, linear (weight, then bias) in order
    ours, theirs = model.state_dict(), ref.state_dict()
    assert [tuple(t.shape) for t in ours.values()] == [tuple(t.shape) for t in theirs.values()]
    model.load_state_dict(dict(zip(ours, theirs.values())))
    assert list(ours)[-2:] == ["head.fc.weight", "head.fc.bias"]
    x = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ref(x), model(x)
    assert want.abs().max() > 0.01
    assert torch.allclose(got, want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name, resolution", [("alexnet", 320), ("vgg11", 64)])
def test_classifier_width_does_not_depend_on_the_resolution(name, resolution):
    # torchvision's AdaptiveAvgPool2d((6, 6) / (7, 7)): the same parameters at any input size
    native = archdsl.compile_spec(spec_path(name))
    other = archdsl.compile_spec(spec_path(name), overrides={"resolution": resolution})
    assert other.params == native.params == TORCHVISION[name]
    assert other.output_shape == [1000]


def test_shufflenet_unit_splits_and_shuffles_as_torchvision():
    # one stride-1 unit of ShuffleNetV2 on its own, against torchvision's InvertedResidual
    InvertedResidual = torchvision_models().shufflenetv2.InvertedResidual

    src = """
import "blocks/shufflenet.arch"

model unit {
  input [16, 6, 6]
  shuffle_unit(16) as unit
}
"""
    torch.manual_seed(0)
    ref = InvertedResidual(16, 16, 1).eval()
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    model = archdsl.build(text=src).eval()
    keys = {"0": "conv1", "1": "bn1", "3": "conv2", "4": "bn2", "5": "conv3", "6": "bn3"}
    state = {}
    for k, v in ref.state_dict().items():
        _, i, rest = k.split(".", 2)  # branch2.<i>.<tensor>
        state[f"unit.branch2.{keys[i]}.{rest}"] = v
    model.load_state_dict(state)
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-6)


def test_in_order_mapping_pairs_keys_in_order_and_leaves_the_rest_to_rules():
    from archdsl.weights import map_keys
    from archdsl.weights.mapping import Mapping, compile_rule

    mapping = Mapping("x", "test", (compile_rule("fc.", "head.fc."),), (), (("features.", "stages."),))
    theirs = ["features.0.weight", "features.0.bias", "features.3.weight", "features.9.weight", "fc.weight"]
    ours = ["stages.0.blocks.0.conv1.weight", "stages.0.blocks.0.conv1.bias", "stages.1.blocks.0.conv1.weight",
            "head.fc.weight"]
    mapped, unmapped = map_keys(mapping, theirs, ours)
    assert mapped == {"features.0.weight": "stages.0.blocks.0.conv1.weight",
                      "features.0.bias": "stages.0.blocks.0.conv1.bias",
                      "features.3.weight": "stages.1.blocks.0.conv1.weight", "fc.weight": "head.fc.weight"}
    assert unmapped == ["features.9.weight"]  # one more than ours: reported, not dropped
