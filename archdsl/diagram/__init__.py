"""Architecture diagrams from the checked IR: `archdsl viz` and `archdsl.viz(spec, depth=2)`.

Everything comes from the compiled spec (shapes, parameters, FLOPs, receptive fields are
static analyses): no forward pass, no torch. Graphviz lays the drawing out: its `dot` program
for .svg/.png/.pdf, and for the .html page Graphviz compiled to WebAssembly (Viz.js, vendored
in `vendor/`), in the browser, for whichever scopes the reader opens.

    g = archdsl.viz("specs/resnet50.arch", depth=2)   # a graphviz.Digraph: shows inline in Jupyter

Modules: `scopes` (the scope tree, which scopes open, `x N` folding), `view` (what one
drawing shows), `labels` and `scope_words` (words and colours), `pieces` (the dot text of
every item, edge and frame a drawing can hold), `dot` (one drawing assembled from the
pieces), `html` (the clickable page: the pieces, `page.js` and Viz.js), `output` (formats by
file suffix, atomic writes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .output import FORMATS, DotNotFound, render, write

__all__ = ["viz", "render", "write", "FORMATS", "DotNotFound", "drawing"]


def drawing(spec: Any = None, *, text: str | None = None, depth: int | None = 2, expand: list[str] = (),
            model: str | None = None, overrides: dict[str, Any] | None = None,
            allow_outside_imports: bool = False):
    """(facts, opened set) for a spec: a path, a zoo name, an already compiled spec, or `text=`.

    Raises `ArchDSLError` for a bad spec (the same errors as `archdsl check`) and
    `ValueError` naming an `expand` scope the model does not have.
    """
    from ..compiler import CompiledSpec, compile_spec
    from .pieces import Facts
    from .scopes import open_scopes

    if isinstance(spec, CompiledSpec):
        compiled = spec
    else:
        compiled = compile_spec(spec, model, overrides, allow_outside_imports=allow_outside_imports, text=text)
    facts = Facts(compiled)
    try:
        opened = open_scopes(facts.tree, depth, list(expand))
    except ValueError as e:
        known = ", ".join(facts.tree.scopes()[:12])
        raise ValueError(f"{compiled.name} has no scope {e.args[0]!r} (scopes: {known}, ...)") from None
    return facts, opened


def viz(spec: str | Path | Any = None, depth: int | None = 2, expand: list[str] = (), rankdir: str = "TB", *,
        text: str | None = None, model: str | None = None, **overrides: Any):
    """The diagram of a spec as a `graphviz.Digraph` (rendered inline by Jupyter).

    Args:
        spec: path of an .arch file, a zoo model name (`"resnet50"`), or a `CompiledSpec`.
        depth: scopes deeper than this are drawn closed, one node each (1: stem, stages, head;
            None: every op).
        expand: scopes to open regardless of depth (`"stages.2"`), with their ancestors.
        rankdir: "TB" (top to bottom) or "LR".
        model: which model of the file, when it declares several.
        text: spec source text instead of `spec`.
        **overrides: family parameters to rebind (`classes=10`).

    Returns:
        The `graphviz.Digraph`; `.source` is the deterministic dot text, `.pipe(format="svg")`
        renders it (needs graphviz's `dot` program).
    """
    from .dot import draw
    from .view import build_view

    facts, opened = drawing(spec, text=text, depth=depth, expand=expand, model=model, overrides=overrides or None)
    return draw(facts, build_view(facts.graph, facts.tree, opened), rankdir)
