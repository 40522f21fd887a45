"""The pieces every drawing of one spec is assembled from, as dot text: the graph's header,
the statement of each item that can be drawn (an op, a closed scope, a folded run, the output
terminal), the attributes of each edge, and the parts of each open scope's frame.

What a piece says never depends on the rest of the drawing, so `dot.py` assembles one
drawing from the pieces it needs, and the `.html` page carries every piece of the spec and
assembles the drawing of any set of open scopes in the browser (`page.js`) from the very
same text. Everything that needs quoting is quoted here: the assemblers only concatenate.

Deterministic: every figure is formatted the same way on every machine, attributes are
written in sorted order (graphviz's quoting), and nothing depends on a set's order.
Graphviz element ids (`id=`) name what each drawn thing stands for: `n:<key>` nodes,
`c:<scope>` frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import graphviz

from ..analysis.cost import NodeCost, node_costs
from ..errors import Diagnostic, source_line
from . import labels as L
from .scope_words import contents, first_differences, part, times
from .scopes import ScopeTree
from .view import Item, scope_outputs

if TYPE_CHECKING:
    from ..compiler import CompiledSpec

_FONT = "Helvetica"
_LABEL_SLOT = "\x01"  # stands for a frame's label while its other attributes are quoted


@dataclass(frozen=True)
class FrameParts:
    """A frame (cluster) as dot text, less its label: `head` opens it; its attribute line is
    `before` + the label + `after`; `name` and `kind` are the label's words, already escaped
    for inside a quoted string. A frame holding nothing but one frame is drawn once, labelled
    for both: see `frame_attrs`."""

    head: str
    before: str
    after: str
    name: str
    kind: str


@dataclass
class Facts:
    """What every drawing of one compiled spec shares: costs, the scope tree, warnings by
    node, and the pieces (each computed once, when a drawing first asks for it)."""

    compiled: "CompiledSpec"
    tree: ScopeTree = field(init=False)
    _statements: dict[tuple[str, str], str] = field(default_factory=dict, init=False, repr=False)
    _value_attrs: dict[int, str] = field(default_factory=dict, init=False, repr=False)
    _frames: dict[str, FrameParts] = field(default_factory=dict, init=False, repr=False)

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

    # the graph -----------------------------------------------------------------
    def digraph(self, rankdir: str = "TB") -> graphviz.Digraph:
        """An empty drawing: the title (name, figures, input and output shapes, warnings no
        node holds) and the default attributes of nodes and edges."""
        c = self.compiled
        t = c.totals
        title = (f"{c.name}: {L.count(t.params)} params · {L.human(t.flops)} FLOPs · "
                 f"{L.shape_text(c.graph.node(c.graph.input).shape)} -> "
                 f"{L.shape_text(c.graph.node(c.graph.output).shape)}")
        loose = self.warnings_at[1]
        title += "".join(f"\n⚠ {w.span}: {w.message}" if w.span else f"\n⚠ {w.message}" for w in loose)
        return graphviz.Digraph(c.name, graph_attr={
            "rankdir": rankdir, "label": esc(title), "labelloc": "t", "fontname": _FONT, "fontsize": "14",
            "nodesep": "0.25", "ranksep": "0.3", "newrank": "true"},
            node_attr={"fontname": _FONT, "fontsize": "10", "shape": "box", "style": "rounded,filled",
                       "margin": "0.08,0.04", "height": "0.3"},
            edge_attr={"fontname": _FONT, "fontsize": "8", "arrowsize": "0.6"})

    def header(self, rankdir: str = "TB") -> str:
        """The dot text before the first statement (a drawing is header + body + `}`)."""
        source = self.digraph(rankdir).source
        assert source.endswith("}\n")
        return source[:-2]

    # items ---------------------------------------------------------------------
    def statement(self, item: Item) -> str:
        """`"stem.conv1" [label=... id="n:stem.conv1" ...]`: one drawn item, without indent."""
        key = (item.key, item.kind)
        if key not in self._statements:
            scratch = graphviz.Digraph()
            scratch.node(item.key, **self._node_attrs(item))
            self._statements[key] = scratch.body[-1].strip("\t\n")
        return self._statements[key]

    @staticmethod
    def edge_id(key: str) -> str:
        """An item's name as an edge statement writes it."""
        return _edge_line(key, key, None, {}).split(" -> ")[0]

    def _node_attrs(self, item: Item) -> dict[str, str]:
        graph = self.graph
        attrs: dict[str, str] = {"id": f"n:{item.key}"}
        if item.kind == "output":
            return dict(label="output", shape="oval", style="filled", fillcolor="#ffffff", **attrs)
        warned = [w for n in item.nodes for w in self.warnings_at[0].get(n, [])]
        taps = [name for n in item.nodes for name in self.taps_at.get(n, [])]
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
            params = self.costs[node.id].params
            if params:
                tip += f"\n{L.count(params)} params"
        else:
            lines, tip = self._closed_lines(item)
            attrs["fillcolor"] = L.SCOPE_COLOUR
            attrs["shape"] = "box3d" if item.kind == "fold" else "box"
            attrs["style"] = "filled" if item.kind == "fold" else "rounded,filled,bold"
        lines += [f"tap: {name}" for name in taps]
        if taps:
            attrs["peripheries"] = "2"
        if warned:
            attrs.update(color=L.WARNING_COLOUR, penwidth="2", fontcolor=L.WARNING_COLOUR)
            attrs["xlabel"] = esc("\n".join(f"⚠ {_clip(w.message.split(':')[0], 48)}" for w in warned))
            tip += "".join(f"\nwarning: {w.message}" for w in warned)
        return dict(label=esc("\n".join(lines)), tooltip=esc(tip), **attrs)

    def _closed_lines(self, item: Item) -> tuple[list[str], str]:
        """A closed scope or a folded run: name, contents, parameters and FLOPs, output RF."""
        graph, tree = self.graph, self.tree
        params = sum(self.costs[n].params for n in item.nodes)
        flops = sum(self.costs[n].flops for n in item.nodes)
        outs = scope_outputs(tree, item.nodes)
        last = outs[-1] if outs else item.nodes[-1]
        rf = self.compiled.rf.get(last)
        if item.kind == "fold":
            run = item.run
            what = times(part(tree, run.items[0]), len(run))
            lines = [item.key, what] + [f"first: {d}" for d in first_differences(graph, tree, run)]
        else:
            lines = [item.key, contents(tree, item.key) or tree.kind(item.key)]
        lines.append(L.figures(params, flops))
        if rf is not None:
            lines.append(L.rf_text(rf))
        first = graph.node(item.nodes[0])
        tip = "\n".join([lines[0], _where(first).split("\n", 1)[-1], *lines[1:], "click to open"])
        return lines, tip

    # edges ---------------------------------------------------------------------
    def value_attrs(self, value: int) -> str:
        """` [label="[256, 56, 56]" color=...]`: an edge carrying `value` into a closed scope
        or a folded run (the shape, coloured by layout)."""
        found = self._value_attrs.get(value)
        if found is None:
            label, attrs = self._shape_attrs(value)
            found = self._value_attrs[value] = _attrs_of(esc(label), attrs)
        return found

    def op_edge_attrs(self, value: int, user: int, slot: int) -> str:
        """The attributes of an edge into the op `user` itself, its argument `slot`: the
        argument's role (`q: `, `gate: `), the identity path of a residual dashed, a gate dotted."""
        node = self.graph.node(user)
        role = L.role(node.op, slot, len(self.tree.inputs[user]))
        identity = node.op == "add" and len(self.tree.users[value]) > 1  # the identity path of a residual
        if not role and not identity:
            return self.value_attrs(value)
        label, attrs = self._shape_attrs(value)
        if role:
            label = f"{role}: {label}"
        if identity:
            attrs["style"] = "dashed"
        if role == "gate":
            attrs["style"] = "dotted"
        return _attrs_of(esc(label), attrs)

    def output_edge_attrs(self, value: int) -> str:
        """The edge from the graph's output `value` to the output terminal, drawn bold."""
        label, attrs = self._shape_attrs(value)
        return _attrs_of(esc(label), dict(attrs, style="bold"))

    def _shape_attrs(self, value: int) -> tuple[str, dict[str, str]]:
        shape = self.graph.node(value).shape
        return L.shape_text(shape), {"color": L.LAYOUT_COLOUR.get(shape.layout, "#333333")}

    # frames --------------------------------------------------------------------
    def frame(self, scope: str) -> FrameParts:
        found = self._frames.get(scope)
        if found is None:
            scratch = graphviz.Digraph()
            with scratch.subgraph(name=f"cluster_{scope}") as cluster:
                cluster.attr(label=_LABEL_SLOT, id=f"c:{scope}", style="rounded,dashed", color="#999999",
                             fontsize="10", labeljust="l", tooltip=esc(self._frame_tip(scope)))
            head, line, _ = (text.strip("\t\n") for text in scratch.body)  # `subgraph "cluster_stages.0" {`
            before, _, after = line.partition(f'"{_LABEL_SLOT}"')
            found = self._frames[scope] = FrameParts(head, before, after, in_quotes(scope),
                                                     in_quotes(self.tree.kind(scope)))
        return found

    def frame_attrs(self, sub: str, inner: str) -> str:
        """The attribute line of the frame of `sub`, drawn for `inner` too when `sub` holds
        nothing but `inner`'s frame (`stages.2 > blocks (repeat)`). page.js: frameAttrs."""
        a, b = self.frame(sub), self.frame(inner)
        name = a.name if inner == sub else f"{a.name} > {b.name[len(a.name) + 1:]}"
        return f'{a.before}"{name} ({b.kind})"{a.after}'

    def _frame_tip(self, scope: str) -> str:
        nodes = self.tree.nodes_under[scope]
        params = sum(self.costs[n].params for n in nodes)
        flops = sum(self.costs[n].flops for n in nodes)
        return f"{scope} ({self.tree.kind(scope)})\n{L.figures(params, flops)}\nclick the frame's title to close it"


def _edge_line(src: str, dst: str, label: str | None, attrs: dict[str, str]) -> str:
    scratch = graphviz.Digraph()
    scratch.edge(src, dst, label=label, **attrs)
    return scratch.body[-1].strip("\t\n")


def _attrs_of(label: str, attrs: dict[str, str]) -> str:
    """` [label=... color=...]`: an edge statement's attributes, as graphviz writes them."""
    line = _edge_line("a", "b", label, attrs)
    assert line.startswith("a -> b [")
    return line[len("a -> b"):]


def esc(text: str) -> str:
    """Text for a dot escString: backslashes doubled, lines joined by `\\n`."""
    return "\\n".join(line.replace("\\", "\\\\") for line in text.split("\n"))


def in_quotes(text: str) -> str:
    """`text` as it reads inside a quoted dot string (`quote(esc(text))` less its quotes,
    for text that gets quoted): pieces of it concatenate into the quoted whole."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _where(node) -> str:
    """`file:line` and the spec text of the line that made the node."""
    if node.span is None:
        return node.scope
    line = source_line(node.span.file, node.span.line)
    text = f"{node.scope}\n{node.span.file}:{node.span.line}"
    return text + (f"\n{line.strip()}" if line else "")
