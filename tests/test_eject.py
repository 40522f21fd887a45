"""`archdsl eject`: a standalone .py file, imported where archdsl cannot be imported, loads the
archdsl module's state_dict and gives its outputs; repeats stay loops. What the source says
is checked here; every shipped spec's ejected file is run where archdsl is blocked in
test_deploy_zoo.py, and its keys checked on the meta device in test_export.py."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
import torch

import archdsl
from archdsl.emit.eject import eject_source
from conftest import ROOT
from emit_support import small_model

# archdsl is blocked, not merely unused: importing it raises
_RUN_EJECTED = textwrap.dedent("""
    import importlib, sys
    sys.modules["archdsl"] = None
    sys.path.insert(0, sys.argv[1])
    import torch
    for name in sys.argv[2:]:
        module = importlib.import_module(name)
        saved = torch.load(name + ".pt", weights_only=True)
        net = getattr(module, saved["root"])()
        net.load_state_dict(saved["state"])
        net.eval()
        with torch.no_grad():
            got = net(saved["x"])
        scale = max(1.0, saved["y"].abs().max().item())
        diff = (got - saved["y"]).abs().max().item()
        assert diff <= 1e-4 * scale, (name, diff)
        print(name, "ok")
""")


def _run_ejected(tmp_path, modules: dict) -> str:
    x = None
    for name, module in modules.items():
        x = torch.randn(2, *module.archdsl_info["input_shape"], generator=torch.Generator().manual_seed(0))
        (tmp_path / f"{name}.py").write_text(eject_source(module))
        with torch.no_grad():
            torch.save({"root": type(module).__name__, "state": module.state_dict(), "x": x, "y": module(x)},
                       tmp_path / f"{name}.pt")
    out = subprocess.run([sys.executable, "-c", _RUN_EJECTED, str(tmp_path), *modules], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.quick
def test_ejected_file_runs_without_archdsl(tmp_path):
    model = small_model(ROOT / "specs" / "resnet18.arch")
    out = _run_ejected(tmp_path, {"plain": model, "optimized": archdsl.optimize(model)})
    assert out.split() == ["plain", "ok", "optimized", "ok"]


def test_repeats_stay_loops_and_layers_cite_the_spec():
    model = archdsl.build(ROOT / "specs" / "resnet50.arch", device="meta")
    src = eject_source(model)
    # stages 3, 4, 6, 3 blocks deep: a first block with a projection, then a loop over the rest
    assert src.count("for _ in range(") >= 1 and "Bottleneck(" in src
    assert "class Bottleneck(nn.Module):" in src
    assert "# blocks/resnet.arch:" in src and "conv(mid, k=1) -> bn -> relu" in src
    lines = src.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("self.") and "= nn.Conv2d(" in line:
            # the layers of one spec line follow the comment that quotes it
            above = next(text for text in reversed(lines[:i]) if not text.strip().startswith("self."))
            assert above.strip().startswith("# blocks/") or above.strip().startswith("# families/"), line
    assert "getattr(self" not in src.split("class ResNet50")[1]


def test_cli_eject(tmp_path):
    from archdsl.cli import main

    out = tmp_path / "r18.py"
    assert main(["eject", "resnet18", "-o", str(out), "--optimize"]) == 0
    text = out.read_text()
    assert "class ResNet18(nn.Module):" in text and "ConvAct2d" in text
    compile(text, str(out), "exec")


def _ejected_namespace(model) -> dict:
    namespace: dict = {}
    exec(compile(eject_source(model), "<ejected>", "exec"), namespace)  # noqa: S102 - the file under test
    return namespace


def _shapes(module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_block_classes_take_the_spec_parameters():
    # blocks/resnet.arch: `block bottleneck(out, stride = 1, expansion = 4, groups = 1, base_width = 64)`
    # with `mid = int(out / expansion * base_width / 64) * groups`
    model = archdsl.build(ROOT / "specs" / "resnet50.arch", device="meta")
    src = eject_source(model)
    assert "def __init__(self, in_channels, out, stride=1, expansion=4, groups=1, base_width=64):" in src
    assert "mid = int(out / expansion * base_width / 64) * groups" in src
    assert "nn.Conv2d(mid, mid, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False)" in src
    with torch.device("meta"):
        # one class for the block: its shortcut is built where the spec's `when` holds
        namespace = _ejected_namespace(model)
        bottleneck = namespace["Bottleneck"]
        assert _shapes(bottleneck(64, 256)) == _shapes(model.get_submodule("stages.0.blocks.0"))
        # an instance of the spec: stages.0.blocks.1 is bottleneck(256) on 256 channels
        assert _shapes(bottleneck(256, 256)) == _shapes(model.get_submodule("stages.0.blocks.1"))
        # arguments no instance of resnet50 has: resnext50_32x4d's blocks are bottleneck(groups=32,
        # base_width=4) (specs/resnext50_32x4d.arch); the class builds them from the spec's rule
        resnext = archdsl.build(ROOT / "specs" / "resnext50_32x4d.arch", device="meta")
        assert _shapes(bottleneck(1024, 1024, groups=32, base_width=4)) == _shapes(resnext.get_submodule("stages.2.blocks.1"))


def test_block_arguments_read_the_call_and_the_width_flowing_in():
    model = archdsl.build("resnet18", device="meta")
    src = eject_source(model)
    # blocks/resnet.arch: `block basic(out, stride = 1)`, `conv(out, k=3, s=stride) -> bn -> relu`
    assert "def __init__(self, in_channels, out, stride=1):" in src
    assert "nn.Conv2d(in_channels, out, kernel_size=3, stride=stride, padding=1, bias=False)" in src
    assert "self.bn1 = nn.BatchNorm2d(out)" in src
    # each stage starts with `block(widths[i]) x d first(stride = i == 0 ? 1 : 2)` (families/resnet.arch):
    # the stage's class takes the loop's `i` and `d` and passes the first block the spec's stride
    assert "Basic(in_channels, out, stride=1 if i == 0 else 2)," in src
    assert "*[Basic(out, out) for _ in range(d - 1)]," in src
    assert "for i, (d, out) in enumerate([(2, 64), (2, 128), (2, 256), (2, 512)]):" in src
    # the shortcut is part of the block and takes the block's names
    assert "self.shortcut = Shortcut(in_channels, out, stride=stride)" in src


def _class_source(src: str, name: str) -> str:
    return src.split(f"\nclass {name}(nn.Module):\n", 1)[1].split("\nclass ", 1)[0]


def test_a_block_is_one_class_with_its_optional_parts_under_the_spec_condition():
    # blocks/resnet.arch: `block basic(out, stride = 1)`, its shortcut `when stride != 1 or in.channels != out`;
    # resnet18 has both forms (each stage after the first starts with a projecting block)
    model = archdsl.build("resnet18", device="meta")
    src = eject_source(model)
    assert src.count('"""Block `basic`') == 1 and "BasicWith" not in src
    basic = _class_source(src, "Basic")
    assert "        if stride != 1 or in_channels != out:\n            self.shortcut = Shortcut(in_channels, out, stride=stride)\n" \
           "        else:\n            self.shortcut = None\n" in basic
    assert "shortcut = self.shortcut(x) if self.shortcut is not None else x" in basic
    # a stage's first block projects (`first(stride = i == 0 ? 1 : 2)`, families/resnet.arch), the
    # second does not: one class, a first call and a loop over the rest, one class for the four stages
    assert "Basic(in_channels, out, stride=1 if i == 0 else 2),\n            *[Basic(out, out) for _ in range(d - 1)]," in src
    assert src.count('"""An item of `stages`') == 1
    with torch.device("meta"):
        cls = _ejected_namespace(model)["Basic"]
        assert cls(64, 64).shortcut is None
        assert _shapes(cls(64, 128, stride=2)) == _shapes(model.get_submodule("stages.1.blocks.0"))
    # the inference form too: the add is fused into the second conv, which takes the shortcut's output
    fused = _class_source(eject_source(archdsl.optimize(model)), "Basic")
    assert "if stride != 1 or in_channels != out:" in fused
    assert "shortcut = self.shortcut(x) if self.shortcut is not None else x" in fused
    assert "self.conv2(conv1, shortcut)" in fused


def test_structures_of_one_block_that_differ_in_parts_and_activation_are_one_class():
    # blocks/mobilenet.arch: `block inverted_residual(..., act = relu6, se = 0, ...)` with
    # `squeeze_excite(...) as se when se > 0` and `residual when stride == 1 and in.channels == out`;
    # MobileNetV3-Small's blocks use relu or hardswish, with or without SE, with or without the skip
    model = archdsl.build("mobilenet_v3_small", device="meta")
    src = eject_source(model)
    ir = _class_source(src, "InvertedResidual")
    assert "act=F.relu6," in ir and "self.act = act" in ir and "act1 = self.act(bn1)" in ir
    assert "        if se > 0:\n            self.se = SqueezeExcite(hidden, squeeze)\n" in ir
    assert "self.use_residual = stride == 1 and in_channels == out" in ir
    assert "add1 = bn3 + x if self.use_residual else bn3" in ir
    root = _class_source(src, "MobileNetV3Small")  # each stage's activation, passed down as a function
    assert "F.relu," in root and "F.hardswish," in root
    # the first block skips the expand conv (`... when expands`), so its depthwise conv is `conv1`,
    # not `conv2`: the state_dict keys differ, a second class says so
    assert src.count('"""Block `inverted_residual`') == 2 and "class InvertedResidualNoExpand(nn.Module):" in src
    assert not re.search(r"class InvertedResidual\d", src)
    with torch.device("meta"):
        cls = _ejected_namespace(model)["InvertedResidual"]
        # stages.2.blocks.1 is inverted_residual(40, k=5, act=hardswish, se=0.25, hidden_width=240) on 40 channels
        built = cls(40, 40, k=5, act=torch.nn.functional.hardswish, se=0.25, bn_eps=1e-3, hidden_width=240)
        assert _shapes(built) == _shapes(model.get_submodule("stages.2.blocks.1")) and built.use_residual


def test_the_items_of_a_loop_are_one_class_of_the_loop_variables_built_in_a_loop():
    # families/alexnet.arch:
    #   stages for i, w, k, pool in [[192, 5, true], [384, 3, false], [256, 3, false], [256, 3, true]] {
    #     conv(w, k=k, bias=true) -> relu
    #     maxpool(3, 2) when pool
    model = archdsl.build("alexnet", device="meta")
    src = eject_source(model)
    assert src.count('"""An item of `stages`') == 1 and "class Stage2" not in src
    stage = _class_source(src, "Stage")
    assert "def __init__(self, in_channels, w, k, pool):" in stage
    assert "self.conv1 = nn.Conv2d(in_channels, w, kernel_size=k, padding=k // 2)" in stage
    assert "# families/alexnet.arch:16: maxpool(3, 2) when pool\n        self.pool = pool" in stage
    assert "F.max_pool2d(relu1, (3, 3), (2, 2), (0, 0), ceil_mode=False) if self.pool else relu1" in stage
    # the root loops over the spec's rows, each stage's width flowing into the next
    root = _class_source(src, "AlexNet")
    assert ("        stages = []\n        in_channels = 64\n"
            "        for w, k, pool in [(192, 5, True), (384, 3, False), (256, 3, False), (256, 3, True)]:\n"
            "            stages.append(Stage(in_channels, w, k, pool))\n            in_channels = w\n"
            "        self.stages = nn.Sequential(*stages)\n") in root
    with torch.device("meta"):
        cls = _ejected_namespace(model)["Stage"]
        # stages.1 is the row [384, 3, false] on 192 channels; stages.3 [256, 3, true] on 256
        assert _shapes(cls(192, 384, 3, False)) == _shapes(model.get_submodule("stages.1"))
        assert cls(256, 256, 3, True).pool and not cls(192, 384, 3, False).pool


def test_a_loop_item_builds_its_optional_part_under_the_spec_condition_on_the_index():
    # families/convnext.arch: `stages for i, d in depths { downsample { ... } when i > 0
    #   blocks for j in range(d) { convnext(dims[i], ...) } }`
    model = archdsl.build("convnext_tiny", device="meta")
    src = eject_source(model)
    stage = _class_source(src, "Stage")
    assert "def __init__(self, in_channels, i, d, out_channels):" in stage
    assert "        if i > 0:\n            self.downsample = Downsample(in_channels, out_channels)\n" in stage
    assert "*[ConvNeXt(out_channels, out_channels) for _ in range(d)]" in stage
    root = _class_source(src, "ConvNeXtTiny")
    assert "for i, (d, out_channels) in enumerate([(3, 96), (3, 192), (9, 384), (3, 768)]):" in root
    with torch.device("meta"):
        cls = _ejected_namespace(model)["Stage"]
        assert _shapes(cls(96, 0, 3, 96)) == _shapes(model.get_submodule("stages.0"))
        assert _shapes(cls(192, 2, 9, 384)) == _shapes(model.get_submodule("stages.2"))


def test_scopes_that_differ_only_in_the_numbers_of_their_forward_are_one_class():
    # blocks/shufflenet.arch: `branch1 { if stride == 1 { chunk(0, 2) } ... }` splits the unit's
    # input in half (58, 116, 232 channels in the three stages); blocks/mobilevit.arch folds the
    # patches back to the stage's map (32, 16, 8 px); blocks/levit.arch subsamples a token grid
    src = eject_source(archdsl.build("shufflenet_v2_x1_0", device="meta"))
    # one class per structure (the stride-2 unit's branches and the stride-1 unit's), not one per stage
    assert len(re.findall(r"class Branch\d+\(", src)) == 4 and src.count('"""An item of `stages`') == 1
    assert "chunk1 = channel_chunk(x, 0, self.half, True)" in src and "        self.half = half\n" in src
    model = archdsl.build("mobilevit_xxs", device="meta")
    src = eject_source(model)
    assert "class GlobalRep2" not in src and "class MobileViT2" not in src
    rep = _class_source(src, "GlobalRep")
    assert "fold1 = fold_patches(layernorm1, 2, 2, self.h, self.h)" in rep and "        self.h = h\n" in rep
    # families/levit.arch: `stages for i, d in depths { downsample { ... } when i > 0 ... }`: the
    # stages' downsamples subsample 14x14 and 7x7 grids, and are one class, as the stages are
    levit = eject_source(archdsl.build("levit_128s", device="meta"))
    assert "class Queries2" not in levit and levit.count('"""An item of `stages`') == 1
    assert "subsample1 = x.unflatten(1, (self.size, self.size))[:, ::2, ::2].flatten(1, 2)" in levit
    with torch.device("meta"):
        cls = _ejected_namespace(model)["GlobalRep"]
        # stages.3.blocks.1 (the second loop's i = 1): mobilevit(64, 80, 4) after the stage's strided
        # inverted residual to 64 channels, on a 16x16 map
        built = cls(64, 64, 80, 4, 16)
        assert built.h == 16 and _shapes(built) == _shapes(model.get_submodule("stages.3.blocks.1.global_rep"))


def test_a_repeat_of_one_is_its_siblings_first_item_with_an_empty_loop():
    # families/mobilevit.arch: `stages for i, n in [1, 3] {
    #   inverted_residual(widths[1 + i], expand=expand, act=silu) x n first(stride = i == 0 ? 1 : 2)`
    model = archdsl.build("mobilevit_xxs", device="meta")
    src = eject_source(model)
    stage = _class_source(src, "Stage2")
    assert "def __init__(self, in_channels, i, n, out):" in stage
    assert ("InvertedResidual(in_channels, out, stride=1 if i == 0 else 2, expand=2),\n"
            "            *[InvertedResidual(out, out, expand=2) for _ in range(n - 1)],") in stage
    assert "Stage2(16, 0, 1, 16),\n            Stage2(16, 1, 3, 24)," in src
    with torch.device("meta"):
        cls = _ejected_namespace(model)["Stage2"]
        assert _shapes(cls(16, 0, 1, 16)) == _shapes(model.get_submodule("stages.0"))
        assert _shapes(cls(16, 1, 3, 24)) == _shapes(model.get_submodule("stages.1"))


def test_a_conv_with_same_padding_is_one_class_at_every_stride_padded_from_its_input():
    # families/mobilenet_v2.arch: `family mobilenet_v2(..., padding = "same", ...)`, its stages
    # `inverted_residual(ch(c), ..., p=padding, dilation=d) x n first(stride = stride, ...)`;
    # blocks/mobilenet.arch: `conv(hidden, k=k, s=stride, d=dilation, g=hidden, p=p)`. TensorFlow's
    # "same" pads a 32 px map 0 before and 1 after at stride 2 (archdsl: a PaddedConv2d), 1 and 1 at
    # stride 1 (an nn.Conv2d's own padding); the file pads from the input, so both are one class
    model = small_model("mobilenet_v2", resolution=64)
    src = eject_source(model)
    assert "WithPaddedConv2d" not in src and "class Stage3" not in src
    ir = _class_source(src, "InvertedResidual")
    assert ("self.conv2 = PaddedConv2d(hidden, hidden, kernel_size=k, stride=stride, dilation=dilation, "
            "groups=hidden, bias=False, pads='same')") in ir
    assert "self.conv1 = nn.Conv2d(in_channels, hidden, kernel_size=1, bias=False)" in ir  # "same" pads a 1x1 by 0
    assert "def __init__(self, in_channels, t, c, n, s):" in _class_source(src, "Stage")
    # the stem's `p=padding` reads a family parameter, which the graph does not keep: its pads stay
    assert "pads=(0, 1, 0, 1)" in _class_source(src, "Stem")
    fused = eject_source(archdsl.optimize(model))
    assert "pads='same')" in _class_source(fused, "InvertedResidual") and "pads)" not in fused
    # built at 66 px, stages.1.blocks.0 (stride 2) reads a 33 px map, which "same" pads by 1 and 1:
    # the class ejected at 64 px gives its outputs
    other = small_model("mobilenet_v2", resolution=66)
    block = other.get_submodule("stages.1.blocks.0")
    built = _ejected_namespace(model)["InvertedResidual"](16, 24, stride=2, expand=6, bn_eps=1e-3)
    built.load_state_dict(block.state_dict())
    x = torch.randn(2, 16, 33, 33, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(built.eval()(x), block(x))
