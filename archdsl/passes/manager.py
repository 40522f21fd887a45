"""The pass manager: the inference pipeline as one list, every pass checked as it runs.

A pass is a function `Graph -> PassResult` (or `-> Graph`). It works on a copy, so the graph
it is given is never touched, and it says in its docstring when its rewrite is exact; where
that condition does not hold it leaves the graph alone. After each pass the manager lints
the graph (`Graph.lint`) and re-infers every shape (`check_shapes`), so a pass that breaks
the IR fails at once, by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

from ..analysis.shapes import check_shapes
from ..ir.graph import Graph


@dataclass
class PassResult:
    graph: Graph
    rewrites: list[str] = field(default_factory=list)  # one line per rewrite: "stem.bn1 -> stem.conv1"

    @property
    def changed(self) -> bool:
        return bool(self.rewrites)


Pass = Callable[[Graph], Union[PassResult, Graph]]


class PassError(RuntimeError):
    """A pass left a graph that fails the lint or the shape check."""


def run_passes(graph: Graph, passes: list[Pass]) -> tuple[Graph, dict[str, list[str]]]:
    """Run `passes` in order; returns the final graph and each pass's rewrites by pass name."""
    log: dict[str, list[str]] = {}
    for p in passes:
        result = p(graph)
        if isinstance(result, Graph):
            result = PassResult(result)
        try:
            result.graph.lint()
            check_shapes(result.graph)
        except Exception as e:  # noqa: BLE001 - re-raised with the pass named
            raise PassError(f"pass {p.__name__} broke the graph: {e}") from e
        log[p.__name__] = result.rewrites
        graph = result.graph
    return graph, log
