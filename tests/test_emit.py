"""The emitted module: its tree mirrors the spec, its runtime shapes are the static ones."""
from __future__ import annotations

import pytest
import torch

import archdsl
from archdsl.compiler import compile_spec
from archdsl.emit.torch_module import generated_source
from emit_support import REP_IDS, REPS


def _runtime_shapes_match(compiled, module):
    """Run the module once; every scope module's output must have its node's static shape."""
    graph = compiled.graph
    last_inside = {}  # a scope's output node is the last node inside it in creation order
    for node in graph:
        parts = node.scope.split(".")
        for i in range(1, len(parts)):
            last_inside[".".join(parts[:i])] = node
    want = {name: node.shape.dims for name, node in last_inside.items()}
    seen = {}
    hooks = []
    for name, sub in module.named_modules():
        if name:
            hooks.append(sub.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:]))))
    x = torch.randn(1, *compiled.input_shape)
    with torch.no_grad():
        out = module.eval()(x)
    for h in hooks:
        h.remove()
    assert tuple(out.shape[1:]) == tuple(compiled.output_shape)
    checked = 0
    for name, dims in seen.items():
        if name in want and len(dims) == len(want[name]) and type(module.get_submodule(name)).__module__ == "archdsl.generated":
            assert dims == tuple(want[name]), f"{name}: runtime {dims}, static {want[name]}"
            checked += 1
    return checked


@pytest.mark.parametrize("spec", REPS, ids=REP_IDS)
def test_runtime_shapes_equal_static_shapes(spec):
    # one spec per family (emit_support); every spec's module tree is checked on meta in test_export
    compiled = compile_spec(spec)
    module = archdsl.build(compiled)
    assert sum(p.numel() for p in module.parameters()) == compiled.params
    assert _runtime_shapes_match(compiled, module) > 3


def test_module_tree_mirrors_the_spec():
    model = archdsl.build("specs/resnet50.arch")
    names = dict(model.named_modules())
    for name in ["stem", "stem.conv1", "stages.0.blocks.0.conv1", "stages.0.blocks.0.shortcut.conv1",
                 "stages.3.blocks.2.bn3", "head.fc"]:
        assert name in names, name
    assert "stages.0.blocks.1.shortcut" not in names  # identity shortcut: no projection
    assert model.state_dict()["stages.1.blocks.0.conv2.weight"].shape == (128, 128, 3, 3)


def test_forward_is_generated_straight_line_code():
    model = archdsl.build("specs/resnet18.arch")
    src = generated_source(model)["stages.1.blocks.0"]
    assert "for " not in src and "self.conv1(x)" in src and "self.shortcut(x)" in src


def test_build_overrides_rebind_family_parameters():
    model = archdsl.build("specs/resnet18.arch", classes=10, in_chans=1)
    out = model.eval()(torch.randn(2, 1, 224, 224))
    assert out.shape == (2, 10)
    assert model.archdsl_info["input_shape"] == [1, 224, 224]


def test_build_from_source_text_and_meta_device():
    src = """
    model tiny {
      input [3, 32, 32]
      conv(8, k=3) -> bn -> relu
      residual { conv(8, k=3) -> bn -> relu }
      avgpool -> flatten -> linear(10)
    }
    """
    model = archdsl.build(text=src, device="meta")
    assert next(model.parameters()).device.type == "meta"
    assert sum(p.numel() for p in model.parameters()) == compile_spec(text=src).params
