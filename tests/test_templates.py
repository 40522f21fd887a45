"""Block templates (elaborate/templates.py): a repeated block call copied from the first one
gives exactly the graph, warnings and errors that elaborating it again gives."""
from __future__ import annotations

import pytest

from archdsl.compiler import compile_spec
from archdsl.elaborate import Limits
from archdsl.elaborate.builder import Elaborator
from archdsl.errors import ArchDSLError
from conftest import ROOT, SPECS


def _without_templates(monkeypatch):
    monkeypatch.setattr(Elaborator, "_instance", lambda self, decl, env, sub, x: self._body(decl.body, env, sub, x, True))


def snapshot(compiled):
    g = compiled.graph
    nodes = [(n.id, n.scope, n.op, n.attrs, g.inputs(n.id), n.shape, n.span) for n in g]
    return {"nodes": nodes, "scopes": list(g.scopes.items()), "calls": [(k, str(v), v.span) for k, v in g.calls.items()],
            "loop_items": list(g.loop_items.items()),
            "warnings": [w.render() for w in compiled.warnings], "params": compiled.params,
            "taps": list(g.taps.items()), "output": g.output, "aux": dict(g.aux_outputs)}


def both(monkeypatch, spec=None, **kw):
    with_templates = compile_spec(spec, **kw)
    with monkeypatch.context() as m:
        _without_templates(m)
        plain = compile_spec(spec, **kw)
    return snapshot(with_templates), snapshot(plain)


EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.arch") if p.stem != "broken_residual")


@pytest.mark.parametrize("spec", SPECS + EXAMPLES, ids=[p.stem for p in SPECS + EXAMPLES])
def test_the_graph_is_the_one_elaboration_builds(monkeypatch, spec):
    got, want = both(monkeypatch, spec)
    for part in want:
        assert got[part] == want[part], part


REPEATED_WARNING = """
block wide(c) {
  conv(c, k=7) -> relu
}
block twice(c) { wide(c) -> wide(c) }
model net {
  input [3, 4, 4]
  twice(8) x 3
  twice(8)
}
"""


def test_warnings_inside_repeats_keep_their_own_use_sites(monkeypatch):
    """A warning in a copied block quotes the copy's own chain of calls."""
    got, want = both(monkeypatch, text=REPEATED_WARNING)
    assert got["warnings"] == want["warnings"] and len(want["warnings"]) == 8


def test_the_template_is_keyed_on_arguments_and_input_shape(monkeypatch):
    text = """
block unit(c, s = 1) { conv(c, k=3, s=s) -> bn -> relu }
model net {
  input [3, 32, 32]
  unit(8) -> unit(8) -> unit(8, s=2) -> unit(8) -> unit(16) -> unit(16.0 // 1) -> unit(8)
}
"""
    got, want = both(monkeypatch, text=text)
    assert got == want
    shapes = [list(n[5].dims) for n in want["nodes"] if n[2] == "relu"]
    assert shapes == [[8, 32, 32], [8, 32, 32], [8, 16, 16], [8, 16, 16], [16, 16, 16], [16, 16, 16], [8, 16, 16]]


def test_a_copied_block_keeps_its_named_loops_items(monkeypatch):
    """`Graph.loop_items` (what `archdsl eject` names a loop item's arguments from) of a copied
    block are the copy's own."""
    text = """
block pyramid(c) {
  levels for i, w in [c, c * 2] { conv(w, k=3) -> relu }
}
model net {
  input [3, 8, 8]
  pyramid(4) x 3
}
"""
    got, want = both(monkeypatch, text=text)
    assert got == want
    assert [(k, v.args) for k, v in want["loop_items"]][:2] == [("blocks.0.levels.0", {"i": 0, "w": 4}),
                                                               ("blocks.0.levels.1", {"i": 1, "w": 8})]
    assert len(want["loop_items"]) == 6


UNITS = """
block unit(c) {
  for i in range(20) {
    y = i * 2
  }
  conv(c, k=3) -> bn -> relu
}
model net {
  input [3, 8, 8]
  unit(8) x 40
}
"""


@pytest.mark.parametrize("limit", [{"max_nodes": 40}, {"max_param_bytes": 4 * 2_000}, {"max_work": 500},
                                   {"max_iterations": 300}])
def test_a_limit_crossed_in_a_copy_is_reported_where_elaboration_reports_it(monkeypatch, limit):
    text = UNITS

    def error():
        with pytest.raises(ArchDSLError) as e:
            compile_spec(text=text, limits=Limits(**limit))
        return e.value.render() if hasattr(e.value, "render") else str(e.value)

    got = error()
    with monkeypatch.context() as m:
        _without_templates(m)
        want = error()
    assert got == want


# ---------------------------------------------------------------- properties
from hypothesis import given  # noqa: E402

from test_fuzz import FUZZ, mutated_specs, valid_specs  # noqa: E402


def outcome(text: str):
    """The graph a spec gives, or the error it reports."""
    try:
        return snapshot(compile_spec(text=text))
    except ArchDSLError as e:
        return e.render() if hasattr(e, "render") else str(e)


def _same_with_and_without_templates(text: str) -> None:
    got = outcome(text)
    with pytest.MonkeyPatch.context() as m:
        _without_templates(m)
        want = outcome(text)
    assert got == want


@FUZZ
@given(valid_specs())
def test_random_architectures_are_the_same_with_and_without_templates(text):
    _same_with_and_without_templates(text)


@FUZZ
@given(mutated_specs())
def test_mutated_shipped_specs_are_the_same_with_and_without_templates(text):
    """Broken specs too: the same error, at the same place, either way."""
    _same_with_and_without_templates(text)
