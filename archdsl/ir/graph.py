"""The graph IR: typed op nodes, and use-def edges that keep argument order.

A `Node` is closed: an op name from the registry, its validated attributes, the scope
name it is emitted under (`stages.2.blocks.0.conv2`), the spec span that produced it,
and `meta` for analysis results (documented keys: `shape`; `tensors`, a dict of
parameter/buffer name -> tensor attached by `archdsl.passes.attach_weights`, keyed like
the node's module at its scope). Edits go through the `Graph` methods, which keep the
use-def structure right by themselves. The graph itself carries `meta` too (e.g.
`memory_format`, set by the channels-last pass). Nothing here imports torch: tensors are
opaque values in `meta`.

The adjacency is kept in plain dicts (each node's arguments in order, each node's users)
rather than in a networkx graph: importing networkx costs about 0.1 s, a third of the budget
of a whole `archdsl check` of a small spec, and its `add_edge` a few microseconds per op of a
big one (docs/performance.md has the figures). Graph algorithms still come from networkx:
`graph.nx` builds a `MultiDiGraph` of the graph on demand.
"""
from __future__ import annotations

from dataclasses import dataclass
import heapq
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field

from ..errors import Span
from .calls import BlockCall, LoopItem
from .ops import OPS, Attrs
from .shape import Shape


class Node(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: int
    op: str
    attrs: Attrs
    scope: str
    span: Span | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def shape(self) -> Shape:
        return self.meta["shape"]

    @property
    def name(self) -> str:
        """The last component of the scope: the module attribute name."""
        return self.scope.rsplit(".", 1)[-1]

    @property
    def parent_scope(self) -> str:
        return self.scope.rsplit(".", 1)[0] if "." in self.scope else ""


@dataclass(frozen=True)
class Tap:
    """A named feature map (`tap("stage1")` in a spec): the node whose value it is, and the
    scope the tap was written in (`stages.0`), which feature_info reports as its module."""

    node: int
    module: str
    span: Span | None = None


class Graph:
    """A dataflow graph with one input node and one output node.

    `taps` name feature maps (name -> `Tap`, in the spec's order); they are not outputs of the
    graph. A backbone graph (`archdsl.features`) has several outputs: `outputs` lists them in
    order (the emitted forward returns a list) and `output` is the last of them.
    `aux_outputs` are training-only side outputs (`aux name { ... }` in a spec: auxiliary
    classifiers), name -> node in the spec's order; their nodes are under the root scope
    `name`, read by nothing else, and `drop_aux` removes them (the inference graph).
    """

    def __init__(self, name: str = "model"):
        self.name = name
        self._nodes: dict[int, Node] = {}  # id -> node, in creation order
        self._args: dict[int, list[int]] = {}  # id -> argument nodes, in argument order
        self._users: dict[int, dict[int, int]] = {}  # id -> {user id: how many of its arguments}
        self._next_id = 0
        self._version = 0  # bumped by every edit; keys the cached topological order
        self._order: tuple | None = None
        self.input: int | None = None
        self.output: int | None = None
        self.scopes: dict[str, str] = {}  # scope path -> kind (block name, "section", "branch", ...)
        self.family: str | None = None  # the family the model instantiates, for weight mappings
        self.meta: dict[str, Any] = {}  # whole-graph facts for emitters (e.g. "memory_format")
        self.taps: dict[str, Tap] = {}  # named feature maps, in the spec's order
        self.outputs: list[int] | None = None  # several outputs (a backbone), else None
        self.aux_outputs: dict[str, int] = {}  # training-only side outputs, in the spec's order
        self.calls: dict[str, BlockCall] = {}  # block scope -> the block and its arguments (ir/calls.py)
        self.loop_items: dict[str, LoopItem] = {}  # a named loop's item -> its variables (ir/calls.py)

    def output_nodes(self) -> list[int]:
        """Every node whose value leaves the graph (auxiliary outputs included)."""
        main = list(self.outputs) if self.outputs is not None else [self.output]
        return main + list(getattr(self, "aux_outputs", {}).values())

    def drop_aux(self) -> list[str]:
        """Remove the auxiliary outputs and the nodes under their scopes (the inference graph);
        returns the names removed."""
        names = list(self.aux_outputs)
        prefixes = tuple(f"{name}." for name in names)
        doomed = {nid for nid, node in self._nodes.items() if node.scope.startswith(prefixes)}
        self.aux_outputs = {}
        self._remove(doomed)
        self.taps = {name: tap for name, tap in self.taps.items() if tap.node in self._nodes}
        return names

    # construction ---------------------------------------------------------
    def add(self, op: str, attrs: Attrs, inputs: list[int], scope: str, span: Span | None,
            shape: Shape) -> int:
        nid = self._next_id
        self._next_id += 1
        # Built without validation: the fields come from the elaborator and the passes, and
        # `lint` checks that attrs are the op's type (validation was ~5 us of ~30 per op)
        node = Node.model_construct(id=nid, op=op, attrs=attrs, scope=scope, span=span, meta={"shape": shape})
        self._nodes[nid] = node
        self._args[nid] = list(inputs)
        self._users[nid] = {}
        for src in inputs:
            users = self._users[src]
            users[nid] = users.get(nid, 0) + 1
        self._version += 1
        return nid

    # queries --------------------------------------------------------------
    def node(self, nid: int) -> Node:
        return self._nodes[nid]

    def __contains__(self, nid) -> bool:
        return nid in self._nodes

    def __iter__(self) -> Iterator[Node]:
        """Nodes in a topological order (creation order breaks ties, so it is deterministic).
        The order is computed once per version of the graph (every analysis walks it)."""
        nodes = self._nodes
        for nid in self.order():
            yield nodes[nid]

    def node_ids(self) -> list[int]:
        """Every node id, in creation order (cheaper than `order()` when order does not matter)."""
        return list(self._nodes)

    def order(self) -> tuple[int, ...]:
        """Node ids in the order `__iter__` gives: the smallest ready id first (Kahn's
        algorithm with a heap, as networkx's lexicographical_topological_sort), O(n log n),
        cached until the graph changes."""
        cached = self._order
        if cached is not None and cached[0] == self._version:
            return cached[1]
        users = self._users
        waiting = {nid: len(args) for nid, args in self._args.items()}
        ready = [nid for nid, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            nid = heapq.heappop(ready)
            order.append(nid)
            for dst, uses in users[nid].items():
                waiting[dst] -= uses
                if waiting[dst] == 0:
                    heapq.heappush(ready, dst)
        if len(order) != len(waiting):
            raise ValueError("graph has a cycle; a pass created a back edge")
        self._order = (self._version, tuple(order))
        return self._order[1]

    def _changed(self) -> None:
        """Called by every edit: cached orders are stale."""
        self._version += 1

    def __len__(self) -> int:
        return len(self._nodes)

    def inputs(self, nid: int) -> list[int]:
        """Argument nodes in argument order."""
        return list(self._args[nid])

    def users(self, nid: int) -> list[int]:
        return sorted(self._users[nid])

    def in_shapes(self, nid: int) -> list[Shape]:
        nodes = self._nodes
        return [nodes[i].meta["shape"] for i in self._args[nid]]

    def edges(self) -> list[tuple[int, int, int]]:
        """Every use as (argument node, user node, argument position), users in creation order."""
        return [(src, nid, i) for nid, args in self._args.items() for i, src in enumerate(args)]

    @property
    def nx(self):
        """The graph as a networkx `MultiDiGraph` (node attribute `node`, edge key = argument
        position), for graph algorithms: a snapshot, built on each access; edit the graph
        through its methods, not through this."""
        import networkx as nx  # only where an algorithm needs it: the import costs ~0.1 s

        g = nx.MultiDiGraph()
        g.add_nodes_from((nid, {"node": node}) for nid, node in self._nodes.items())
        g.add_edges_from((src, dst, i) for src, dst, i in self.edges())
        return g

    def copy(self) -> "Graph":
        """An independent copy: same ids, nodes copied with their own `meta` dicts (the values,
        e.g. tensors, are shared until a pass replaces them)."""
        new = Graph(self.name)
        new._nodes = {nid: node.model_copy(update={"meta": dict(node.meta)}) for nid, node in self._nodes.items()}
        new._args = {nid: list(args) for nid, args in self._args.items()}
        new._users = {nid: dict(users) for nid, users in self._users.items()}
        new._next_id, new.input, new.output = self._next_id, self.input, self.output
        new.scopes, new.family, new.meta = dict(self.scopes), self.family, dict(self.meta)
        new.taps, new.outputs = dict(self.taps), (list(self.outputs) if self.outputs is not None else None)
        new.aux_outputs = dict(getattr(self, "aux_outputs", {}))
        new.calls = dict(getattr(self, "calls", {}))
        new.loop_items = dict(getattr(self, "loop_items", {}))
        return new

    def single_user(self, nid: int) -> int | None:
        """The one node that uses `nid` (once), or None when it has several uses or is the output."""
        users = self._users[nid]
        if len(users) != 1 or nid in self.output_nodes():
            return None
        (user, uses), = users.items()
        return user if uses == 1 else None

    # edits ----------------------------------------------------------------
    def replace_node(self, old: int, op: str | None = None, attrs: Attrs | None = None, *,
                     inputs: list[int] | None = None, meta: dict[str, Any] | None = None,
                     shape: Shape | None = None) -> int:
        """A new node in place of `old`: same scope and span (it stands for the same spec text),
        old's op/attrs/inputs/meta unless given; every use of `old` moves to it and `old` is erased."""
        node = self.node(old)
        new_meta = dict(node.meta if meta is None else meta)
        nid = self.add(op or node.op, attrs if attrs is not None else node.attrs,
                       self.inputs(old) if inputs is None else inputs, node.scope, node.span,
                       shape or new_meta.get("shape", node.shape))
        self.node(nid).meta.update({k: v for k, v in new_meta.items() if k != "shape"})
        self.replace_all_uses_with(old, nid)
        self.erase(old)
        return nid

    def bypass(self, nid: int, arg: int = 0) -> None:
        """Remove a node whose value equals its `arg`-th input: its users read that input instead."""
        src = self.inputs(nid)[arg]
        self.replace_all_uses_with(nid, src)
        self.erase(nid)

    def replace_all_uses_with(self, old: int, new: int) -> None:
        self._changed()
        moved = self._users[old]
        self._users[old] = {}
        for dst, uses in moved.items():
            self._args[dst] = [new if a == old else a for a in self._args[dst]]
            self._users[new][dst] = self._users[new].get(dst, 0) + uses
        if self.output == old:
            self.output = new
        if self.outputs is not None:
            self.outputs = [new if o == old else o for o in self.outputs]
        self.aux_outputs = {name: new if o == old else o for name, o in getattr(self, "aux_outputs", {}).items()}
        for name, tap in self.taps.items():  # a tap follows its value through rewrites
            if tap.node == old:
                self.taps[name] = Tap(new, tap.module, tap.span)

    def erase(self, nid: int) -> None:
        if self.users(nid) or nid in self.output_nodes():
            raise ValueError(f"node {nid} still has users")
        if any(tap.node == nid for tap in self.taps.values()):
            raise ValueError(f"node {nid} is a feature tap; move it with replace_all_uses_with first")
        self._remove({nid})

    def keep_only(self, keep: set[int]) -> None:
        """Remove every node outside `keep` (which must hold all its members' inputs): the
        graph pruned to what some outputs need. Taps on removed nodes go with them."""
        missing = {src for nid in keep for src in self.inputs(nid) if src not in keep}
        if missing:
            raise ValueError(f"nodes {sorted(keep)[:5]}... need {sorted(missing)}, which would be removed")
        self._remove({nid for nid in self._nodes if nid not in keep})
        self.taps = {name: tap for name, tap in self.taps.items() if tap.node in keep}
        self.aux_outputs = {name: o for name, o in getattr(self, "aux_outputs", {}).items() if o in keep}

    def _remove(self, doomed: set[int]) -> None:
        """Drop nodes and their uses of other nodes (their own users must be among them)."""
        for nid in doomed:
            for src in self._args[nid]:
                if src not in doomed:
                    self._users[src].pop(nid, None)
        for nid in doomed:
            del self._nodes[nid], self._args[nid], self._users[nid]
        self._changed()

    # checks ---------------------------------------------------------------
    def lint(self) -> None:
        """Structural invariants; raises ValueError saying what is broken and how to fix it."""
        if self.input is None or self.output is None:
            raise ValueError("graph has no input or output; set graph.input and graph.output")
        self.order()  # raises ValueError on a cycle (a pass created a back edge)
        seen_scopes: set[str] = set()
        for node in self:
            op = OPS[node.op]
            n = len(self.inputs(node.id))
            if n < op.min_inputs or (op.max_inputs is not None and n > op.max_inputs):
                raise ValueError(f"node {node.id} ({node.scope}): {node.op} has {n} inputs")
            missing = [a for a in self._args[node.id] if a not in self._nodes]
            if missing:
                raise ValueError(f"node {node.id} ({node.scope}): its arguments {missing} are not in the graph")
            if node.scope in seen_scopes:
                raise ValueError(f"scope {node.scope!r} names two nodes; give the new node its own name")
            seen_scopes.add(node.scope)
            if not isinstance(node.attrs, op.attrs):
                raise ValueError(f"node {node.id}: attrs are {type(node.attrs).__name__}, not {op.attrs.__name__}")
