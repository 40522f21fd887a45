"""EfficientNet-B0..B7 against HF transformers, torchvision and timm: every variant's parameter
count and weight mapping on the meta device, B0's logits at full size for each source, and
HF's per-block depthwise padding (`depthwise_padding`) on a narrow B1."""
from __future__ import annotations

import pytest
import torch

import archdsl
from reference_libs import timm_module, torchvision_models
from zoo_support import assert_logits_match, assert_mapping_complete, prepared_reference, spec_path

transformers = pytest.importorskip("transformers")

# HF configs from shared/reference/models.md: width, depth, image size, dropout, hidden_dim,
# depthwise_padding; and the parameter counts listed there (torchvision's and timm's are the
# same, measured on torchvision 0.28 and timm 1.0.31)
HF_CONFIGS = [
    (1.0, 1.0, 224, 0.2, 1280, [], 5_288_548),
    (1.0, 1.1, 240, 0.2, 1280, [16], 7_794_184),
    (1.1, 1.2, 260, 0.3, 1408, [5, 8, 16], 9_109_994),
    (1.2, 1.4, 300, 0.3, 1536, [5, 18], 12_233_232),
    (1.4, 1.8, 380, 0.4, 1792, [6], 19_341_616),
    (1.6, 2.2, 456, 0.4, 2048, [13, 27], 30_389_784),
    (1.8, 2.6, 528, 0.5, 2304, [31], 43_040_704),
    (2.0, 3.1, 600, 0.5, 2560, [18], 66_347_960),
]


def hf(width, depth, size, dropout, hidden_dim, depthwise_padding, **_):
    config = transformers.EfficientNetConfig(
        num_labels=1000, width_coefficient=width, depth_coefficient=depth, image_size=size,
        dropout_rate=dropout, hidden_dim=hidden_dim, depthwise_padding=depthwise_padding)
    return lambda: transformers.EfficientNetForImageClassification(config)


def tv(i):
    return lambda: getattr(torchvision_models(), f"efficientnet_b{i}")(weights=None)


def timm(i):
    return lambda: timm_module().create_model(f"efficientnet_b{i}", pretrained=False)


VARIANTS = []
for i, (*config, params) in enumerate(HF_CONFIGS):
    VARIANTS += [
        (f"efficientnet_b{i}", "hf", hf(*config), params),
        (f"efficientnet_b{i}_torchvision", "torchvision", tv(i), params),
        # timm's B0-B4 compute as torchvision's; its B5-B7 differ in BN eps (their own specs)
        (f"efficientnet_b{i}_{'torchvision' if i <= 4 else 'timm'}", "timm", timm(i), params),
    ]


QUICK = {("efficientnet_b0_torchvision", "torchvision")}  # one fast representative for `pytest -m quick`


@pytest.mark.parametrize("name, source, make, params", [
    pytest.param(*v, id=f"{v[0]}-{v[1]}", marks=[pytest.mark.quick] if v[:2] in QUICK else []) for v in VARIANTS])
def test_mapping_is_complete(name, source, make, params):
    assert_mapping_complete(name, make, source, params)


PARITY = [v for v in VARIANTS if v[0].startswith("efficientnet_b0")]


@pytest.mark.parametrize("name, source, make, params", PARITY, ids=[f"{v[0]}-{v[1]}" for v in PARITY])
def test_logits_match(name, source, make, params):
    ref = prepared_reference(make, archdsl.compile_spec(spec_path(name)).input_shape)
    assert_logits_match(name, ref, source, logits=(lambda out: out.logits) if source == "hf" else (lambda out: out))


def test_hf_depthwise_padding_is_same_padding_at_the_native_resolution():
    """HF B1 pads block 16's strided depthwise conv symmetrically and the others' on the bottom
    and right; our "same" padding does exactly that at 240x240. Checked on B1 at width 0.5
    (HF's hidden_dim follows), which keeps every padding decision and is 4x cheaper. (Not at
    0.25: there stage 0 maps 8 channels to 8, where HF's first block of a stage never adds
    its input while ours, as torchvision's and the paper's, does.)"""
    make = hf(0.5, 1.1, 240, 0.2, 640, [16])
    ref = prepared_reference(make, (3, 240, 240))
    model = archdsl.build(spec_path("efficientnet_b1"), width=0.5)
    archdsl.import_weights(model, ref.state_dict(), source="hf")
    model.eval()
    x = torch.randn(2, 3, 240, 240, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ref(x).logits, model(x)
    scale = max(1.0, want.abs().max().item())
    assert (got - want).abs().max().item() <= 1e-4 * scale
    # and the listed block matters: HF's other padding there (bottom-right) breaks the match
    pad = ref.efficientnet.encoder.blocks[16].depthwise_conv.depthwise_conv_pad
    assert pad.padding == (2, 2, 2, 2)
    pad.padding = (1, 2, 1, 2)
    with torch.no_grad():
        assert (ref(x).logits - got).abs().max().item() > 1e-3 * scale
