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


def is_spec_path(spec: str | Path) -> bool:
    if isinstance(spec, Path):
        return True
    if "\n" in spec or "{" in spec:
        return False
    try:
        return spec.endswith(".arch") or Path(spec).is_file()
    except OSError:  # text too long to be a file name
        return False


def load_program(spec: str | Path, allow_outside_imports: bool = False) -> Program:
    """A spec file's path, or spec source text, to the declarations it can see."""
    loader = Loader(allow_outside_imports=allow_outside_imports)
    if is_spec_path(spec):
        return loader.load_file(spec)
    return loader.load_text(str(spec))


def compile_spec(spec: str | Path, model: str | None = None, overrides: dict[str, Any] | None = None,
                 limits: Limits = Limits(), allow_outside_imports: bool = False) -> CompiledSpec:
    """Parse, elaborate and check a spec; raises `ArchDSLError` at the spec's position."""
    program = load_program(spec, allow_outside_imports)
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
