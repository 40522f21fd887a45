"""Every shipped spec leaves archdsl: torch.save/load in a fresh process, jit.script, jit.trace,
torch.export and ONNX (checked with onnxruntime), with outputs equal to the module's.

Each spec is built once, at 64 px where its family takes a `resolution` (96 or 128 px where
that is the smallest it takes), with random tensors (deploy_checks.zoo_model), and runs:
- save: torch.save of the plain and optimized modules and of both FX forms (archdsl.emit_fx,
  whose state_dict keys and outputs equal the module's; pickled up to 40M parameters,
  deploy_checks.FX_PICKLE_PARAMS), each loaded and run by a process that never builds a
  model (deploy_load), outputs equal; the root class is named after the model;
- eject: `archdsl eject`'s file of the plain and of the optimized module, imported by a
  process where archdsl is blocked (importing it raises), loads the module's state_dict and
  gives its outputs; where the spec repeats a call (three items of one class in a row), the
  file loops;
- script: torch.jit.script of the plain module (the optimized form's fused layers are eager
  kernels, not scriptable; trace and export cover that form);
- trace: torch.jit.trace of the plain and the optimized module;
- export: torch.export with a dynamic batch (archdsl.export.export_program, as `archdsl
  export -o x.pt2`), plain and optimized, `ep.module()` run on another batch size;
- onnx (`slow`): the plain and the optimized form's programs through
  `torch.onnx.export(dynamo=True)`, each file run by onnxruntime on a batch of 3
  (archdsl.export.check_onnx, as `archdsl export -o x.onnx`).
Outputs agree to 1e-4 of the output's scale; the optimized form is compared with the plain
form's outputs.

The specs over deploy_checks.BIG_PARAMS (ConvNeXt L/XL, ConvNeXt V2 L/H: 198M to 660M
parameters) are checked on the meta device: export, script, eject and the save round trip run and
give the expected output shapes; trace and ONNX need weights and are skipped, naming the spec
under BIG_PARAMS whose code is theirs (same module tree and forward sources, at smaller
widths), which runs them with weights.

The exporters are single-threaded Python over the model's ops, so two worker processes
(one torch thread each) check the specs side by side while the tests read their results;
a worker runs only the checks the selected tests ask for (`-k`, `-m "not slow"`).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.compiler import compile_spec
from conftest import SPECS, spec_cost
from deploy_checks import BIG_PARAMS, NEEDS_WEIGHTS, check_spec, init_worker

IDS = [p.stem for p in SPECS]
WORKERS = max(1, min(2, os.cpu_count() or 1))
RESULTS_TIMEOUT_S = 3600  # the whole zoo: the first test may wait for the largest specs
CHECK_OF_TEST = {
    "test_saved_modules_load_in_a_fresh_process": "save",
    "test_ejected_file_runs_without_archdsl": "eject",
    "test_jit_script": "script",
    "test_jit_trace_plain_and_optimized": "trace",
    "test_torch_export_plain_and_optimized": "export",
    "test_onnx_matches_onnxruntime": "onnx",
}


def _is_big(spec: Path) -> bool:
    return spec_cost(spec)[0] > BIG_PARAMS


def _twin_candidates(spec: Path) -> list[str]:
    """The specs under BIG_PARAMS of the same family, largest first: where a big spec's twin
    (the same code at other widths) is looked for."""
    family = compile_spec(spec).graph.family
    same = [p for p in SPECS if not _is_big(p) and compile_spec(p).graph.family == family]
    return [str(p) for p in sorted(same, key=lambda p: -spec_cost(p)[0])]


def _expected_cost(spec: Path) -> float:
    """For the order of work (largest first, so that the two workers end together): the
    exporters' time grows with the number of ops, the files' with the weights (measured: a
    million parameters cost about as much as four ops)."""
    return len(compile_spec(spec).graph) + 4 * spec_cost(spec)[0] / 1e6


class Zoo:
    """The worker processes and their results, by spec."""

    def __init__(self, wanted: dict[Path, frozenset]):
        self.tmp = Path(tempfile.mkdtemp(prefix="archdsl-zoo-"))
        spawn = multiprocessing.get_context("spawn")  # fresh interpreters, whatever the parent holds
        tests_dir = str(Path(__file__).resolve().parent)
        self.workers = ProcessPoolExecutor(WORKERS, mp_context=spawn, initializer=init_worker, initargs=(tests_dir,))
        self.futures = {}
        for spec in sorted(wanted, key=_expected_cost, reverse=True):
            twins = _twin_candidates(spec) if _is_big(spec) else None
            self.futures[spec] = self.workers.submit(check_spec, str(spec), wanted[spec], str(self.tmp / spec.stem),
                                                     twins)
        self.results: dict[Path, dict] = {}

    def result(self, spec: Path) -> dict:
        if spec not in self.results:
            self.results[spec] = self.futures.pop(spec).result(timeout=RESULTS_TIMEOUT_S)
            shutil.rmtree(self.tmp / spec.stem, ignore_errors=True)
        return self.results[spec]

    def close(self) -> None:
        self.workers.shutdown(wait=True, cancel_futures=True)
        report = os.environ.get("ARCHDSL_DEPLOY_SECONDS")  # where to write each check's CPU seconds, by spec
        if report:
            Path(report).write_text(json.dumps({p.stem: r["seconds"] for p, r in self.results.items()}, indent=1))
        shutil.rmtree(self.tmp, ignore_errors=True)


def _wanted(session) -> dict[Path, frozenset]:
    """The checks each spec's selected tests ask for."""
    try:
        import onnxruntime  # noqa: F401
        has_ort = True
    except ImportError:
        has_ort = False
    wanted: dict[Path, set] = {}
    for item in session.items:
        check = CHECK_OF_TEST.get(getattr(item, "originalname", ""))
        if check and item.module.__name__ == __name__ and (check != "onnx" or has_ort):
            wanted.setdefault(item.callspec.params["spec"], set()).add(check)
    return {spec: frozenset(checks) for spec, checks in wanted.items()}


@pytest.fixture(scope="module")
def zoo(request):
    zoo = Zoo(_wanted(request.session))
    yield zoo
    zoo.close()


def _assert_passed(zoo: Zoo, spec: Path, check: str) -> None:
    result = zoo.result(spec)
    message = result["failures"].get(check)
    if message:
        pytest.fail(f"{spec.stem}: {message}", pytrace=False)
    if check in NEEDS_WEIGHTS and result["twin"]:
        pytest.skip(f"{spec.stem}: {spec_cost(spec)[0] / 1e6:.0f}M parameters, checked on the meta device; "
                    f"{check} runs on {Path(result['twin']).stem}, the same code at smaller widths")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_saved_modules_load_in_a_fresh_process(spec, zoo):
    _assert_passed(zoo, spec, "save")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_ejected_file_runs_without_archdsl(spec, zoo):
    _assert_passed(zoo, spec, "eject")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_jit_script(spec, zoo):
    _assert_passed(zoo, spec, "script")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_jit_trace_plain_and_optimized(spec, zoo):
    _assert_passed(zoo, spec, "trace")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_torch_export_plain_and_optimized(spec, zoo):
    _assert_passed(zoo, spec, "export")


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_onnx_matches_onnxruntime(spec, zoo):
    pytest.importorskip("onnxruntime")
    _assert_passed(zoo, spec, "onnx")


# ------------------------------------------------------------------------------ aux heads
@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_jit_script_with_auxiliary_heads(name):
    """A root forward that returns the heads' tuple in training and the logits in eval
    compiles (its return types are declared) and returns the same in both modes."""
    from deploy_checks import fill_random

    overrides = dict(aux_logits=True, dropout=0.0, **({"aux_dropout": 0.0} if name == "googlenet" else {}))
    # the smallest inputs the heads take (Inception v3's needs a 17x17 map: its own 299 px)
    model = archdsl.build(name, resolution=299 if name == "inception_v3" else 96, **overrides)
    fill_random(model)
    scripted = torch.jit.script(model)
    x = torch.randn(2, *model.archdsl_info["input_shape"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for training in (True, False):
            model.train(training), scripted.train(training)
            want, got = model(x), scripted(x)
            if training:
                assert isinstance(got, tuple) and len(got) == len(want) == (3 if name == "googlenet" else 2)
            else:
                assert isinstance(got, torch.Tensor)
                want, got = (want,), (got,)
            for a, b in zip(got, want, strict=True):
                assert (a - b).abs().max().item() <= 1e-4 * max(1.0, b.abs().max().item())


# ------------------------------------------------------------------------------ the weights
def test_random_weights_reach_every_element():
    """zoo_model's tensors start as uninitialised memory: the fill must write every element
    (tensors several random pools long included), or outputs are garbage."""
    from deploy_checks import _POOL_SIZE, fill_random

    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Conv2d(64, 128, 3), torch.nn.BatchNorm2d(128), torch.nn.Linear(2500, 1000))
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for t in model.state_dict().values():
            t.fill_(float("nan") if t.is_floating_point() else 7)
    fill_random(model)
    tensors = model.state_dict()
    assert tensors["2.weight"].numel() > 2 * _POOL_SIZE
    assert all(torch.isfinite(t).all() for t in tensors.values()) and tensors["1.num_batches_tracked"] == 0
    weight = tensors["0.weight"]
    assert len(torch.unique(weight)) > 0.99 * weight.numel()  # not a constant or a short cycle (float32 ties aside)
    assert ((tensors["1.running_var"] - 1).abs() <= 0.25 + 1e-6).all()  # reference.randomize's statistics
