"""The deployment checks of one shipped spec, run in a worker process of test_deploy_zoo.py.

torch.export, the ONNX exporter, jit.trace and jit.script are single-threaded Python over the
model's ops, so the zoo is checked by two such workers side by side (one torch thread each),
and each spec is built once for all its checks. Each check's failure is recorded, not raised,
so that one broken check does not hide the others of the same spec.

The model: the shipped spec at 64 px (or the smallest of 96, 128 px its family takes, as
emit_support.small_model), batch-norm statistics and every other tensor random (so wrong
outputs show), in eval mode. Its tensors are made on the meta device and filled in place
from one random pool: the zoo holds billions of parameters, and torch's default
initialisation followed by a fresh randn per tensor (reference.randomize) costs more than
the exports. A spec over BIG_PARAMS is checked on the meta device (see check_spec).
"""
from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch

# the checks a worker can run; "onnx" converts the programs "export" makes
CHECKS = ("save", "eject", "script", "trace", "export", "onnx")
NEEDS_WEIGHTS = ("trace", "onnx")  # neither runs on the meta device (see check_spec)
TOLERANCE = 1e-4  # of the reference output's scale (at least 1), as archdsl.export.check_onnx
SIZES = (64, 96, 128)  # the smallest input the family takes (LeViT and MobileViT have steps)
# Over this many parameters (the ConvNeXt L, XL and V2 L, H specs, 198M to 660M), the weights
# are most of a spec's cost: with them, convnext_large took 60 s of CPU, convnext_xlarge 100 s
# and 10.5 GB at its peak (measured on this suite's 2-core machine), and convnextv2_huge is
# twice its size; the eight together would add about 800 s to the rest of the zoo's 1400.
# These are checked on the meta device, and their numbers by a code-identical sibling.
BIG_PARAMS = 150_000_000
# Above this many parameters the FX forms are checked (state_dict keys, outputs) but not
# pickled: torch.fx's pickling is the same code at any size, and at VGG's 138M parameters the
# two extra files were a third of the spec's time.
FX_PICKLE_PARAMS = 40_000_000
_POOL_SIZE = 1_000_003  # prime: rows of any layer see different stretches of the pool
_LOADER = Path(__file__).with_name("deploy_load.py")


def init_worker(tests_dir: str) -> None:
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    torch.set_num_threads(1)  # two workers share the two cores
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # the ONNX exporter's notes on torchvision ops it skips
    _cache_torchlib_ops()


def _cache_torchlib_ops() -> None:
    """torch.onnx.export makes its registry of ONNX functions again on every call, parsing the
    source of each of onnxscript's ~500 torchlib functions (about a second, measured): a
    worker converts a hundred programs, so it reads them once. Only the time changes; where
    torch's internals differ from 2.13's, nothing is cached."""
    import functools

    try:  # importing onnxscript here: without the onnx extra, nothing to cache
        from torch.onnx._internal.exporter import _registration

        apis = getattr(_registration, "onnxscript_apis", None)
        ops = getattr(apis, "get_torchlib_ops", None)
    except ImportError:
        return
    if callable(ops):
        apis.get_torchlib_ops = functools.lru_cache(maxsize=None)(ops)


# ------------------------------------------------------------------------------ the model
def build_small(spec: str, device: str):
    import archdsl
    from archdsl.errors import ArchDSLError

    for size in SIZES:
        try:
            return archdsl.build(spec, resolution=size, device=device)
        except ArchDSLError:
            continue
    return archdsl.build(spec, device=device)


@torch.no_grad()
def fill_random(model: torch.nn.Module, seed: int = 0) -> None:
    """Every state_dict tensor random, by the rules of reference.randomize: norm statistics
    near (0, 1), norm weights near 1, other vectors near 0, matrices and kernels scaled by
    their fan-in, attention bias tables at std 1; values from one pool of random numbers,
    read from a different place by each tensor."""
    g = torch.Generator().manual_seed(seed + 1)
    pool = torch.randn(_POOL_SIZE, generator=g)
    norm_types = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)
    norm_weights = {f"{m}.weight" if m else "weight" for m, mod in model.named_modules() if isinstance(mod, norm_types)}
    start = 0
    for name, t in model.state_dict().items():
        if not t.is_floating_point():
            t.zero_()  # num_batches_tracked
            continue
        flat, i = t.view(-1), 0
        while i < flat.numel():  # the pool, cyclically from `start`
            k = min(_POOL_SIZE - start, flat.numel() - i)
            flat[i:i + k].copy_(pool[start:start + k])
            i, start = i + k, (start + k) % _POOL_SIZE
        if name.endswith("running_var"):  # uniform in [0.75, 1.25]: the normal's CDF, scaled
            t.div_(2 ** 0.5).erf_().add_(1).mul_(0.25).add_(0.75)
        elif name.endswith("running_mean"):
            t.mul_(0.1)
        elif "attention_biases" in name:
            pass  # std 1
        elif t.ndim >= 2:
            t.div_(t[0].numel() ** 0.5)
        else:
            base = 1.0 if name.endswith("weight") and ("norm" in name or name in norm_weights) else 0.0
            t.mul_(0.1).add_(base)


def zoo_model(spec: str) -> torch.nn.Module:
    """The spec at a small size with random tensors, in eval mode (see the module docstring)."""
    model = build_small(spec, "meta")
    if {n for n, _ in model.named_buffers()} <= set(model.state_dict()):
        model = model.to_empty(device="cpu")
    else:  # buffers outside the state_dict (LeViT's bias indices) are made by the build
        model = build_small(spec, "cpu")
    fill_random(model)
    return model.eval()


def code_signature(model: torch.nn.Module) -> tuple:
    """What decides the code a model runs: its module tree with each module's class and, for
    the generated ones, their forward source. Widths, eps and other constructor numbers
    are left out."""
    return tuple((name, "root" if name == "" else type(sub).__name__, getattr(type(sub), "archdsl_source", None))
                 for name, sub in model.named_modules())


# ------------------------------------------------------------------------------ the checks
def _max_rel_diff(got, want) -> float:
    if isinstance(want, (list, tuple)):
        return max(_max_rel_diff(a, b) for a, b in zip(got, want, strict=True))
    return (got - want).abs().max().item() / max(1.0, want.abs().max().item())


def _close(got, want, what: str) -> None:
    """Equal outputs (to TOLERANCE); on the meta device, equal shapes."""
    if isinstance(want, torch.Tensor) and want.is_meta:
        if got.shape != want.shape:
            raise AssertionError(f"{what}: output shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        return
    diff = _max_rel_diff(got, want)
    if not diff <= TOLERANCE:
        raise AssertionError(f"{what}: max |diff| {diff:.2e} of the output's scale (tolerance {TOLERANCE:g})")


class _Recorder:
    """Runs the checks of one spec, recording the first failure of each."""

    def __init__(self, wanted: frozenset):
        self.wanted = wanted
        self.failures: dict[str, str] = {}
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def check(self, name: str, what: str):
        t = time.process_time()  # the worker is single-threaded: CPU seconds, whatever else runs
        try:
            yield
        except Exception:
            self.failures.setdefault(name, f"{what}:\n{traceback.format_exc()[-4000:]}")
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.process_time() - t

    def __contains__(self, name: str) -> bool:
        return name in self.wanted and name not in self.failures


class _Loader:
    """A process of deploy_load.py, kept for the worker's life: without `args`, it loads the
    pickled modules and runs them, and never builds one, so every generated class it uses is
    made from what a file holds; with `--ejected`, it runs ejected files with archdsl blocked."""

    def __init__(self, *args: str):
        self.args = list(args)
        self.proc = None

    def run(self, requests: list) -> list[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, str(_LOADER), *self.args], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write(json.dumps(requests) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the loader process ended (exit code {self.proc.wait()})")
        return json.loads(line)


_loader = _Loader()  # one of each per worker
_ejected_loader = _Loader("--ejected")


def repeated_items(model: torch.nn.Module) -> list[str]:
    """The numbered containers (`stages.1.blocks`) holding three items of one class in a row:
    where the spec repeats a call, so the ejected file must loop."""
    found = []
    for name, module in model.named_modules():
        items = list(module.named_children())
        if len(items) < 3 or not all(k.isdigit() for k, _ in items):
            continue
        kinds = [type(m) for _, m in items]
        if any(kinds[i] is kinds[i + 1] is kinds[i + 2] for i in range(len(kinds) - 2)):
            found.append(name)
    return found


def _eject(module, x, want, out: Path, form: str) -> None:
    """The ejected file, imported where archdsl cannot be, loads the module's state_dict and
    gives its outputs (on the meta device, builds and gives the output shape); it loops where
    the spec repeats."""
    from archdsl.emit.eject import eject_source

    source = eject_source(module)
    loops = repeated_items(module)
    if loops and not re.search(r"\bfor \w", source):
        raise AssertionError(f"ejected {form}: no loop, where the spec repeats ({', '.join(loops[:3])})")
    path = out / f"ejected_{form}.py"
    path.write_text(source)
    io = out / f"ejected_{form}.io"
    torch.save({"state": module.state_dict(), "x": x, "y": want}, io)
    (answer,) = _ejected_loader.run([{"file": str(path), "root": type(module).__name__, "io": str(io)}])
    if answer != "ok":
        raise AssertionError(f"ejected {form}: {answer}")
    path.unlink()
    io.unlink()


def _export_and_onnx(rec: _Recorder, form: str, module, x, x3, want3, out: Path) -> None:
    from archdsl.export import check_onnx, export_program

    if "export" not in rec and "onnx" not in rec:
        return
    program = None
    with rec.check("export", f"torch.export {form}"):
        program = export_program(module, x)  # dynamic batch, as `archdsl export -o x.pt2`
        with torch.no_grad():
            _close(program.module()(x3), want3, f"torch.export {form}, ep.module() on another batch size")
    if "onnx" in rec:
        with rec.check("onnx", f"ONNX {form}"):
            if program is None:
                raise AssertionError(f"no program to convert: {rec.failures.get('export', '')}")
            path = out / f"{form}.onnx"
            with torch.no_grad():  # as archdsl.export.save_onnx, from the program above
                onnx_program = torch.onnx.export(program, dynamo=True, input_names=["x"], output_names=["logits"],
                                                 verbose=False)
            onnx_program.save(str(path), external_data=True)  # the weights beside: faster to write and load
            del onnx_program
            check = check_onnx(module, path)  # onnxruntime on a batch of 3, as `archdsl export`
            if not check.ok:
                raise AssertionError(str(check))
        for f in out.glob(f"{form}.onnx*"):
            f.unlink()


def _save(module, x, path: Path) -> str:
    with torch.no_grad():
        torch.save({"x": x, "y": module(x)}, str(path) + ".io")
    torch.save(module, path)
    return str(path)


def _one_form(rec: _Recorder, form: str, module, x, x3, want, want3, out: Path, model_class: str) -> None:
    import archdsl

    _export_and_onnx(rec, form, module, x, x3, want3, out)
    if "script" in rec and form == "plain":  # the optimized form's fused layers are not scriptable
        with rec.check("script", "jit.script"), torch.no_grad():
            _close(torch.jit.script(module)(x), want, "jit.script")
    if "eject" in rec:
        with rec.check("eject", f"eject {form}"):
            _eject(module, x, want, out, form)
    if "trace" in rec:
        with rec.check("trace", f"jit.trace {form}"), torch.no_grad():
            _close(torch.jit.trace(module, x, check_trace=False)(x), want, f"jit.trace {form}")
    if "save" in rec:
        with rec.check("save", f"torch.save {form}"):
            saved = [_save(module, x, out / f"{form}.pt")]
            fx = archdsl.emit_fx(module)
            if set(fx.state_dict()) != set(module.state_dict()):
                raise AssertionError(f"emit_fx {form}: state_dict keys differ from the module's")
            with torch.no_grad():
                _close(fx(x), want, f"emit_fx {form}")
            if sum(p.numel() for p in module.parameters()) <= FX_PICKLE_PARAMS:
                saved.append(_save(fx, x, out / f"fx_{form}.pt"))
            del fx
            names = _loader.run(saved)
            for f in out.glob("*.pt*"):
                f.unlink()
            bad = [n for n in names if n.startswith("FAIL")]
            if bad:
                raise AssertionError("\n".join(bad))
            if names[0] != model_class:
                raise AssertionError(f"the {form} module loads as {names[0]}, not {model_class}")


def _find_twin(model, candidates: list[str]) -> str | None:
    """The first candidate whose code is the model's (code_signature)."""
    sig = code_signature(model)
    for cand in candidates:
        if code_signature(build_small(cand, "meta")) == sig:
            return cand
    return None


def check_spec(spec: str, wanted: frozenset, out_dir: str, twin_candidates: list[str] | None = None) -> dict:
    """Run the `wanted` checks (of CHECKS) on `spec`; returns the failures by check (with
    their tracebacks) and CPU seconds by check.

    With `twin_candidates` (a spec over BIG_PARAMS) the model stays on the meta device:
    export, script and the save round trip run on it and compare output shapes, and the
    checks that need weights (NEEDS_WEIGHTS) are left to its twin, the first candidate whose
    code is the same (code_signature): returned as "twin", and a failure if there is none."""
    import archdsl
    from archdsl.emit.torch_module import camel

    rec = _Recorder(wanted)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    on_meta = twin_candidates is not None
    result = {"failures": rec.failures, "seconds": rec.seconds, "twin": None}
    with rec.check("build", "building the model"):
        model = build_small(spec, "meta").eval() if on_meta else zoo_model(spec)
        shape, device = model.archdsl_info["input_shape"], "meta" if on_meta else "cpu"
        x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0)).to(device)
        x3 = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1)).to(device)
        with torch.no_grad():
            want, want3 = model(x), model(x3)
        model_class = camel(model.archdsl_info["model"])
    if "build" in rec.failures:
        result["failures"] = {c: rec.failures["build"] for c in wanted}
        return result
    if on_meta:
        rec.wanted = wanted - set(NEEDS_WEIGHTS)
        with rec.check("twin", "a code-identical spec under BIG_PARAMS"):
            result["twin"] = _find_twin(model, twin_candidates)
            if result["twin"] is None:
                raise AssertionError(f"none of {twin_candidates} has the same code: trace and ONNX are not checked")
        for c in wanted & set(NEEDS_WEIGHTS):
            if "twin" in rec.failures:
                rec.failures[c] = rec.failures["twin"]
    _one_form(rec, "plain", model, x, x3, want, want3, out, model_class)
    with rec.check("optimize", "archdsl.optimize"), torch.no_grad():
        opt = archdsl.optimize(model)
        _close(opt(x), want, "optimized against plain")
    del model
    gc.collect()
    if "optimize" in rec.failures:  # no optimized form to check: each check fails with it
        result["failures"] = {c: rec.failures.get(c, rec.failures["optimize"]) for c in wanted}
        return result
    # the optimized form against the plain form's outputs
    _one_form(rec, "optimized", opt, x, x3, want, want3, out, model_class)
    del opt
    gc.collect()
    return result
