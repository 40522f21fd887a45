"""import_weights: checked whole, then copied (all or nothing); what it accepts and refuses;
mapping files validated on load, their patterns linear; HF ResNetBackbone parity."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import archdsl
from archdsl.errors import ArchWeightsError
from archdsl.weights.mapping import compile_rule, read_mapping


@pytest.fixture(scope="module")
def hf_resnet18():
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    cfg = ResNetConfig(depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], layer_type="basic", num_labels=1000)
    return ResNetForImageClassification(cfg).eval()


@pytest.fixture(scope="module")
def model():
    # shared: every test checks the module against its own snapshot, or loads it whole
    return archdsl.build("resnet18")


def _snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _unchanged(module, before):
    after = module.state_dict()
    return all(torch.equal(after[k], v) for k, v in before.items())


@pytest.mark.quick
def test_loads_a_state_dict_a_model_and_checkpoint_files(hf_resnet18, model, tmp_path):
    from safetensors.torch import save_file

    sd = hf_resnet18.state_dict()
    assert archdsl.import_weights(model, sd, source="hf") is model
    torch.testing.assert_close(model.stem.conv1.weight, sd["resnet.embedder.embedder.convolution.weight"])
    for weights in (hf_resnet18, _save(tmp_path / "w.pth", sd), _save_st(tmp_path / "w.safetensors", sd, save_file),
                    str(tmp_path / "w.pth")):
        m = archdsl.build("resnet18")
        archdsl.import_weights(m, weights, source="hf")
        torch.testing.assert_close(m.head.fc.weight, sd["classifier.1.weight"])


def _save(path, sd):
    torch.save(sd, path)
    return path


def _save_st(path, sd, save_file):
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


@pytest.mark.parametrize("corrupt, message", [
    (lambda sd: sd.__setitem__("classifier.1.weight", torch.zeros(3, 3)), "3x3 in the checkpoint"),
    (lambda sd: sd.__setitem__("classifier.1.bias", torch.zeros(1000, dtype=torch.int64)), "int64"),
    (lambda sd: sd.__setitem__("classifier.1.bias", torch.zeros(1000, dtype=torch.bool)), "bool"),
    (lambda sd: sd.__setitem__("classifier.1.bias", torch.zeros(1000, dtype=torch.complex64)), "complex64"),
    (lambda sd: sd.__setitem__("classifier.1.bias", torch.zeros(1000, dtype=torch.float64)), "allow_downcast"),
    (lambda sd: sd.__setitem__("not.a.key", torch.zeros(1)), "not.a.key"),
    (lambda sd: sd.pop("classifier.1.bias"), "head.fc.bias"),
])
def test_a_bad_tensor_anywhere_loads_nothing(hf_resnet18, model, corrupt, message):
    sd = dict(hf_resnet18.state_dict())
    corrupt(sd)
    before = _snapshot(model)
    with pytest.raises(ArchWeightsError, match="nothing was loaded") as e:
        archdsl.import_weights(model, sd, source="hf")
    assert message in str(e.value)
    assert _unchanged(model, before)


@pytest.mark.parametrize("value, message", [
    (np.zeros(1000, dtype=np.float32), "ndarray, not a tensor"),
    ([0.0] * 1000, "list, not a tensor"),
    (None, "NoneType, not a tensor"),
    (torch.zeros(1000, device="meta"), "meta tensor"),
])
def test_values_that_are_not_tensors_are_refused_by_name(hf_resnet18, model, value, message):
    sd = dict(hf_resnet18.state_dict())
    sd["classifier.1.bias"] = value
    before = _snapshot(model)
    with pytest.raises(ArchWeightsError, match=message) as e:
        archdsl.import_weights(model, sd, source="hf")
    assert "classifier.1.bias" in str(e.value)
    assert _unchanged(model, before)


@pytest.mark.parametrize("weights, message", [
    ([1, 2, 3], "got list"), (None, "got NoneType"), ("/no/such/file.pth", "no checkpoint file"),
])
def test_weights_that_are_not_a_state_dict(model, weights, message):
    with pytest.raises(ArchWeightsError, match=message):
        archdsl.import_weights(model, weights, source="hf")


def test_unreadable_and_unknown_checkpoint_files(model, tmp_path):
    (tmp_path / "bad.pth").write_bytes(b"not a pickle")
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(ArchWeightsError, match="cannot read the checkpoint"):
        archdsl.import_weights(model, tmp_path / "bad.pth", source="hf")
    with pytest.raises(ArchWeightsError, match="unknown checkpoint format"):
        archdsl.import_weights(model, tmp_path / "w.npz", source="hf")


def test_a_meta_module_is_an_error_not_a_silent_no_op(hf_resnet18):
    meta = archdsl.build("resnet18", device="meta")
    with pytest.raises(ArchWeightsError, match="meta device"):
        archdsl.import_weights(meta, hf_resnet18.state_dict(), source="hf")


def test_lossless_casts_and_explicit_downcasts(hf_resnet18, model):
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in hf_resnet18.state_dict().items()}
    archdsl.import_weights(model, half, source="hf")
    assert model.head.fc.weight.dtype == torch.float32
    double = {k: (v.double() if v.is_floating_point() else v) for k, v in hf_resnet18.state_dict().items()}
    archdsl.import_weights(model, double, source="hf", allow_downcast=True)
    torch.testing.assert_close(model.head.fc.weight, hf_resnet18.classifier[1].weight)


@pytest.mark.parametrize("text, message", [
    ("[hf\nrules = [", "not a valid mapping file"),
    ('[hf]\nrules = [["a.", 3]]', "string pairs"),
    ('[hf]\nrules = "a"', "string pairs"),
    ('[hf]\nrulez = []', "unknown keys"),
    ('[hf]\nignore = [3]', "list of strings"),
    ('[hf]\nrules = [["a.{i}{j}.", "b.{i}.{j}."]]', "separated by a non-digit"),
    ('[hf]\nrules = [["a.{i+1}.", "b.{i}."]]', "arithmetic belongs in the target"),
    ('[hf]\nrules = [["a.{i}.", "b.{k}."]]', "which the source does not match"),
    ('hf = 3', "must be a table"),
])
def test_malformed_mapping_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "fam.weights.toml"
    path.write_text(text)
    with pytest.raises(ArchWeightsError, match=message) as e:
        read_mapping(path, "hf")
    assert "fam.weights.toml" in str(e.value)


def test_rule_patterns_are_anchored_literals_and_numbers_and_never_backtrack(tmp_path):
    rule = compile_rule("a.{i}.b.{j}.c.", "x.{i}.{j}.")
    assert rule.pattern.pattern.startswith("a\\.(?P<i>\\d+)")  # literal + \d+ groups only
    assert rule.apply("a.1.b.22.c.weight") == "x.1.22.weight"
    assert rule.apply("za.1.b.22.c.weight") is None  # anchored at the start
    key = "a." + "1" * 200_000 + ".b." + "2" * 200_000 + "!"
    t = time.perf_counter()
    assert rule.apply(key) is None
    assert time.perf_counter() - t < 0.5
    # ignore entries are prefixes in the rules' syntax, not regexes: "(a+)+$" is literal text
    path = tmp_path / "f.weights.toml"
    path.write_text('[hf]\nrules = []\nignore = ["(a+)+$", "pooler.{i}."]')
    mapping = read_mapping(path, "hf")
    t = time.perf_counter()
    assert not any(p.match("a" * 100_000 + "!") for p in mapping.ignore)
    assert time.perf_counter() - t < 0.5
    assert mapping.ignore[1].match("pooler.3.weight")


@pytest.mark.slow
def test_hf_resnet_backbone_feature_maps():
    """HF ResNetBackbone (resnet50, out_features stage1..4; 23,508,032 parameters, HF's figure
    for this config) against ours built with the same out_features, its keys mapped by the
    [hf] rules (the backbone's keys are the base model's without `resnet.`)."""
    from transformers import ResNetBackbone, ResNetConfig

    torch.manual_seed(0)
    stages = ["stage1", "stage2", "stage3", "stage4"]
    ref = ResNetBackbone(ResNetConfig(depths=[3, 4, 6, 3], layer_type="bottleneck", out_features=stages)).eval()
    with torch.no_grad():  # batch-norm statistics away from the identity
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5), m.weight.uniform_(0.5, 1.5)
    ours = archdsl.build("resnet50", out_features=stages)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == 23_508_032
    archdsl.import_weights(ours, ref, source="hf")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want, got = ref(x).feature_maps, ours.eval()(x)
    assert len(got) == 4
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_hf_convnext_backbone_feature_maps():
    """HF ConvNextBackbone (convnext_tiny, out_features stage1..4; 27,821,472 parameters, HF's
    figure for this config) against ours with hf_backbone = true: the same maps after HF's
    per-stage layer norms (`tap(..., norm=layernorm(eps=1e-6))`)."""
    from transformers import ConvNextBackbone, ConvNextConfig

    torch.manual_seed(0)
    stages = ["stage1", "stage2", "stage3", "stage4"]
    ref = ConvNextBackbone(ConvNextConfig(hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3],
                                          out_features=stages)).eval()
    with torch.no_grad():  # layer scales away from their 1e-6 init, so every block shows
        for name, p in ref.named_parameters():
            if name.endswith("layer_scale_parameter"):
                p.uniform_(0.5, 1.5)
    ours = archdsl.build("convnext_tiny", out_features=stages, hf_backbone=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == 27_821_472
    archdsl.import_weights(ours, ref, source="hf")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want, got = ref(x).feature_maps, ours.eval()(x)
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
