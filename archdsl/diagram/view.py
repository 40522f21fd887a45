"""What one drawing shows: its nodes (single ops, closed scopes, folded runs), the frames of
open scopes, and its edges with the shapes they carry. Pure data; `dot.py` draws it. The
`.html` page does the same in the browser (`page.js`: buildView), for any set of open scopes,
from `every_item` and the tree's data.

Each IR node is drawn by its representative: the shallowest closed scope above it (or the
folded run that scope belongs to), or itself when every scope above it is open. An edge of
the drawing is an IR edge whose ends have different representatives; edges carrying the same
value into the same drawn node are drawn once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.graph import Graph
from .scopes import Run, ScopeTree, ancestors

OUTPUT = "(output)"  # the drawn terminal after the graph's output; no scope can be named so


@dataclass
class Item:
    """One drawn node."""

    key: str  # its name in the drawing: an op's scope, a closed scope, a run's `c.0-2`, OUTPUT
    kind: str  # "op", "scope", "fold" or "output"
    nodes: list[int]  # the IR nodes it stands for, in topological order
    frame: str  # the open scope it is drawn in ("" is the root)
    run: Run | None = None  # for "fold"


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    value: int  # the IR node whose output it carries
    slot: int  # argument position at the IR user (attention's q, k, v; a gate)
    user: int | None  # the IR node it enters (None: the output terminal)


@dataclass
class View:
    graph: Graph
    tree: ScopeTree
    opened: frozenset[str]
    items: dict[str, Item] = field(default_factory=dict)  # key -> item, in drawing order
    rep: dict[int, str] = field(default_factory=dict)  # IR node -> key of the item drawing it
    edges: list[Edge] = field(default_factory=list)

    def frames(self) -> list[str]:
        """Open scopes that hold something drawn, parents first (the root excluded)."""
        used = {a for item in self.items.values() for a in ancestors(item.key + ".x") if a in self.opened}
        return [s for s in self.tree.scopes() if s in used]

    def is_closed_item(self, scope: str) -> bool:
        return scope in self.items and self.items[scope].kind in ("scope", "fold")


def representative(tree: ScopeTree, opened: frozenset[str], scope: str) -> tuple[str, str, Run | None]:
    """(key, kind, run) of the item that draws the node at `scope`."""
    for prefix in tree.ancestors(scope):
        if prefix not in opened:
            run = tree.run_of(prefix)
            if run is not None and len(run) > 1 and not any(i in opened for i in run.items):
                return run.key, "fold", run
            return prefix, "scope", None
    return scope, "op", None


def build_view(graph: Graph, tree: ScopeTree, opened: frozenset[str]) -> View:
    view = View(graph, tree, opened)
    for nid in tree.order:
        node = graph.node(nid)
        key, kind, run = representative(tree, opened, node.scope)
        view.rep[node.id] = key
        item = view.items.get(key)
        if item is None:
            item = view.items[key] = Item(key, kind, [], _frame_of(key, run), run)
        item.nodes.append(node.id)
    seen = set()
    for nid in tree.order:
        for slot, src in enumerate(tree.inputs[nid]):
            edge = Edge(view.rep[src], view.rep[nid], src, slot, nid)
            if edge.src != edge.dst and (edge.src, edge.dst, src) not in seen:
                seen.add((edge.src, edge.dst, src))
                view.edges.append(edge)
    for key, out in output_terminals(graph):
        view.items[key] = Item(key, "output", [], "")
        view.edges.append(Edge(view.rep[out], key, out, 0, None))
    return view


def _frame_of(key: str, run: Run | None) -> str:
    """The open scope an item is drawn in: a run's container, else the key's parent."""
    return (run.container if run else key.rsplit(".", 1)[0]) if "." in key else ""


def output_terminals(graph: Graph) -> list[tuple[str, int]]:
    """(key, IR node) of each output terminal: `(output)`, or `(output 0)`, ... for several."""
    outputs = graph.outputs if getattr(graph, "outputs", None) else [graph.output]
    return [(OUTPUT if len(outputs) == 1 else f"(output {i})", out) for i, out in enumerate(outputs)]


def every_item(tree: ScopeTree) -> list[Item]:
    """Every item some set of open scopes draws, each with the nodes it then stands for:
    each op, each scope closed, each folded run (its items' nodes), the output terminals."""
    graph = tree.graph
    ops: dict[str, Item] = {}
    for nid in tree.order:
        scope = graph.node(nid).scope
        if scope not in ops:
            ops[scope] = Item(scope, "op", [], _frame_of(scope, None))
        ops[scope].nodes.append(nid)
    items = list(ops.values())
    items += [Item(s, "scope", list(tree.nodes_under[s]), _frame_of(s, None)) for s in tree.scopes()]
    position = {nid: i for i, nid in enumerate(tree.order)}
    for runs in tree.runs.values():
        for run in runs:
            if len(run) > 1:
                nodes = sorted((n for s in run.items for n in tree.nodes_under[s]), key=position.__getitem__)
                items.append(Item(run.key, "fold", nodes, _frame_of(run.key, run), run))
    items += [Item(key, "output", [], "") for key, _ in output_terminals(graph)]
    return items


def scope_outputs(tree: ScopeTree, nodes: list[int]) -> list[int]:
    """The nodes of a group whose values leave it (used outside, or the graph's output)."""
    graph = tree.graph
    inside = set(nodes)
    finals = set(graph.outputs or []) if getattr(graph, "outputs", None) else {graph.output}
    return [n for n in nodes if n in finals or any(u not in inside for u in tree.users[n])]
