"""Models that leave archdsl: pickling, TorchScript, torch.export and ONNX.

What runs on which spec (the zoo grows; the budget does not):
- every shipped spec, on the meta device: module names obey the naming rule, classes are
  named after what they are, and build / optimize / emit_fx agree on the state_dict keys;
- the representatives (emit_support: resnet18 and the fewest small specs that together use
  every (op, input layout) lowering of the zoo), at 64 px where the family allows it:
  torch.save/torch.load in a fresh process (plain, optimized, FX), jit.script, jit.trace,
  torch.export with a dynamic batch (plain and optimized), outputs equal to the module's;
  ONNX checked with onnxruntime (`slow`; the optimized form on the three specs whose
  inference layers differ, ONNX_OPTIMIZED);
- googlenet with its auxiliary heads at 96 px: jit.script, train and eval outputs.
"""
from __future__ import annotations

import keyword
import re
import subprocess
import sys
import textwrap
from functools import lru_cache

import pytest
import torch
from torch import nn

import archdsl
from archdsl.compiler import compile_spec
from archdsl.emit.eject import eject_source
from archdsl.emit.torch_module import camel
from conftest import ROOT, SPECS
from emit_support import REP_IDS, REPS, small_model
from reference import randomize


@lru_cache(maxsize=None)
def compiled(spec):
    return compile_spec(spec)


def _assert_close(got, want, what):
    scale = max(1.0, want.abs().max().item())
    diff = (got - want).abs().max().item()
    assert diff <= 1e-4 * scale, f"{what}: max |diff| {diff:.2e} (scale {scale:.2f})"


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


# ------------------------------------------------------------------------------ one per family
_LOAD_AND_RUN = textwrap.dedent("""
    import sys, torch
    for path in sys.argv[1:]:
        saved = torch.load(path + ".io", weights_only=True)
        module = torch.load(path, weights_only=False)
        with torch.no_grad():
            got = module(saved["x"])
        scale = max(1.0, saved["y"].abs().max().item())
        diff = (got - saved["y"]).abs().max().item()
        assert diff <= 1e-4 * scale, (path, diff)
        print(type(module).__name__, "ok")
""")


def _save_round_trip(tmp_path, modules, x):
    paths = []
    for i, module in enumerate(modules):
        path = tmp_path / f"m{i}.pt"
        with torch.no_grad():
            torch.save({"x": x, "y": module(x)}, str(path) + ".io")
        torch.save(module, path)
        paths.append(str(path))
    # a fresh process: the classes are made again from what the file holds
    out = subprocess.run([sys.executable, "-c", _LOAD_AND_RUN, *paths], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.split()


@pytest.mark.parametrize("spec", REPS, ids=REP_IDS)
def test_save_script_trace_export(spec, tmp_path):
    model = small_model(spec)
    opt = archdsl.optimize(model)
    x = torch.randn(2, *model.archdsl_info["input_shape"], generator=torch.Generator().manual_seed(0))
    x3 = torch.randn(3, *model.archdsl_info["input_shape"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, want3 = model(x), model(x3)
        # torch.save / torch.load in a fresh process: plain, optimized, and both FX forms
        fx_plain, fx_opt = archdsl.emit_fx(model), archdsl.emit_fx(opt)
        assert set(fx_opt.state_dict()) == set(opt.state_dict())
        _assert_close(fx_plain(x), want, "emit_fx plain")
        _assert_close(fx_opt(x), want, "emit_fx optimized")
        _assert_close(opt(x), want, "optimize")
        names = _save_round_trip(tmp_path, [model, opt, fx_plain, fx_opt], x)
        assert names[0] == camel(model.archdsl_info["model"]) and names.count("ok") == 4
        _assert_close(torch.jit.script(model)(x), want, "jit.script")
        for form, module in (("plain", model), ("optimized", opt)):
            _assert_close(torch.jit.trace(module, x, check_trace=False)(x), want, f"jit.trace {form}")
    for form, module in (("plain", model), ("optimized", opt)):
        ep = torch.export.export(module, (x,), dynamic_shapes={"x": {0: torch.export.Dim("batch", max=1024)}})
        with torch.no_grad():
            _assert_close(ep.module()(x3), want3, f"torch.export {form}")


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


def test_jit_script_with_auxiliary_heads():
    """A root forward that returns the heads' tuple in training and the logits in eval
    compiles (its return types are declared) and returns the same as the module in both."""
    model = archdsl.build("googlenet", resolution=96, aux_logits=True, dropout=0.0, aux_dropout=0.0)
    randomize(model)
    scripted = torch.jit.script(model)
    x = torch.randn(2, *model.archdsl_info["input_shape"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.train(), scripted.train()
        want, got = model(x), scripted(x)
        assert isinstance(got, tuple) and len(got) == len(want) == 3
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            _assert_close(a, b, f"jit.script training output {i}")
        model.eval(), scripted.eval()
        got = scripted(x)
        assert isinstance(got, torch.Tensor)
        _assert_close(got, model(x), "jit.script eval")


# ------------------------------------------------------------------------------ ONNX
# the optimized forms' own layers: fused conv+act and conv+add (resnet18), linear+act and
# channels-last (mobilevit_xxs), gathered attention bias (levit_128s)
ONNX_OPTIMIZED = ("resnet18", "mobilevit_xxs", "levit_128s")


@pytest.mark.slow
@pytest.mark.parametrize("spec", REPS, ids=REP_IDS)
def test_onnx_export_matches_onnxruntime(spec, tmp_path):
    pytest.importorskip("onnxruntime")
    from archdsl.export import save_onnx

    model = small_model(spec)
    forms = [("plain", model)] + ([("optimized", archdsl.optimize(model))] if spec.stem in ONNX_OPTIMIZED else [])
    for form, module in forms:
        check = save_onnx(module, tmp_path / f"{form}.onnx")
        assert check.ok, f"{spec.stem} {form}: {check}"


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
