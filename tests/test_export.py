"""Models that leave archdsl: naming and pickling, and the `archdsl export` command.

What runs here (test_deploy_zoo.py runs torch.save/load in a fresh process, jit.script,
jit.trace, torch.export and ONNX with onnxruntime on every shipped spec, with weights):
- every shipped spec, on the meta device: module names obey the naming rule, classes are
  named after what they are, and build / emit_fx / the ejected source agree on the
  state_dict keys;
- resnet18: pickle and torch.save round trips in this process (plain and optimized), and a
  pickled module does not carry the IR's tensors twice;
- `archdsl export` on a tiny spec: the .pt2 program loads and runs, the .onnx file is
  checked with onnxruntime, and without the onnx extra the command says what to install.
"""
from __future__ import annotations

import keyword
import re
import subprocess
import sys
from functools import lru_cache

import pytest
import torch
from torch import nn

import archdsl
from archdsl.compiler import compile_spec
from archdsl.emit.eject import eject_source
from archdsl.emit.torch_module import camel
from conftest import ROOT, SPECS
from emit_support import small_model
from reference import randomize


@lru_cache(maxsize=None)
def compiled(spec):
    return compile_spec(spec)


# ------------------------------------------------------------------------------ every spec
@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_names_and_state_dicts_agree(spec):
    """Every spec, one meta build: the naming rule, class names, and the state_dict keys of the
    module, its FX form and its ejected source (`archdsl eject`) all equal."""
    c = compiled(spec)
    model = archdsl.build(c, device="meta")
    assert type(model).__name__ == camel(c.name) and type(model).__name__.isidentifier()
    for name, sub in model.named_modules():
        for part in name.split(".") if name else []:
            assert not keyword.iskeyword(part) and not hasattr(nn.Module, part), f"{spec.stem}: module {name}"
        if type(sub).__module__ == "archdsl.generated":
            assert type(sub).__name__.isidentifier() and type(sub).__name__ not in ("Model", "Scope")
    keys = list(model.state_dict())
    assert set(archdsl.emit_fx(model).state_dict()) == set(keys)
    src = eject_source(model)
    namespace: dict = {}
    exec(compile(src, f"<ejected {spec.stem}>", "exec"), namespace)  # noqa: S102 - the file under test
    with torch.device("meta"):
        ejected = namespace[type(model).__name__]()
    assert list(ejected.state_dict()) == keys
    assert not re.search(r"^\s*(import|from)\s+archdsl", src, re.M)  # needs only torch


def test_class_names_say_what_they_are():
    model = archdsl.build(ROOT / "specs" / "resnet50.arch", device="meta")
    assert type(model).__name__ == "ResNet50"
    assert type(model.stem).__name__ == "Stem" and type(model.stages).__name__ == "Stages"
    assert type(model.get_submodule("stages.0.blocks.0")).__name__ == "Bottleneck"
    assert type(model.get_submodule("stages.0.blocks.0.shortcut")).__name__ == "Shortcut"
    assert camel("mobilenet_v2") == "MobileNetV2" and camel("levit_128s") == "LeViT128S"


def test_generated_source_is_not_replaced_by_a_second_build():
    import inspect

    def tiny(act):
        return archdsl.build(text=f"model tiny {{\n  input [3, 8, 8]\n  conv(4, k=3) -> {act}\n}}\n", device="meta")

    first = tiny("relu")
    src_first = inspect.getsource(type(first).forward)
    second = tiny("gelu")  # same model name, other code
    assert "F.relu" in src_first and "F.gelu" in inspect.getsource(type(second).forward)
    assert inspect.getsource(type(first).forward) == src_first
    assert type(first).forward.__code__.co_filename != type(second).forward.__code__.co_filename
    assert type(tiny("relu")) is type(first)  # the same source: one class, shared


# ------------------------------------------------------------------------------ pickling
@pytest.mark.quick
def test_pickle_round_trip_in_process():
    model = small_model(ROOT / "specs" / "resnet18.arch")
    import io
    import pickle

    x = torch.randn(1, *model.archdsl_info["input_shape"])
    for module in (model, archdsl.optimize(model)):
        again = pickle.loads(pickle.dumps(module))
        graph = again.archdsl_graph  # the IR without the tensors: the module holds them, once
        assert type(again).__name__ == "ResNet18" and all("tensors" not in graph.node(n).meta for n in graph.node_ids())
        buf = io.BytesIO()
        torch.save(module, buf)
        buf.seek(0)
        with torch.no_grad():
            assert torch.equal(torch.load(buf, weights_only=False)(x), module(x))


# ------------------------------------------------------------------------------ the command
TINY = """
model tiny {
  input [3, 16, 16]
  conv(8, k=3) -> bn -> relu
  residual { conv(8, k=3) -> bn -> relu }
  avgpool -> flatten -> linear(10)
}
"""


def test_cli_export_writes_pt2_and_checked_onnx(tmp_path, capsys):
    from archdsl.cli import main

    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    assert main(["export", str(spec), "-o", str(tmp_path / "tiny.pt2")]) == 0
    program = torch.export.load(str(tmp_path / "tiny.pt2"))
    assert program.module()(torch.randn(5, 3, 16, 16)).shape == (5, 10)
    pytest.importorskip("onnxruntime")
    weights = tmp_path / "w.pt"
    trained = archdsl.build(spec)
    randomize(trained)
    torch.save(trained.state_dict(), weights)
    assert main(["export", str(spec), "-o", str(tmp_path / "tiny.onnx"), "--optimize", "--weights", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime matches PyTorch" in out, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.arch", "tiny.onnx", "tiny.pt2", "w.pt"]


def test_cli_export_without_the_onnx_extra_says_what_to_install(tmp_path):
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "from archdsl.cli import main\n"
            f"sys.exit(main(['export', {str(spec)!r}, '-o', {str(tmp_path / 'x.onnx')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "pip install 'archdsl[onnx]'" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_version():
    out = subprocess.run([sys.executable, "-m", "archdsl", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"archdsl {archdsl.__version__}"
