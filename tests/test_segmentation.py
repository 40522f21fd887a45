"""Dense-prediction primitives (upsample, dropout2d) and the segmentation specs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import archdsl
from archdsl.compiler import compile_spec

SEG = """
model seg {
  input [3, 33, 33]
  conv(8, k=3, s=2) -> bn -> relu
  merge concat {
    { identity }
    pool { avgpool -> conv(4, k=1) -> relu -> upsample(size=[in.h, in.w], mode="bilinear") }
  }
  dropout2d(0.1)
  conv(5, k=1, bias=true)
  upsample(scale=2, mode="bilinear", align_corners=true)
  upsample(size=[40, 41])
}
"""


@pytest.mark.quick
def test_upsample_and_dropout2d_match_torch_in_every_emitter():
    torch.manual_seed(0)
    model = archdsl.build(text=SEG).eval()
    x = torch.randn(2, 3, 33, 33)
    y = model(x)
    assert y.shape == (2, 5, 40, 41)
    # by hand, with the model's own layers
    t = F.relu(model.bn1(model.conv1(x)))
    pool = F.relu(model.pool.conv1(F.adaptive_avg_pool2d(t, 1)))
    t = torch.cat([t, F.interpolate(pool, size=(17, 17), mode="bilinear", align_corners=False)], 1)
    t = F.interpolate(model.conv2(t), size=(34, 34), mode="bilinear", align_corners=True)
    torch.testing.assert_close(y, F.interpolate(t, size=(40, 41), mode="nearest"))
    torch.testing.assert_close(archdsl.emit_fx(model)(x), y)
    torch.testing.assert_close(archdsl.optimize(model)(x), y, atol=1e-5, rtol=1e-5)
    model.train()  # dropout2d drops whole channels in training
    torch.manual_seed(1)
    assert not torch.equal(model(x), y)


def test_upsample_shapes_costs_and_receptive_fields():
    c = compile_spec(text=SEG)
    assert c.output_shape == [5, 40, 41]
    ups = [n for n in c.graph if n.op == "upsample"]
    assert [(n.shape.h, n.shape.w) for n in ups] == [(17, 17), (34, 34), (40, 41)]
    assert c.rf[ups[0].id].whole  # from a pooled 1x1 map: sees the whole image
    plain = compile_spec(text="model m {\n  input [3, 16, 16]\n  conv(4, k=3, s=2)\n  upsample(scale=2)\n}\n")
    last = [n for n in plain.graph][-1]
    assert plain.rf[last.id].jump == (1, 1) and plain.rf[last.id].size == (3, 3)


@pytest.mark.parametrize("call, message", [
    ("upsample()", "exactly one of size"),
    ("upsample(scale=2, size=3)", "exactly one of size"),
    ("upsample(scale=2, align_corners=true)", "align_corners applies"),
    ("upsample(scale=0.01)", "makes [4, 8, 8] empty"),
    ('upsample(scale=2, mode="cubic")', "mode"),
    ("dropout2d(1.5)", "dropout2d"),
])
def test_bad_upsample_and_dropout2d_calls(call, message):
    with pytest.raises(archdsl.ArchDSLError, match=message.replace("[", r"\[")):
        compile_spec(text=f"model m {{\n  input [3, 16, 16]\n  conv(4, k=3, s=2)\n  {call}\n}}\n")


def _calibrated(ref):
    """Batch-norm statistics away from the identity, and a larger classifier, so that the
    comparison sees every layer at a visible scale."""
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5), m.weight.uniform_(0.5, 1.5)
        ref.segmentation_head.classifier.convolution.weight.mul_(50)
    return ref.eval()


# HF transformers configs of the four segmentation models (the hub checkpoints'
# deeplabv3_mobilenet_v2_1.0_513 and apple/deeplabv3-mobilevit-{xx-small,x-small,small}; the
# MobileViT ones have output_stride 16, as transformers' convert_mlcvnets_to_pytorch.py sets for
# every deeplabv3_* model, and HF's integration test expects their 32x32 logits at 512x512).
SEGMENTATION = {
    "deeplabv3_mobilenet_v2": ("MobileNetV2", dict(num_labels=21, image_size=513, output_stride=8)),
    "deeplabv3_mobilevit_xxs": ("MobileViT", dict(num_labels=21, image_size=512, output_stride=16,
                                                  hidden_sizes=[64, 80, 96],
                                                  neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320], expand_ratio=2.0)),
    "deeplabv3_mobilevit_xs": ("MobileViT", dict(num_labels=21, image_size=512, output_stride=16,
                                                 hidden_sizes=[96, 120, 144],
                                                 neck_hidden_sizes=[16, 32, 48, 64, 80, 96, 384])),
    "deeplabv3_mobilevit_s": ("MobileViT", dict(num_labels=21, image_size=512, output_stride=16)),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n.endswith(("_xs", "_s")) else n
                                  for n in SEGMENTATION])
def test_deeplabv3_matches_hf(name):
    import transformers

    kind, config = SEGMENTATION[name]
    torch.manual_seed(0)
    cfg = getattr(transformers, f"{kind}Config")(**config)
    ref = _calibrated(getattr(transformers, f"{kind}ForSemanticSegmentation")(cfg))
    ours = archdsl.build(name)
    # the parameter counts are the specs' `expect params`, checked against HF's model here
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    archdsl.import_weights(ours, ref, source="hf")  # strict: every tensor, HF's unused 1x1 conv too
    x = torch.randn(1, 3, config["image_size"], config["image_size"])
    with torch.no_grad():
        want, got = ref(x).logits, ours.eval()(x)
    assert got.shape == want.shape == (1, 21, *[-(-config["image_size"] // config["output_stride"])] * 2)
    torch.testing.assert_close(got, want, atol=1e-4 * max(1.0, want.abs().max().item()), rtol=0)


def test_deeplabv3_mobilevit_at_output_stride_8_matches_hf():
    """output_stride 8 (HF's dilate_layer_4 and _5): stages 4 and 5 keep the resolution, stage
    5's inverted residual dilated by 2, as HF's; at 64x64 to stay cheap."""
    from transformers import MobileViTConfig, MobileViTForSemanticSegmentation

    config = dict(SEGMENTATION["deeplabv3_mobilevit_xxs"][1], image_size=64, output_stride=8)
    torch.manual_seed(0)
    ref = _calibrated(MobileViTForSemanticSegmentation(MobileViTConfig(**config)))
    ours = archdsl.build("deeplabv3_mobilevit_xxs", resolution=64, output_stride=8)
    archdsl.import_weights(ours, ref, source="hf")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want, got = ref(x).logits, ours.eval()(x)
    assert got.shape == want.shape == (1, 21, 8, 8)
    torch.testing.assert_close(got, want, atol=1e-4 * max(1.0, want.abs().max().item()), rtol=0)


def test_a_family_as_a_backbone_keeps_its_names_taps_and_input():
    from archdsl.compiler import compile_spec

    g = compile_spec("deeplabv3_mobilenet_v2").graph
    scopes = {n.scope for n in g}
    assert {"stem.conv1", "stages.6.blocks.0.conv2", "head.conv1", "segmentation_head.classifier"} <= scopes
    assert "head.fc" not in scopes  # classes = 0: the backbone has no classifier
    assert list(g.taps) == ["stage1", "stage2", "stage3", "stage5", "stage7"]
    # the backbone's value is its last tap (stage 7, output stride 8 at 513: 65x65)
    seg_in = [n for n in g if n.scope == "segmentation_head.aspp.conv1"][0]
    assert g.inputs(seg_in.id) == [g.taps["stage7"].node]
    # the unused 1x1 conv of HF's backbone is computed and feeds nothing, as in HF
    head_out = [n for n in g if n.scope.startswith("head.")][-1]
    assert g.users(head_out.id) == []
    # a backbone after an explicit input takes it, and must agree with its size
    spec = ('import "families/resnet.arch"\nmodel m {\n  input [3, 64, 64]\n  resnet([1, 1], widths=[8, 16], '
            'resolution=RES) as backbone\n  conv(2, k=1)\n}\n')
    c = compile_spec(text=spec.replace("RES", "64"))
    assert c.output_shape == [2, 8, 8] and "backbone.stages.1.blocks.0.conv1" in {n.scope for n in c.graph}
    with pytest.raises(archdsl.ArchDSLError, match="this backbone takes"):
        compile_spec(text=spec.replace("RES", "32"))


def test_mobilevit_at_another_resolution_matches_hf():
    """HF's MobileViT runs at other sizes; ours is built for one (`resolution=`), and at 320
    (patch grids divide evenly, so HF does not resize) gives HF's logits. Another size on a
    built model is a clear error; a size whose maps the patch does not divide is refused when
    the spec is checked (HF resizes those maps; archdsl does not)."""
    from transformers import MobileViTConfig, MobileViTForImageClassification

    from reference import calibrate, randomize

    torch.manual_seed(0)
    cfg = MobileViTConfig(hidden_sizes=[64, 80, 96], neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320],
                          expand_ratio=2.0, num_labels=1000)
    ref = MobileViTForImageClassification(cfg).eval()
    randomize(ref)
    calibrate(ref, (3, 320, 320))
    ours = archdsl.build("mobilevit_xxs", resolution=320)
    archdsl.import_weights(ours, ref, source="hf")
    x = torch.randn(2, 3, 320, 320)
    with torch.no_grad():
        want, got = ref(x).logits, ours.eval()(x)
    torch.testing.assert_close(got, want, atol=1e-4 * max(1.0, want.abs().max().item()), rtol=0)
    with pytest.raises(ValueError, match="built for 320x320 inputs.*resolution="):
        ours(torch.randn(1, 3, 256, 256))
    with pytest.raises(archdsl.ArchDSLError, match="patch size 2x2 does not divide"):
        compile_spec("mobilevit_xxs", overrides={"resolution": 300})
