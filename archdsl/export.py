"""Models leaving archdsl: ONNX (checked with onnxruntime) and torch.export programs (.pt2).

Both are exported with a dynamic batch dimension. Files are written all or nothing: to a
temporary file in the target's folder, renamed over the target once complete.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")
ONNX_INSTALL_HINT = "pip install 'archdsl[onnx]' (onnx, onnxruntime and onnxscript)"
MAX_BATCH = 1 << 16


class MissingDependency(RuntimeError):
    """An optional package (the `onnx` extra) is not installed; the message says what to install."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary path next to `path`, renamed over it when the block succeeds (removed if not)."""
    target = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.tmp-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def example_input(module: torch.nn.Module, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A random batch of the module's input shape (`archdsl_info["input_shape"]`)."""
    shape = module.archdsl_info["input_shape"]
    param = next(module.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def dynamic_batch() -> dict:
    """torch.export's dynamic_shapes for a model's one input: the batch dimension is free."""
    return {"x": {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}}


def export_program(module: torch.nn.Module, x: torch.Tensor | None = None):
    """`torch.export.export` of an archdsl module (plain or optimized), dynamic batch."""
    x = example_input(module) if x is None else x
    return torch.export.export(module, (x,), dynamic_shapes=dynamic_batch())


def save_program(module: torch.nn.Module, path: str | os.PathLike) -> None:
    """Write the torch.export program of `module` as a .pt2 file (`torch.export.load` reads it)."""
    program = export_program(module)
    with atomic_path(path) as tmp:
        torch.export.save(program, tmp)


def require_onnx() -> None:
    missing = []
    for name in ONNX_PACKAGES:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingDependency(f"ONNX export needs {', '.join(missing)}: {ONNX_INSTALL_HINT}")


@dataclass
class OnnxCheck:
    """onnxruntime's outputs against the module's on one random batch."""

    batch: int
    max_diff: float
    scale: float  # the largest |logit|, at least 1
    tolerance: float  # relative to `scale`

    @property
    def ok(self) -> bool:
        return self.max_diff <= self.tolerance * self.scale

    def __str__(self) -> str:
        verdict = "matches" if self.ok else "DOES NOT match"
        return (f"onnxruntime {verdict} PyTorch on a random batch of {self.batch}: max |diff| "
                f"{self.max_diff:.2e} (logits scale {self.scale:.2f}, tolerance {self.tolerance:g} of it)")


def save_onnx(module: torch.nn.Module, path: str | os.PathLike, opset: int | None = None,
              tolerance: float = 1e-4) -> OnnxCheck:
    """Export `module` to ONNX (`torch.onnx.export(dynamo=True)`, dynamic batch), then run the
    file with onnxruntime on a random batch of a size other than the export's and compare with
    the module. Raises `MissingDependency` without the `onnx` extra; the file is written
    whatever the check says (the returned `OnnxCheck` says it)."""
    require_onnx()
    module = module.eval()
    x = example_input(module, batch=2)
    kwargs = {} if opset is None else {"opset_version": opset}
    with torch.no_grad():
        program = torch.onnx.export(module, (x,), dynamo=True, dynamic_shapes=dynamic_batch(),
                                    input_names=["x"], output_names=["logits"], verbose=False, **kwargs)
    with atomic_path(path) as tmp:
        program.save(tmp)
    return check_onnx(module, path, tolerance=tolerance)


def check_onnx(module: torch.nn.Module, path: str | os.PathLike, batch: int = 3, tolerance: float = 1e-4,
               seed: int = 1) -> OnnxCheck:
    """onnxruntime on the file at `path` against `module` on a random batch."""
    import onnxruntime as ort

    x = example_input(module, batch=batch, seed=seed).float()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        want = module(x)
    diff = (torch.from_numpy(got) - want).abs().max().item()
    return OnnxCheck(batch, diff, max(1.0, want.abs().max().item()), tolerance)


__all__ = ["MissingDependency", "OnnxCheck", "atomic_path", "check_onnx", "dynamic_batch", "example_input",
           "export_program", "require_onnx", "save_onnx", "save_program"]
