"""Auxiliary heads (`aux name { ... }`): GoogLeNet and Inception v3 with their auxiliary
classifiers (`aux_logits = true`) against torchvision's `aux_logits=True` models.

Parameter counts and a complete torchvision mapping (meta device); in training, the same
outputs in torchvision's order (GoogLeNetOutputs(logits, aux_logits2, aux_logits1),
InceptionOutputs(logits, aux_logits)) after `import_weights`, every dropout at p=0 so that
no randomness enters; in eval, the logits only; `optimize` drops the heads. The shipped
specs stay without them.
"""
from __future__ import annotations

import pytest
import torch

import archdsl
from archdsl.emit.torch_module import generated_source
from reference_libs import torchvision_models
from zoo_support import assert_mapping_complete, prepared_reference, spec_path

# torchvision 0.28's parameter counts with aux_logits=True (measured on the meta device:
# sum(p.numel()) of googlenet(aux_logits=True, init_weights=True) and inception_v3(...));
# without the heads they are 6,624,904 and 23,834,568 (shared/reference/models.md)
AUX_PARAMS = {"googlenet": 13_004_888, "inception_v3": 27_161_264}
SHIPPED_PARAMS = {"googlenet": 6_624_904, "inception_v3": 23_834_568}
RESOLUTION = {"googlenet": 224, "inception_v3": 299}


def _reference(name: str, no_dropout: bool = False):
    tv = torchvision_models()
    kwargs = dict(aux_logits=True, init_weights=True)
    if no_dropout:
        kwargs.update(dropout=0.0, **({"dropout_aux": 0.0} if name == "googlenet" else {}))
    return lambda: getattr(tv, name)(**kwargs)


def _ours_without_dropout(name: str):
    kwargs = dict(aux_logits=True, dropout=0.0, **({"aux_dropout": 0.0} if name == "googlenet" else {}))
    return archdsl.build(spec_path(name), **kwargs)


@pytest.mark.quick
@pytest.mark.parametrize("name", sorted(AUX_PARAMS))
def test_aux_mapping_is_complete(name):
    assert_mapping_complete(name, _reference(name), "torchvision", AUX_PARAMS[name], aux_logits=True)


@pytest.mark.parametrize("name", sorted(AUX_PARAMS))
def test_shipped_specs_have_no_aux_heads(name):
    model = archdsl.build(spec_path(name), device="meta")
    assert sum(p.numel() for p in model.parameters()) == SHIPPED_PARAMS[name]
    assert not model.archdsl_graph.aux_outputs
    assert not any(k.startswith("aux") for k in model.state_dict())


@pytest.mark.parametrize("name", sorted(AUX_PARAMS))
def test_train_mode_outputs_match_torchvision(name):
    res = RESOLUTION[name]
    ref = prepared_reference(_reference(name, no_dropout=True), (3, res, res))
    model = _ours_without_dropout(name)
    archdsl.import_weights(model, ref.state_dict(), source="torchvision")
    x = torch.randn(2, 3, res, res, generator=torch.Generator().manual_seed(1))
    ref.train(), model.train()
    with torch.no_grad():
        want, got = tuple(ref(x)), model(x)
    assert isinstance(got, tuple) and len(got) == len(want) == (3 if name == "googlenet" else 2)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape == (2, 1000)
        assert (b[0] - b[1]).abs().max() > 0.05 * b.abs().mean(), "the reference ignores its input"
        scale = max(1.0, b.abs().max().item())
        diff = (a - b).abs().max().item()
        assert diff <= 1e-4 * scale, f"{name} output {i}: differs from torchvision by {diff:.3e} (scale {scale:.2f})"
    # the heads are distinct outputs: the order is torchvision's, not an accident of equal values
    assert all((got[i] - got[j]).abs().max() > 1e-3 for i in range(len(got)) for j in range(i))
    # eval: the logits only, equal to torchvision's eval output (running statistics)
    ref.eval(), model.eval()
    with torch.no_grad():
        want_eval, got_eval = ref(x), model(x)
    assert isinstance(got_eval, torch.Tensor)
    assert (got_eval - want_eval).abs().max().item() <= 1e-4 * max(1.0, want_eval.abs().max().item())
    # optimize: no auxiliary head left, the same logits
    fast = archdsl.optimize(model)
    assert not fast.archdsl_graph.aux_outputs
    assert not any(k.startswith("aux") for k in fast.state_dict())
    assert "aux" not in generated_source(fast)["(root)"]
    with torch.no_grad():
        assert (fast(x) - got_eval).abs().max().item() <= 1e-4 * max(1.0, want_eval.abs().max().item())


TINY = """
family net(classes = 10, aux_logits = false) {
  input [3, 16, 16]
  stem {
    conv(8, k=3, s=2) -> bn -> relu
  }
  stages for i in range(2) {
    conv(16, k=3, s=2) -> bn -> relu
    aux aux1 {
      avgpool -> flatten -> linear(classes) as fc
    } when aux_logits and i == 0
    tap("stage" + str(i + 1))
  }
  head {
    avgpool -> flatten -> linear(classes) as fc
  }
}
model tiny = net()
"""


def test_aux_head_is_a_root_scope_of_training_only():
    model = archdsl.build(text=TINY, aux_logits=True)
    graph = model.archdsl_graph
    assert list(graph.aux_outputs) == ["aux1"]
    assert graph.node(graph.aux_outputs["aux1"]).scope == "aux1.fc"
    # the main path's names are unchanged by the head
    plain = archdsl.build(text=TINY)
    assert set(plain.state_dict()) == {k for k in model.state_dict() if not k.startswith("aux1.")}
    x = torch.randn(2, 3, 16, 16)
    logits, aux = model.train()(x)
    assert logits.shape == aux.shape == (2, 10)
    assert isinstance(model.eval()(x), torch.Tensor)
    # a backbone is cut at its taps: no auxiliary head in it
    backbone = archdsl.build(text=TINY, aux_logits=True, features_only=True)
    assert not any(k.startswith("aux1.") for k in backbone.state_dict())
    assert [f.shape for f in backbone.train()(x)] == [(2, 16, 4, 4), (2, 16, 2, 2)]


def test_aux_heads_leave_archdsl():
    """The ejected file keeps the training-only heads (same tuple in training); FX, an
    inference form, leaves them out."""
    from archdsl.emit.eject import eject_source

    model = archdsl.build(text=TINY, aux_logits=True)
    namespace: dict = {}
    exec(compile(eject_source(model), "<ejected>", "exec"), namespace)  # noqa: S102 - our own output
    ejected = namespace["Tiny"]()
    ejected.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        want, got = model.train()(x), ejected.train()(x)
        assert len(got) == len(want) == 2 and all(torch.equal(a, b) for a, b in zip(got, want))
        assert torch.equal(ejected.eval()(x), model.eval()(x))
        fx = archdsl.emit_fx(model.eval())
        assert "aux" not in fx.code and torch.equal(fx(x), model(x))


def test_aux_errors():
    bad_empty = TINY.replace("avgpool -> flatten -> linear(classes) as fc\n    } when", "\n    } when")
    with pytest.raises(archdsl.ArchDSLError, match="computes nothing"):
        archdsl.build(text=bad_empty, aux_logits=True)
    twice = TINY.replace("and i == 0", "")
    with pytest.raises(archdsl.ArchDSLError, match="already used"):
        archdsl.build(text=twice, aux_logits=True)
