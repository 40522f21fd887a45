"""The zoo: the specs shipped inside the package (`archdsl/specs/`, `specs/` in a checkout),
found by name. No torch here; `list_models` compiles each spec's front end only."""
from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass
from pathlib import Path

SPECS_DIR = Path(__file__).resolve().parent / "specs"


def zoo_names() -> list[str]:
    """Every shipped model name, sorted."""
    return sorted(p.stem for p in SPECS_DIR.glob("*.arch"))


def zoo_path(name: str) -> Path | None:
    """The spec file of a shipped model, or None."""
    path = SPECS_DIR / f"{name}.arch"
    return path if name in zoo_names() else None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    params: int
    flops: int
    resolution: list[int]  # the input shape [C, H, W]
    reference: str  # the spec's first comment line: what it reproduces
    path: str

    def as_dict(self) -> dict:
        return asdict(self)


def _reference(path: Path) -> str:
    """The first sentence of the spec's leading comment, as one line."""
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#") or not line.strip("# "):
            break
        words.append(line.strip("# "))
    text = " ".join(words)
    end = text.find(". ")
    return text[: end + 1] if end >= 0 else text


def list_models(pattern: str = "*") -> list[ModelInfo]:
    """The shipped models whose name matches a shell pattern (`convnext*`), with their
    parameters, FLOPs, input shape and reference, computed by the front end (no torch)."""
    from .compiler import compile_spec

    out = []
    for name in zoo_names():
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        path = SPECS_DIR / f"{name}.arch"
        compiled = compile_spec(path)
        out.append(ModelInfo(name, compiled.params, compiled.totals.flops, compiled.input_shape,
                             _reference(path), str(path)))
    return out
