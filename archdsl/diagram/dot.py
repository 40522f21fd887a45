"""A `View` to a graphviz `Digraph`: nodes with their labels, colours and tooltips, frames
(clusters) for open scopes, edges labelled with the shapes they carry.

The text is deterministic: nodes, frames and edges are written in the graph's topological
order, every figure is formatted the same way on every machine, and nothing depends on a
dict's or a set's iteration order that a run could change. Graphviz element ids (`id=`)
name what each drawn thing stands for, for the HTML page: `n:<key>` nodes, `c:<scope>` frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import graphviz

from ..analysis.cost import NodeCost, node_costs
from ..errors import Diagnostic, source_line
from . import labels as L
from .scopes import Run, ScopeTree
from .view import OUTPUT, Item, View, scope_outputs

if TYPE_CHECKING:
    from ..compiler import CompiledSpec

_FONT = "Helvetica"


@dataclass
class Facts:
    """What every drawing of one compiled spec shares: costs, the scope tree, warnings by node."""

    compiled: "CompiledSpec"
    tree: ScopeTree = field(init=False)
    node_lines: dict[tuple[str, str], str] = field(default_factory=dict)  # drawn item -> its dot statement

    def __post_init__(self):
        self.tree = ScopeTree.of(self.compiled.graph)

    @property
    def graph(self):
        return self.compiled.graph

    @cached_property
    def costs(self) -> dict[int, NodeCost]:
        return node_costs(self.graph)

    @cached_property
    def warnings_at(self) -> tuple[dict[int, list[Diagnostic]], list[Diagnostic]]:
        """Warnings by the node they are about (same spec position, else same line), and
        those no node matches (drawn under the title)."""
        by_pos, by_line = {}, {}
        for node in self.graph:
            if node.span is not None:
                by_pos.setdefault((node.span.file, node.span.line, node.span.col), node.id)
                by_line.setdefault((node.span.file, node.span.line), node.id)
        at, loose = {}, []
        for w in self.compiled.warnings:
            s = w.span
            nid = None if s is None else by_pos.get((s.file, s.line, s.col), by_line.get((s.file, s.line)))
            if nid is None:
                loose.append(w)
            else:
                at.setdefault(nid, []).append(w)
        return at, loose

    @cached_property
    def taps_at(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for name, tap in getattr(self.graph, "taps", {}).items():
            out.setdefault(tap.node, []).append(name)
        return out


def _esc(text: str) -> str:
    """Text for a dot escString: backslashes doubled, lines joined by `\\n`."""
    return "\\n".join(line.replace("\\", "\\\\") for line in text.split("\n"))


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _where(node) -> str:
    """`file:line` and the spec text of the line that made the node."""
    if node.span is None:
        return node.scope
    line = source_line(node.span.file, node.span.line)
    text = f"{node.scope}\n{node.span.file}:{node.span.line}"
    return text + (f"\n{line.strip()}" if line else "")


def draw(facts: Facts, view: View, rankdir: str = "TB") -> graphviz.Digraph:
    """The graphviz drawing of one view."""
    c = facts.compiled
    t = c.totals
    title = (f"{c.name}: {L.count(t.params)} params · {L.human(t.flops)} FLOPs · "
             f"{L.shape_text(c.graph.node(c.graph.input).shape)} -> {L.shape_text(c.graph.node(c.graph.output).shape)}")
    loose = facts.warnings_at[1]
    title += "".join(f"\n⚠ {w.span}: {w.message}" if w.span else f"\n⚠ {w.message}" for w in loose)
    dot = graphviz.Digraph(c.name, graph_attr={
        "rankdir": rankdir, "label": _esc(title), "labelloc": "t", "fontname": _FONT, "fontsize": "14",
        "nodesep": "0.25", "ranksep": "0.3", "newrank": "true"},
        node_attr={"fontname": _FONT, "fontsize": "10", "shape": "box", "style": "rounded,filled",
                   "margin": "0.08,0.04", "height": "0.3"},
        edge_attr={"fontname": _FONT, "fontsize": "8", "arrowsize": "0.6"})
    by_frame: dict[str, list[Item]] = {}
    for item in view.items.values():
        by_frame.setdefault(item.frame, []).append(item)
    frames = view.frames()
    child_frames: dict[str, list[str]] = {}
    for f in frames:
        child_frames.setdefault(f.rsplit(".", 1)[0] if "." in f else "", []).append(f)

    def fill(g: graphviz.Digraph, frame: str) -> None:
        for item in by_frame.get(frame, []):
            _node(g, facts, view, item)
        for sub in child_frames.get(frame, []):
            inner = sub  # a frame holding nothing but one frame is drawn once, named for both
            while not by_frame.get(inner) and len(child_frames.get(inner, [])) == 1:
                inner = child_frames[inner][0]
            if len(by_frame.get(inner, [])) == 1 and not child_frames.get(inner):  # a frame around one box
                fill(g, inner)  # says nothing the box does not: the box alone
                continue
            name = sub if inner == sub else f"{sub} > {inner[len(sub) + 1:]}"
            with g.subgraph(name=f"cluster_{sub}") as cluster:
                cluster.attr(label=_esc(f"{name} ({facts.tree.kind(inner)})"), id=f"c:{sub}", style="rounded,dashed",
                             color="#999999", fontsize="10", labeljust="l", tooltip=_esc(_frame_tip(facts, sub)))
                fill(cluster, inner)

    fill(dot, "")
    for e in view.edges:
        _edge(dot, facts, view, e)
    return dot


def _frame_tip(facts: Facts, scope: str) -> str:
    nodes = facts.tree.nodes_under[scope]
    params = sum(facts.costs[n].params for n in nodes)
    flops = sum(facts.costs[n].flops for n in nodes)
    return f"{scope} ({facts.tree.kind(scope)})\n{L.figures(params, flops)}\nclick the frame's title to close it"


def _node(g: graphviz.Digraph, facts: Facts, view: View, item: Item) -> None:
    """Draw one item; what an item looks like does not depend on the rest of the drawing, so
    the page's many drawings of one spec compute it once."""
    key = (item.key, item.kind)
    if key not in facts.node_lines:
        scratch = graphviz.Digraph()
        scratch.node(item.key, **_node_attrs(facts, item))
        facts.node_lines[key] = scratch.body[-1]
    g.body.append(facts.node_lines[key])


def _node_attrs(facts: Facts, item: Item) -> dict[str, str]:
    graph = facts.graph
    attrs: dict[str, str] = {"id": f"n:{item.key}"}
    if item.kind == "output":
        return dict(label="output", shape="oval", style="filled", fillcolor="#ffffff", **attrs)
    warned = [w for n in item.nodes for w in facts.warnings_at[0].get(n, [])]
    taps = [name for n in item.nodes for name in facts.taps_at.get(n, [])]
    if item.kind == "op":
        node = graph.node(item.nodes[0])
        lines = [L.op_label(graph, node.id)] if node.op != "input" else ["input"]
        tip = _where(node)
        attrs["fillcolor"] = L.colour(node.op)
        if node.op in L.MERGE_SHAPES:
            attrs["shape"] = L.MERGE_SHAPES[node.op][0]
            attrs["style"] = "filled"
            if attrs["shape"] == "circle":
                attrs.update(width="0.3", fixedsize="false", margin="0.02")
        params = facts.costs[node.id].params
        if params:
            tip += f"\n{L.count(params)} params"
    else:
        lines, tip = _closed_lines(facts, item)
        attrs["fillcolor"] = L.SCOPE_COLOUR
        attrs["shape"] = "box3d" if item.kind == "fold" else "box"
        attrs["style"] = "filled" if item.kind == "fold" else "rounded,filled,bold"
    lines += [f"tap: {name}" for name in taps]
    if taps:
        attrs["peripheries"] = "2"
    if warned:
        attrs.update(color=L.WARNING_COLOUR, penwidth="2", fontcolor=L.WARNING_COLOUR)
        attrs["xlabel"] = _esc("\n".join(f"⚠ {_clip(w.message.split(':')[0], 48)}" for w in warned))
        tip += "".join(f"\nwarning: {w.message}" for w in warned)
    return dict(label=_esc("\n".join(lines)), tooltip=_esc(tip), **attrs)


def _closed_lines(facts: Facts, item: Item) -> tuple[list[str], str]:
    """A closed scope or a folded run: name, contents, parameters and FLOPs, output RF."""
    graph, tree = facts.graph, facts.tree
    params = sum(facts.costs[n].params for n in item.nodes)
    flops = sum(facts.costs[n].flops for n in item.nodes)
    outs = scope_outputs(tree, item.nodes)
    last = outs[-1] if outs else item.nodes[-1]
    rf = facts.compiled.rf.get(last)
    if item.kind == "fold":
        run = item.run
        what = _times(_part(tree, run.items[0]), len(run))
        lines = [item.key, what] + [f"first: {d}" for d in first_differences(facts, run)]
    else:
        lines = [item.key, contents(tree, item.key) or tree.kind(item.key)]
    lines.append(L.figures(params, flops))
    if rf is not None:
        lines.append(L.rf_text(rf))
    first = graph.node(item.nodes[0])
    tip = "\n".join([lines[0], _where(first).split("\n", 1)[-1], *lines[1:], "click to open"])
    return lines, tip


def contents(tree: ScopeTree, scope: str, limit: int = 3, sep: str = ", ") -> str | None:
    """What a scope holds, in a few words: `bottleneck x 3`, `downsample, convnext x 3`,
    `(attention + mlp) x 4` (an item's parts joined by `+`)."""
    runs = tree.runs.get(scope)
    if runs:
        parts = [_times(_part(tree, r.items[0]), len(r)) for r in runs]
    else:
        kids = tree.children.get(scope, [])
        if len(kids) == 1 and not tree.direct_nodes(scope):
            return contents(tree, kids[0], limit, sep) if not tree.is_block(kids[0]) else tree.kind(kids[0])
        if tree.is_block(scope) or not kids:
            return tree.kind(scope)
        parts = [_part(tree, k) for k in kids]
    parts = _grouped(parts)
    if len(parts) > limit:
        parts = parts[:limit] + [f"... ({len(parts)} parts)"]
    return sep.join(parts)


def _part(tree: ScopeTree, scope: str) -> str:
    """One part of a listing: a block's name, or a section's own parts joined by `+`."""
    if tree.is_block(scope):
        return tree.kind(scope)
    text = contents(tree, scope, 2, " + ") or tree.kind(scope)
    name = scope.rsplit(".", 1)[-1]
    return name if text == tree.kind(scope) and not name.isdigit() else text  # `downsample`, not `section`


def _grouped(parts: list[str]) -> list[str]:
    """Consecutive equal parts as one: 24 dense layers (each wider than the last, so no
    fold) list as `dense_layer x 24`."""
    out: list[list] = []
    for p in parts:
        if out and out[-1][0] == p:
            out[-1][1] += 1
        else:
            out.append([p, 1])
    return [_times(p, n) for p, n in out]


def _times(text: str, n: int) -> str:
    if n == 1:
        return text
    return f"({text}) x {n}" if " + " in text or ", " in text else f"{text} x {n}"


def first_differences(facts: Facts, run: Run, limit: int = 3) -> list[str]:
    """How the first item of a run differs from the repeats: `conv2 s2`, `+ shortcut: conv 1x1 s2 -> bn`."""
    graph, tree = facts.graph, facts.tree
    first, second = run.items[0], run.items[1]

    def by_rel(scope):
        cut = len(scope) + 1
        return {graph.node(n).scope[cut:]: n for n in tree.nodes_under[scope]}

    a, b = by_rel(first), by_rel(second)
    out, added = [], {}
    for rel, nid in a.items():
        if rel not in b:
            head = rel.split(".", 1)[0] if "." in rel else ""
            added.setdefault(head, []).append(L.op_label(graph, nid))
        elif L.op_label(graph, nid) != L.op_label(graph, b[rel]):
            out.append(f"{rel} {L.op_label(graph, nid)}")
    for head, ops in added.items():
        out.append(f"+ {head}: " + " -> ".join(ops) if head else "+ " + ", ".join(ops))
    missing = [rel for rel in b if rel not in a]
    if missing:
        out.append("no " + ", ".join(missing))
    if len(out) > limit:
        out = out[:limit] + ["..."]
    return out


def _edge(dot: graphviz.Digraph, facts: Facts, view: View, e) -> None:
    graph = facts.graph
    shape = graph.node(e.value).shape
    label = L.shape_text(shape)
    attrs = {"color": L.LAYOUT_COLOUR.get(shape.layout, "#333333")}
    if e.user is not None and view.items[e.dst].kind == "op":
        user = graph.node(e.user)
        role = L.role(user.op, e.slot, len(facts.tree.inputs[e.user]))
        if role:
            label = f"{role}: {label}"
        if user.op == "add" and len(facts.tree.users[e.value]) > 1:  # the identity path of a residual
            attrs["style"] = "dashed"
        if role == "gate":
            attrs["style"] = "dotted"
    if e.dst == OUTPUT or e.dst.startswith("(output"):
        attrs["style"] = "bold"
    dot.edge(e.src, e.dst, label=_esc(label), **attrs)
