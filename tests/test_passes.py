"""Inference passes: the optimized module computes what the plain one does, every pass keeps
to its exactness condition, and the pipeline leaves a checked graph behind."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.analysis.cost import totals
from archdsl.analysis.receptive_field import final_feature_node, receptive_fields
from archdsl.ir.graph import Graph
from archdsl.passes import (PIPELINE, PassError, attach_weights, fold_bn_into_consumer, fold_bn_into_producer,
                            fold_layer_scale, fuse_conv_act, fuse_conv_add, fuse_linear_act, gather_levit_bias,
                            linear_to_conv1x1, remove_inference_noops, run_passes)
from conftest import SPECS, family_representatives, is_heavy, light_specs
from reference import randomize


def _trained(spec=None, seed=0, *, text=None, **overrides):
    model = archdsl.build(spec, text=text, **overrides)
    randomize(model, seed)
    return model.eval()


def _agree(plain, x, tol32=1e-4, rel64=1e-5, float64=True):
    """Optimized == plain: within tol32 max abs in float32, rel64 relative in float64."""
    with torch.no_grad():
        want, got = plain(x), archdsl.optimize(plain)(x)
        assert (got - want).abs().max().item() <= tol32, (got - want).abs().max().item()
        if not float64:
            return
        plain64 = plain.double()
        x64 = x.double()
        want, got = plain64(x64), archdsl.optimize(plain64)(x64)
        assert got.dtype == torch.float64
        rel = ((got - want).abs().max() / want.abs().max()).item()
        assert rel <= rel64, rel
        plain.float()


HEAVY = [p for p in SPECS if is_heavy(p)]
LIGHT = light_specs()


@pytest.mark.parametrize("spec", HEAVY, ids=[p.stem for p in HEAVY])
def test_big_specs_optimize_on_the_meta_device_to_the_same_costs(spec):
    # their blocks are checked numerically on the smaller variants of their family
    plain = archdsl.build(spec, device="meta").eval()
    opt = archdsl.optimize(plain)
    assert all(t.device.type == "meta" for t in opt.state_dict().values())
    ops = {n.op for n in opt.archdsl_graph}
    assert not ops & {"dropout", "drop_path", "identity", "levit_attention", "layer_scale"}, ops
    assert totals(opt.archdsl_graph).flops == totals(plain.archdsl_graph).flops
    plain_graph, opt_graph = plain.archdsl_graph, opt.archdsl_graph
    plain_rf = receptive_fields(plain_graph)[final_feature_node(plain_graph)]
    assert receptive_fields(opt_graph)[final_feature_node(opt_graph)] == plain_rf


@pytest.mark.parametrize("spec", LIGHT, ids=[p.stem for p in LIGHT])
def test_optimized_equals_plain_on_every_spec(spec):
    plain = _trained(spec)
    # float64 (slow: no fast kernels) on one spec per family, which has the family's blocks
    full = spec.stem in family_representatives()
    x = torch.randn(2 if full else 1, *plain.archdsl_info["input_shape"], generator=torch.Generator().manual_seed(0))
    _agree(plain, x, float64=full)
    opt = archdsl.optimize(plain)
    assert not opt.training
    ops = {n.op for n in opt.archdsl_graph}
    assert not ops & {"dropout", "drop_path", "identity", "levit_attention"}, ops
    # MobileViT's transformers normalise with layer norm only; DenseNet's pre-activation batch
    # norms sit between a concat and a ReLU, with no conv next to them to fold into
    if spec.stem != "mobilevit_s" and not spec.stem.startswith("densenet"):
        assert "bn" not in ops, f"{spec.stem}: a batch norm is left"
    assert "layer_scale" not in ops
    # the analyses read the optimized graph as they read the plain one: the same headline
    # FLOPs (a fused or folded node does the same conv/linear/attention work) and field
    plain_graph, opt_graph = plain.archdsl_graph, opt.archdsl_graph
    assert totals(opt_graph).flops == totals(plain_graph).flops
    plain_rf = receptive_fields(plain_graph)[final_feature_node(plain_graph)]
    assert receptive_fields(opt_graph)[final_feature_node(opt_graph)] == plain_rf


def test_optimize_leaves_the_module_and_its_graph_alone():
    plain = _trained("specs/resnet18.arch")
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    n = len(plain.archdsl_graph)
    opt = archdsl.optimize(plain)
    assert len(plain.archdsl_graph) == n and "tensors" not in plain.archdsl_graph.node(1).meta
    assert all(torch.equal(before[k], v) for k, v in plain.state_dict().items())
    assert opt.archdsl_passes["fold_bn_into_producer"]  # what each pass did is on record
    assert sum(p.numel() for p in opt.parameters()) < sum(p.numel() for p in plain.parameters())


def test_pipeline_is_one_list_of_checked_passes():
    assert [p.__name__ for p in PIPELINE] == ["remove_inference_noops", "fold_bn_into_producer",
                                              "fold_bn_into_consumer", "fold_layer_scale", "gather_levit_bias",
                                              "linear_to_conv1x1", "fuse_conv_add", "fuse_conv_act", "fuse_linear_act", "channels_last"]
    for p in PIPELINE:
        assert "Exact" in p.__doc__, f"{p.__name__} must state its exactness condition"


def test_manager_rejects_a_pass_that_breaks_the_graph():
    graph = archdsl.compile_spec("specs/resnet18.arch").graph

    def broken(g: Graph) -> Graph:
        g = g.copy()
        node = next(n for n in g if n.op == "conv")
        g.replace_node(node.id, attrs=node.attrs.model_copy(update={"out": node.attrs.out + 1}))
        return g

    with pytest.raises(PassError, match="broken"):
        run_passes(graph, [broken])


def _weighted(spec, seed=0):
    # a shipped spec's path, or spec text
    model = _trained(spec, seed) if spec.endswith(".arch") else _trained(text=spec, seed=seed)
    return model, attach_weights(model.archdsl_graph, model)


def _ops(graph):
    return [n.op for n in graph if n.op != "input"]


def test_bn_fold_keeps_the_span_and_scope_of_the_conv():
    model, graph = _weighted("specs/resnet18.arch")
    conv = next(n for n in graph if n.scope == "stem.conv1")
    out = fold_bn_into_producer(graph)
    new = next(n for n in out.graph if n.scope == "stem.conv1")
    assert new.id != conv.id and new.span == conv.span and new.attrs.bias
    assert "stem.bn1 -> stem.conv1" in out.rewrites
    assert any(n.scope == "stem.bn1" for n in graph)  # the input graph is not touched


SHARED = """
model shared {
  input [4, 8, 8]
  conv(6, k=3)
  residual { bn -> relu }
  bn -> conv(5, k=3)
  bn -> conv(5, k=1, p=0)
  avgpool -> flatten -> linear(3)
}
"""


def test_bn_folds_only_where_exact():
    model, graph = _weighted(SHARED)
    after = fold_bn_into_producer(graph).graph
    # the first conv also feeds the residual's shortcut: its bn cannot fold into it
    assert _ops(after)[:2] == ["conv", "bn"]
    after = fold_bn_into_consumer(after).graph
    ops = _ops(after)
    # bn -> conv with zero padding folds; bn -> padded conv does not (padding would skip the bn)
    assert ops.count("bn") == 2, ops
    x = torch.randn(3, 4, 8, 8)
    with torch.no_grad():
        want = model(x)
        got = archdsl.emit.torch_module.emit_module(after).eval()(x)
    assert torch.allclose(got, want, atol=1e-5)


def test_layer_scale_folds_into_the_linear():
    model, graph = _weighted("""
    model ls {
      input [8, 6, 6]
      residual { conv(8, k=3, g=8, bias=true) -> linear(16) -> gelu -> linear(8) -> layer_scale(0.5) }
      tokens -> residual { linear(8) -> layer_scale } -> avgpool -> linear(2)
    }""")
    out = fold_layer_scale(graph)
    assert len(out.rewrites) == 2 and "layer_scale" not in _ops(out.graph)
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        assert torch.allclose(archdsl.emit.torch_module.emit_module(out.graph).eval()(x), model(x), atol=1e-6)


def test_noops_vanish_and_levit_bias_is_gathered():
    _, graph = _weighted("specs/mobilevit_s.arch")
    out = remove_inference_noops(graph)
    assert {"identity", "dropout"} & set(_ops(graph)) and not {"identity", "dropout"} & set(_ops(out.graph))
    _, graph = _weighted("specs/levit_128s.arch")
    out = gather_levit_bias(graph)
    node = next(n for n in out.graph if n.op == "levit_attention_gathered")
    assert tuple(node.meta["tensors"]["attention_bias"].shape) == (4, 196, 196)


def test_fusion_needs_a_single_user():
    model, graph = _weighted("""
    model f {
      input [3, 8, 8]
      conv(4, k=3) -> relu
      conv(4, k=3)
      residual { relu -> conv(4, k=1) }
    }""")
    out = fuse_conv_act(graph)
    assert _ops(out.graph)[:3] == ["conv_act", "conv", "relu"]  # the second conv also feeds the shortcut


def test_residual_sum_fuses_into_one_conv_and_takes_the_activation_only_when_alone():
    _, graph = _weighted("""
    model r {
      input [4, 8, 8]
      residual { conv(4, k=3) -> bn -> relu
                 conv(4, k=3) -> bn } -> relu
      residual { conv(4, k=3) } shortcut { conv(4, k=1) }
      conv(4, k=1) as reused
      merge add { { identity } { identity } } -> gelu
    }""")
    out = fuse_conv_add(fold_bn_into_producer(remove_inference_noops(graph).graph).graph)
    ops = _ops(out.graph)
    assert ops.count("conv_add") == 2, ops
    first, second = [n for n in out.graph if n.op == "conv_add"]
    assert first.attrs.act == "relu" and second.attrs.act is None  # the second sum feeds a conv
    # the main path's conv is fused; the shortcut conv stays a conv, and feeds the fused node
    assert out.graph.node(out.graph.inputs(second.id)[1]).op == "conv"
    # `in + in` (the same conv's output twice) is not a conv plus a residual: left alone
    assert "add" in ops


def test_linear_fusions_and_pointwise_convs():
    _, graph = _weighted("""
    model m {
      input [4, 6, 6]
      residual { layernorm -> linear(8) -> gelu -> linear(4) }
      tokens -> linear(8) -> gelu -> linear(4) -> hardswish
    }""")
    out = linear_to_conv1x1(graph).graph
    assert _ops(out)[:5] == ["layernorm", "conv", "gelu", "conv", "add"]  # grid linears only
    conv = next(n for n in out if n.op == "conv")
    assert conv.attrs.k == (1, 1) and conv.meta["tensors"]["weight"].shape == (8, 4, 1, 1)
    fused = fuse_linear_act(out).graph
    assert [n.attrs.act for n in fused if n.op == "linear_act"] == ["gelu", "hardswish"]


def test_passes_without_weights_leave_the_graph_alone():
    graph = archdsl.compile_spec("specs/resnet18.arch").graph
    out, log = run_passes(graph, [p for p in PIPELINE if p.__name__.startswith("fold")])
    assert _ops(out) == _ops(graph) and not any(log.values())


# random small architectures ---------------------------------------------------------------

_GRID_LAYERS = st.sampled_from([
    "conv({c}, k=3) -> bn -> relu",
    "conv({c}, k=1, s=2) -> bn",
    "residual {{ conv({c}, k=3) -> bn -> relu\n conv({c}, k=3) -> bn }} -> relu",
    "residual {{ conv({c}, k=1) -> bn -> hardswish }}",
    "bn -> conv({c}, k=1, p=0) -> relu6",
    "conv({c}, k=3, g={c}, bias=true) -> bn -> silu",
    "residual {{ linear({c}) -> layer_scale(0.3) }}",
    "dropout(0.2) -> conv({c}, k=3) -> bn",
    "residual {{ conv({c}, k=3) -> bn }} -> silu",
    "residual {{ conv({c}, k=3, s=2) -> bn }} shortcut {{ conv({c}, k=1, s=2) -> bn }} -> relu",
    "residual {{ conv({c}, k=7, g={c}, bias=true) -> layernorm -> linear(2 * {c}) -> gelu\n linear({c}) }}",
    "conv({c}, k=3) -> bn -> sigmoid",
    "conv({c}, k=1) -> tanh -> conv({c}, k=3) -> hardsigmoid",
])
_TOKEN_LAYERS = st.sampled_from([
    "linear({d}, bias=false) -> bn -> hardswish",
    "residual {{ linear({d}, bias=false) -> bn }}",
    "residual {{ linear({d}) -> layer_scale(2.0) }}",
    "residual {{ layernorm -> linear({d}) -> gelu }}",
])


@st.composite
def architectures(draw):
    c = draw(st.sampled_from([4, 8]))
    lines = ["model random {", "  input [3, 8, 8]", f"  conv({c}, k=3) -> bn"]
    for layer in draw(st.lists(_GRID_LAYERS, min_size=1, max_size=4)):
        lines.append("  " + layer.format(c=c))
    d = draw(st.sampled_from([4, 6]))
    if draw(st.booleans()):
        lines.append(f"  tokens -> linear({d}, bias=false) -> bn")
        for layer in draw(st.lists(_TOKEN_LAYERS, max_size=3)):
            lines.append("  " + layer.format(d=d))
        lines.append("  avgpool -> bn -> linear(5)")
    else:
        lines.append("  avgpool -> flatten -> bn -> linear(5)")
    lines.append("}")
    return "\n".join(lines), draw(st.integers(0, 1000))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_optimized_equals_plain_on_random_architectures(arch):
    src, seed = arch
    plain = _trained(text=src, seed=seed)
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    _agree(plain, x)
