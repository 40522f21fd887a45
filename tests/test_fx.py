"""The torch.fx emitter: built from the IR, named after the scopes, same outputs as the
nn.Module emitter."""
from __future__ import annotations

import pytest
import torch
from torch import fx

import archdsl
from conftest import ROOT
from emit_support import small_model


def test_fx_and_module_emitters_agree():
    # one spec here; test_export runs the FX forms of every representative (emit_support)
    # against the module, and checks every spec's state_dict keys on the meta device
    model = small_model(ROOT / "specs" / "mobilevit_xxs.arch")
    x = torch.randn(1, *model.archdsl_info["input_shape"], generator=torch.Generator().manual_seed(0))
    opt = archdsl.optimize(model)
    with torch.no_grad():
        for module in (model, opt):
            gm = archdsl.emit_fx(module)
            assert isinstance(gm, fx.GraphModule) and not gm.training
            want, got = module(x), gm(x)
            assert (got - want).abs().max().item() < 1e-5 * max(1.0, want.abs().max().item())


def test_fx_nodes_are_the_ir_scopes():
    model = archdsl.build("specs/resnet50.arch")
    gm = archdsl.emit_fx(model)
    graph = model.archdsl_graph
    names = {n.name for n in gm.graph.nodes}
    for node in graph:
        if node.op not in ("input", "identity"):
            assert node.scope.replace(".", "_") in names, node.scope
    conv = next(n for n in gm.graph.nodes if n.name == "stages_1_blocks_0_conv2")
    assert conv.op == "call_module" and conv.target == "stages.1.blocks.0.conv2"
    relu = next(n for n in gm.graph.nodes if n.name == "stages_1_blocks_0_relu1")
    assert relu.op == "call_function"
    # the submodule tree mirrors the scopes: the same state_dict as the nn.Module emitter's
    assert set(gm.state_dict()) == set(model.state_dict())
    assert "for " not in gm.code and "stages_1_blocks_0_conv2 = " in gm.code


def test_fx_from_spec_text_and_training_mode():
    gm = archdsl.emit_fx(text="""
    model tiny {
      input [3, 16, 16]
      conv(8, k=3) -> bn -> relu
      residual { conv(8, k=3) -> bn -> drop_path(0.5) }
      avgpool -> flatten -> dropout(0.5) -> linear(4)
    }""")
    x = torch.randn(4, 3, 16, 16)
    assert gm(x).shape == (4, 4)
    gm.eval()
    with torch.no_grad():
        assert torch.equal(gm(x), gm(x))
    gm.train()
    assert not torch.equal(gm(x), gm(x))  # dropout and drop_path follow self.training
    # MobileViT's transformer branch is `global_rep` (no keyword), as HF and timm name it
    gm = archdsl.emit_fx("specs/mobilevit_s.arch")
    assert any(n.target.startswith("stages.2.blocks.1.global_rep.") for n in gm.graph.nodes if n.op == "call_module")
