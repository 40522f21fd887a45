"""The front-end pipeline: spec -> program -> graph IR, checked. No torch here."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .analysis.expect import check_expectations
from .analysis.cost import Totals, totals
from .analysis.params import count_params
from .analysis.receptive_field import RF, final_feature_node, receptive_fields
from .analysis.shapes import check_shapes
from .elaborate import Elaborator, Expectation, Limits
from .errors import ArchLimitError, Diagnostic
from .frontend.loader import Loader, Program
from .ir.graph import Graph


@dataclass
class CompiledSpec:
    """A checked graph and what was learnt on the way."""

    graph: Graph
    program: Program
    expects: list[Expectation]
    params: int
    warnings: list[Diagnostic] = field(default_factory=list)
    rf: dict[int, RF] = field(default_factory=dict)  # receptive field of every node

    @cached_property
    def totals(self) -> Totals:
        return totals(self.graph)

    @property
    def final_rf(self) -> RF:
        """The receptive field of the last spatial feature map before global pooling."""
        return self.rf[final_feature_node(self.graph)]

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def input_shape(self) -> list[int]:
        return list(self.graph.node(self.graph.input).shape.dims)

    @property
    def output_shape(self) -> list[int]:
        return list(self.graph.node(self.graph.output).shape.dims)


def resolve_spec(spec: str | Path) -> Path:
    """A spec given by path or by zoo name, as the file to read. Never guesses spec text:
    that is passed as `text=`. A missing file, a folder or an unknown name is an error that
    names the closest zoo models."""
    from .errors import ArchImportError, did_you_mean
    from .zoo import zoo_names, zoo_path

    if not isinstance(spec, (str, Path)):
        raise TypeError(f"a spec is a path or a zoo model name, not {type(spec).__name__}; "
                        "pass spec source as text=...")
    if isinstance(spec, str):
        if "\n" in spec or "{" in spec:
            raise ArchImportError(f"no spec file or zoo model named {_clip(spec)}", None,
                                  "to compile spec source, pass it as text=...")
        path = Path(spec)
        if not spec.endswith(".arch") and "/" not in spec and zoo_path(spec) is not None:
            return zoo_path(spec)
    else:
        path = spec
    try:
        exists = path.exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        exists = False
    if exists:
        return path
    names = zoo_names()
    hint = did_you_mean(path.stem, names) or f"zoo models: {', '.join(names[:8])}, ... (archdsl list)"
    what = "spec file" if (isinstance(spec, Path) or spec.endswith(".arch") or "/" in spec) else "spec file or zoo model"
    raise ArchImportError(f"no {what} '{spec}'", None, hint)


def _clip(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")


def load_program(spec: str | Path | None = None, allow_outside_imports: bool = False, *,
                 text: str | None = None) -> Program:
    """The declarations a spec file (path or zoo name) or a spec `text` can see."""
    loader = Loader(allow_outside_imports=allow_outside_imports)
    if text is not None:
        if spec is not None:
            raise TypeError("pass either a spec (path or name) or text=..., not both")
        return loader.load_text(text)
    return loader.load_file(resolve_spec(spec))


def compile_spec(spec: str | Path | None = None, model: str | None = None,
                 overrides: dict[str, Any] | None = None, limits: Limits = Limits(),
                 allow_outside_imports: bool = False, *, text: str | None = None) -> CompiledSpec:
    """Parse, elaborate and check a spec: a path, a zoo model name (`"resnet50"`), or source
    given as `text=`. Raises `ArchDSLError` at the spec's position."""
    program = load_program(spec, allow_outside_imports, text=text)
    elab = Elaborator(program, limits)
    try:
        graph = elab.elaborate(model, overrides)
    except RecursionError:  # the limits should stop this first; never a traceback either way
        raise ArchLimitError("the spec nests too deeply to elaborate", None,
                             "reduce the nesting of blocks, sections and expressions") from None
    graph.lint()
    check_shapes(graph)
    compiled = CompiledSpec(graph, program, elab.expects, count_params(graph), elab.warnings)
    compiled.rf = receptive_fields(graph, compiled.warnings)
    check_expectations(compiled)
    return compiled
