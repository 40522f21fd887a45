"""`Graph.calls`: the elaborator records each block instance's block and bound arguments
under its scope (what `archdsl eject` names constructor arguments after)."""
from __future__ import annotations

import archdsl
from archdsl.compiler import compile_spec
from conftest import ROOT


def test_each_block_scope_records_its_call():
    # resnet18: widths [64, 128, 256, 512], two `basic` blocks a stage, the first of stages
    # 2-4 with first(stride = 2) (specs/resnet18.arch, families/resnet.arch)
    graph = compile_spec(ROOT / "specs" / "resnet18.arch").graph
    assert sorted(graph.calls) == [f"stages.{i}.blocks.{j}" for i in range(4) for j in range(2)]
    call = graph.calls["stages.1.blocks.0"]
    assert (call.block, call.args) == ("basic", {"out": 128, "stride": 2})
    assert graph.calls["stages.1.blocks.1"].args == {"out": 128, "stride": 1}  # the default
    assert call.decl.name == "basic" and [p.name for p in call.decl.params] == ["out", "stride"]
    assert str(call) == "basic(out=128, stride=2)"


def test_ops_passed_as_values_are_recorded_by_name_and_survive_optimize():
    model = archdsl.build("mobilenet_v3_small", device="meta")
    call = model.archdsl_graph.calls["stages.0.blocks.0.se"]
    assert call.block == "squeeze_excite" and call.args["gate_act"] == "hardsigmoid"
    assert archdsl.optimize(model).archdsl_graph.calls == model.archdsl_graph.calls
