"""Feature taps and backbones: `tap(...)`, features_only / out_indices / out_features,
feature_info against timm's figures, pruning, and every shipped tap's runtime shape."""
from __future__ import annotations

import pytest
import torch

import archdsl
from archdsl.compiler import compile_spec
from archdsl.emit.torch_module import generated_source
from archdsl.features import all_taps, feature_info
from conftest import SPECS

# timm 1.0.31's feature_info for these models (timm/models/*.py, `feature_info` of each
# model class: num_chs and reduction per out index), carried here as literals.
TIMM_FEATURE_INFO = {
    "resnet50": ([64, 256, 512, 1024, 2048], [2, 4, 8, 16, 32]),  # act1, layer1..4
    "convnext_tiny": ([96, 192, 384, 768], [4, 8, 16, 32]),  # stages.0..3
    "efficientnet_b0": ([16, 24, 40, 112, 320], [2, 4, 8, 16, 32]),  # blocks.0,1,2,4,6
    "mobilenet_v3_large": ([16, 24, 40, 112, 960], [2, 4, 8, 16, 32]),  # mobilenetv3_large_100
    "densenet121": ([64, 256, 512, 1024, 1024], [2, 4, 8, 16, 32]),  # norm0, denseblock1..3, norm5
    "mobilevit_s": ([32, 64, 96, 128, 640], [2, 4, 8, 16, 32]),
    "levit_128s": ([128, 256, 384], [16, 32, 64]),
    # vgg.py: the map before each max pool, then the last pool's (features.N); every depth, BN or not
    "vgg11": ([64, 128, 256, 512, 512, 512], [1, 2, 4, 8, 16, 32]),
    "vgg16_bn": ([64, 128, 256, 512, 512, 512], [1, 2, 4, 8, 16, 32]),
    "vgg19_timm": ([64, 128, 256, 512, 512, 512], [1, 2, 4, 8, 16, 32]),
    "inception_v3": ([64, 192, 288, 768, 2048], [2, 4, 8, 16, 32]),  # Conv2d_2b_3x3, Conv2d_4a_3x3, Mixed_5d, 6e, 7c
    "mobilenet_v1": ([64, 128, 256, 512, 1024], [2, 4, 8, 16, 32]),  # mobilenetv1_100: blocks.0..4
}
# the timm model each literal above was read from, where its name differs from the spec's
TIMM_NAMES = {"mobilenet_v3_large": "mobilenetv3_large_100", "mobilenet_v1": "mobilenetv1_100",
              "vgg19_timm": "vgg19"}

TINY = """
model tiny {
  input [3, 32, 32]
  stem {
    conv(8, k=3, s=2) -> bn -> relu -> tap("stem")
    maxpool(k=3, s=2, p=1)
  }
  stages for i in range(3) {
    conv(8 * (i + 2), k=3, s=i == 0 ? 1 : 2) -> bn -> relu
    tap("stage" + str(i + 1))
  }
  head {
    avgpool -> flatten -> linear(10) as fc
  }
}
"""


def _shipped(name: str):
    if not any(p.stem == name for p in SPECS):
        pytest.skip(f"specs/{name}.arch is not in the zoo yet")


@pytest.mark.quick
def test_taps_are_named_outputs_of_a_pruned_straight_line_module():
    full = archdsl.build(text=TINY)
    backbone = archdsl.build(text=TINY, out_indices=(1, 2))
    x = torch.randn(2, 3, 32, 32)
    maps = backbone(x)
    assert [tuple(m.shape) for m in maps] == [(2, 16, 8, 8), (2, 24, 4, 4)]
    # the same layers, with the full model's tensors, give the same maps
    backbone.load_state_dict({k: v for k, v in full.state_dict().items() if k in backbone.state_dict()})
    full.eval(), backbone.eval()
    stage2 = full.get_submodule("stages.1")(full.get_submodule("stages.0")(full.stem(x)))
    torch.testing.assert_close(backbone(x)[1], stage2)
    # only what the chosen taps need: no stage 3, no head; generated code, no hooks
    names = set(dict(backbone.named_modules()))
    assert "stages.2" not in names and "head" not in names
    assert "return [" in generated_source(backbone)["(root)"]
    for other in (archdsl.optimize(backbone), archdsl.emit_fx(backbone)):  # the other emitters agree
        for a, b in zip(other(x), backbone(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert backbone.feature_info.channels() == [16, 24] and backbone.feature_info.reduction() == [4, 8]
    assert backbone.feature_info.module_name() == ["stages.0", "stages.1"]
    assert backbone.out_features == ["stage1", "stage2"] and backbone.channels == [16, 24]
    assert backbone.feature_info[0] == {"num_chs": 16, "reduction": 4, "module": "stages.0", "name": "stage1",
                                        "index": 1}


def test_taps_do_not_change_the_classifier():
    with_taps = compile_spec(text=TINY)
    without = compile_spec(text=TINY.replace(' -> tap("stem")', "").replace('tap("stage" + str(i + 1))', ""))
    assert len(with_taps.graph) == len(without.graph) and with_taps.params == without.params
    assert list(with_taps.graph.taps) == ["stem", "stage1", "stage2", "stage3"]
    assert list(without.graph.taps) == []


def test_out_features_by_name_and_negative_indices():
    m = archdsl.build(text=TINY, out_features=["stem", "stage3"], device="meta")
    assert m.feature_info.out_indices == (0, 3)
    m = archdsl.build(text=TINY, features_only=True, out_indices=(-1,), device="meta")
    assert m.out_features == ["stage3"]
    m = archdsl.build(text=TINY, out_indices=[1, 2], out_features=["stage1", "stage2"], device="meta")
    assert m.out_features == ["stage1", "stage2"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(out_indices=(2, 1)), "in the model's order"),
    (dict(out_indices=(1, 1)), "chosen twice"),
    (dict(out_indices=(4,)), "out of range"),
    (dict(out_indices=("stage1",)), "list of ints"),
    (dict(out_features=["stage9"]), "'stage9' is not a feature tap"),
    (dict(out_features=["stage2", "stem"]), "in the model's order"),
    (dict(out_features=[]), "no feature taps chosen"),
    (dict(out_indices=[1], out_features=["stage2"]), "choose different taps"),
])
def test_bad_choices_are_errors_listing_the_taps(kwargs, message):
    with pytest.raises(archdsl.ArchDSLError) as e:
        archdsl.build(text=TINY, device="meta", **kwargs)
    assert message in str(e.value)
    assert "0 stem, 1 stage1, 2 stage2, 3 stage3" in str(e.value)


def test_tap_errors_in_the_spec():
    with pytest.raises(archdsl.ArchDSLError, match="declared twice"):
        compile_spec(text=TINY.replace('tap("stage" + str(i + 1))', 'tap("stage")'))
    with pytest.raises(archdsl.ArchDSLError):
        compile_spec(text=TINY.replace('tap("stem")', 'tap("not a name")'))
    no_taps = TINY.replace(' -> tap("stem")', "").replace('tap("stage" + str(i + 1))', "")
    with pytest.raises(archdsl.ArchDSLError, match="declares no feature taps"):
        archdsl.build(text=no_taps, features_only=True, device="meta")


def test_tap_after_a_block_call_keeps_the_collapsed_names():
    spec = """
block two(out) {
  conv(out, k=3) -> relu
}
model m {
  input [3, 8, 8]
  stem {
    two(4) -> tap("stem")
  }
}
"""
    g = compile_spec(text=spec).graph
    assert [n.scope for n in g if n.op != "input"] == ["stem.conv1", "stem.relu1"]


@pytest.mark.parametrize("name", sorted(TIMM_FEATURE_INFO))
def test_feature_info_equals_timm(name):
    _shipped(name)
    channels, reductions = TIMM_FEATURE_INFO[name]
    info = feature_info(name)
    assert info.channels() == channels and info.reduction() == reductions


def test_reduction_is_the_stride_not_the_size_ratio():
    """Unpadded convs shrink a map beyond its stride; the reduction is still the stride."""
    # LeNet-5: stride-1 5x5 convs, 2x2 pools: 32 -> 28 (conv) -> 14 -> 10 (conv) -> 5
    info = feature_info("lenet5")
    assert info.out_features == ["stage1", "stage2", "pool2"] and info.reduction() == [1, 2, 4]
    # Inception v3 at 139: stage3's map is 3x3 (139 / 3 is nearer 64 than 32), its stride 32
    assert feature_info("inception_v3", resolution=139).reduction() == [2, 4, 8, 16, 32]


def test_timm_feature_info_literals_are_timms():
    """The literals above are what the installed timm reports (its models built on meta)."""
    from reference_libs import timm_module

    timm = timm_module()
    for name, (channels, reductions) in TIMM_FEATURE_INFO.items():
        with torch.device("meta"):
            ref = timm.create_model(TIMM_NAMES.get(name, name), features_only=True)
        assert (ref.feature_info.channels(), ref.feature_info.reduction()) == (channels, reductions), name


def test_classes_zero_gives_pooled_features():
    m = archdsl.build("resnet18", num_classes=0, device="meta")
    assert m(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 512)
    assert not any(k.startswith("head.fc") for k in m.state_dict())
    assert archdsl.build("resnet18", num_classes=10, device="meta").head.fc.out_features == 10
    with pytest.raises(archdsl.ArchDSLError, match="disagree"):
        archdsl.build("resnet18", num_classes=10, classes=5, device="meta")


def _family_of(path) -> str:
    text = path.read_text()
    return text.split("= ", 1)[1].split("(", 1)[0].strip() if "= " in text else path.stem


def _zoo_params():
    """Every shipped spec; the first of each family (in name order) in the default run, the
    others marked slow (each costs a compile and a meta build)."""
    seen, out = set(), []
    for p in SPECS:
        family = _family_of(p)
        marks = [pytest.mark.slow] if family in seen else []
        seen.add(family)
        out.append(pytest.param(p, id=p.stem, marks=marks))
    return out


@pytest.mark.parametrize("spec", _zoo_params())
def test_every_tap_runtime_shape_is_its_static_shape(spec):
    """Every shipped spec is a backbone (no family is without taps), and each map it returns
    has the shape the front end computed for it."""
    m = archdsl.build(spec, features_only=True, device="meta")
    taps = m.feature_info.taps
    graph = m.archdsl_graph
    static = [tuple(graph.node(o).shape.dims) for o in graph.outputs]
    c, h, w = m.archdsl_info["input_shape"]
    maps = m(torch.empty(1, c, h, w, device="meta"))
    assert len(maps) == len(taps) == len(static)
    for t, fm, want in zip(taps, maps, static):
        assert tuple(fm.shape) == (1, *want) and want[0] == t.num_chs, t.name


def test_a_model_bound_to_its_resolution_says_so():
    levit = archdsl.build("levit_128s", device="meta")
    with pytest.raises(ValueError, match=r"built for 224x224 inputs .*attention biases.*resolution=.*Got 256x256"):
        levit(torch.empty(1, 3, 256, 256, device="meta"))
    assert archdsl.build("levit_128s", resolution=256, device="meta").eval()(
        torch.empty(1, 3, 256, 256, device="meta")).shape == (1, 1000)
    # a convolutional model runs at any size, as its references do: no check in its forward
    resnet = archdsl.build("resnet18", device="meta")
    assert resnet(torch.empty(1, 3, 160, 160, device="meta")).shape == (1, 1000)
    assert "check_resolution" not in generated_source(resnet)["(root)"]


def test_a_tap_with_a_norm_reads_a_side_node():
    spec = TINY.replace('tap("stage" + str(i + 1))', 'tap("stage" + str(i + 1), norm=layernorm(eps=1e-6))')
    g = compile_spec(text=spec).graph
    norm = g.node(g.taps["stage1"].node)
    assert norm.op == "layernorm" and norm.scope == "stages.0.stage1_norm"
    assert g.users(norm.id) == []  # the model's own flow does not go through it
    m = archdsl.build(text=spec, out_features=["stage1"])
    assert "stages.0.stage1_norm.weight" in m.state_dict()
    with pytest.raises(archdsl.ArchDSLError, match="takes an op such as layernorm"):
        compile_spec(text=TINY.replace('tap("stage" + str(i + 1))', 'tap("stage" + str(i + 1), norm=3)'))
