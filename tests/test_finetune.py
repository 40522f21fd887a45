"""Fine-tuning: partial import into another head with a report by name, in_chans adaptation
(timm's adapt_input_conv), classes=0 / reset_classifier, freezing and parameter groups by
scope, and the transfer-learning recipe."""
from __future__ import annotations

import pytest
import torch

import archdsl
from archdsl.errors import ArchDSLError


@pytest.fixture(scope="module")
def hf_resnet18_weights():
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    cfg = ResNetConfig(depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], layer_type="basic", num_labels=1000)
    return ResNetForImageClassification(cfg).state_dict()


@pytest.mark.quick
def test_import_into_another_head_reports_exactly_the_head(hf_resnet18_weights):
    model = archdsl.build("resnet18", classes=10)
    fresh_fc = model.head.fc.weight.clone()
    report = archdsl.import_weights(model, hf_resnet18_weights, source="hf", strict=False)
    assert report.skipped == {"head.fc.weight": "1000x512 in the checkpoint, 10x512 in the model",
                              "head.fc.bias": "1000 in the checkpoint, 10 in the model"}
    assert not report.missing and not report.unmapped and not report.adapted
    assert "not loaded head.fc.weight: 1000x512 in the checkpoint, 10x512 in the model" in str(report)
    torch.testing.assert_close(model.stem.conv1.weight, hf_resnet18_weights["resnet.embedder.embedder.convolution.weight"])
    assert torch.equal(model.head.fc.weight, fresh_fc)  # the new head keeps its initialisation
    # without strict=False the same import is an error naming the head, and loads nothing
    model = archdsl.build("resnet18", num_classes=10)
    before = model.stem.conv1.weight.clone()
    with pytest.raises(ArchDSLError, match="head.fc.weight: 1000x512 in the checkpoint, 10x512 in the model"):
        archdsl.import_weights(model, hf_resnet18_weights, source="hf")
    assert torch.equal(model.stem.conv1.weight, before)


@pytest.mark.parametrize("in_chans", [1, 5])
def test_in_chans_adapts_the_first_conv_as_timm(hf_resnet18_weights, in_chans):
    model = archdsl.build("resnet18", in_chans=in_chans)
    report = archdsl.import_weights(model, hf_resnet18_weights, source="hf", strict=False)
    rgb = hf_resnet18_weights["resnet.embedder.embedder.convolution.weight"]
    # timm.models._manipulate.adapt_input_conv: sum for 1 channel; else tile RGB, scale 3/in_chans
    want = rgb.sum(1, keepdim=True) if in_chans == 1 else rgb.repeat(1, 2, 1, 1)[:, :in_chans] * (3 / in_chans)
    torch.testing.assert_close(model.stem.conv1.weight, want)
    assert list(report.adapted) == ["stem.conv1.weight"] and report.complete
    assert model(torch.randn(1, in_chans, 64, 64)).shape == (1, 1000)


def test_adaptation_matches_timm(hf_resnet18_weights):
    from reference_libs import timm_module

    timm_module()
    from timm.models._manipulate import adapt_input_conv

    from archdsl.weights import adapt_input_conv as ours

    w = hf_resnet18_weights["resnet.embedder.embedder.convolution.weight"]
    for n in (1, 2, 4, 7):
        torch.testing.assert_close(ours(w, n), adapt_input_conv(n, w))


def test_classes_zero_and_reset_classifier():
    model = archdsl.build("resnet18", classes=0)
    x = torch.randn(2, 3, 64, 64)
    assert model(x).shape == (2, 512) and not hasattr(model.head, "fc")
    model = archdsl.build("resnet18", classes=10)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
    assert archdsl.optimize(model)(x).shape == (2, 3)  # the graph follows the new head
    model.reset_classifier(0)
    assert model(x).shape == (2, 512)
    with pytest.raises(ArchDSLError, match="num_classes"):
        model.reset_classifier(-1)


def test_freeze_and_groups_by_scope_on_any_model():
    model = archdsl.build("mobilevit_s", device="meta")
    archdsl.freeze(model, keep=["head"])
    assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == {"head"}
    archdsl.unfreeze(model, "stages.4")
    groups = archdsl.param_groups(model, {"stages.4": 1e-3, "head": 1e-2}, weight_decay=0.0)
    assert [g.get("lr") for g in groups] == [1e-3, 1e-2]
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())
    with pytest.raises(ArchDSLError, match="no scope 'backbone'"):
        archdsl.freeze(model, "backbone")


def test_transfer_learning_recipe_changes_only_unfrozen_parameters(hf_resnet18_weights):
    """Freeze the pretrained backbone, new classifier, two learning rates (last stage and head)."""
    torch.manual_seed(0)
    model = archdsl.build("resnet18", classes=4)
    archdsl.import_weights(model, hf_resnet18_weights, source="hf", strict=False)
    archdsl.freeze(model, keep=["stages.3", "head"])
    opt = torch.optim.SGD(archdsl.param_groups(model, {"stages.3": 1e-3, "head": 1e-1}), lr=0.0, momentum=0.9)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    for _ in range(3):
        x, y = torch.randn(4, 3, 64, 64), torch.randint(0, 4, (4,))
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("stages.3.", "head.")) for n in trainable)
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]) != (name in trainable), name


def test_levit_classifier_is_both_heads_as_timm():
    """LeViT's `head.fc` is its classifier and distillation heads (batch norm + linear each,
    averaged): classes=0 and reset_classifier replace both, as timm's LevitDistilled does
    (`reset_classifier` makes `head` and `head_dist` new NormLinears, or Identity for 0)."""
    from reference_libs import timm_module

    from reference import randomize

    timm = timm_module()
    torch.manual_seed(0)
    ref = timm.create_model("levit_128s").eval()
    randomize(ref)
    ours = archdsl.build("levit_128s").eval()
    archdsl.import_weights(ours, ref, source="timm")
    x = torch.randn(1, 3, 224, 224)
    pooled = archdsl.build("levit_128s", classes=0)
    archdsl.import_weights(pooled, ref.state_dict(), source="timm", strict=False)
    assert not any(k.startswith("head.") for k in pooled.state_dict())
    for n in (10, 0):
        ref.reset_classifier(n)
        ours.reset_classifier(n)
        assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
        with torch.no_grad():  # the graph follows the new head
            assert archdsl.optimize(ours)(x).shape == ref(x).shape == ((1, n) if n else (1, 384))
    with torch.no_grad():  # no classifier: both return the pooled features
        want = ref(x)
        torch.testing.assert_close(ours(x), want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pooled.eval()(x), want, atol=1e-5, rtol=1e-5)
    # importing into another head names exactly the two linears that differ
    model = archdsl.build("levit_128s", num_classes=10)
    report = archdsl.import_weights(model, timm.create_model("levit_128s").state_dict(), source="timm", strict=False)
    assert sorted(report.skipped) == [f"head.fc.{h}.linear1.{t}" for h in ("classifier", "distill")
                                      for t in ("bias", "weight")]
