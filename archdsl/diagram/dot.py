"""A `View` to a graphviz `Digraph`: the items in the frames (clusters) of the open scopes
that hold them, then the edges, each written from the spec's pieces (`pieces.py`).

The same assembly runs in the `.html` page (`page.js`: drawingText) on the same pieces, so a
drawing there is this text for the same open scopes; tests/test_viz_browser.py checks that.
The text is deterministic: items, frames and edges are written in the graph's topological
order, and nothing depends on a dict's or a set's iteration order that a run could change.
"""
from __future__ import annotations

import graphviz

from .pieces import Facts
from .view import Edge, Item, View

__all__ = ["draw", "body_lines", "edge_attrs"]


def draw(facts: Facts, view: View, rankdir: str = "TB") -> graphviz.Digraph:
    """The graphviz drawing of one view."""
    dot = facts.digraph(rankdir)
    dot.body.extend(body_lines(facts, view))
    return dot


def body_lines(facts: Facts, view: View) -> list[str]:
    """The drawing's statements, each a line of dot text."""
    by_frame: dict[str, list[Item]] = {}
    for item in view.items.values():
        by_frame.setdefault(item.frame, []).append(item)
    child_frames: dict[str, list[str]] = {}
    for f in view.frames():
        child_frames.setdefault(f.rsplit(".", 1)[0] if "." in f else "", []).append(f)
    lines: list[str] = []

    def fill(frame: str, depth: int) -> None:
        tabs = "\t" * depth
        for item in by_frame.get(frame, []):
            lines.append(f"{tabs}{facts.statement(item)}\n")
        for sub in child_frames.get(frame, []):
            inner = sub  # a frame holding nothing but one frame is drawn once, named for both
            while not by_frame.get(inner) and len(child_frames.get(inner, [])) == 1:
                inner = child_frames[inner][0]
            alone = by_frame.get(inner, [])
            if len(alone) == 1 and alone[0].kind == "op" and not child_frames.get(inner):  # a frame around one op
                fill(inner, depth)  # says nothing the box does not: the box alone (a closed scope or a
                continue  # fold keeps its frame: the frame's title is where the page closes the scope
            lines.append(f"{tabs}{facts.frame(sub).head}\n")
            lines.append(f"{tabs}\t{facts.frame_attrs(sub, inner)}\n")
            fill(inner, depth + 1)
            lines.append(f"{tabs}}}\n")

    fill("", 1)
    for e in view.edges:
        lines.append(f"\t{facts.edge_id(e.src)} -> {facts.edge_id(e.dst)}{edge_attrs(facts, view, e)}\n")
    return lines


def edge_attrs(facts: Facts, view: View, e: Edge) -> str:
    """An edge's attributes: into the output terminal, into an op itself (its argument's
    role), or into a closed scope or fold (the shape alone)."""
    if e.user is None:
        return facts.output_edge_attrs(e.value)
    if view.items[e.dst].kind == "op":
        return facts.op_edge_attrs(e.value, e.user, e.slot)
    return facts.value_attrs(e.value)
