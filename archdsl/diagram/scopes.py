"""The scope tree of a checked graph, which scopes a drawing opens, and `x N` folding.

A node's scope (`stages.2.blocks.0.conv2`) names its place in the spec's hierarchy: every
dotted prefix (`stages`, `stages.2`, `stages.2.blocks`, `stages.2.blocks.0`) is a scope that
a drawing either opens (a frame around what is inside) or closes (one node standing for all
of it). Depth counts prefix components: at depth 1 only the root is open (stem, stages, head
are single nodes); at depth 2 the first level opens too (each stage is a node).

Items of a container (`stages.0.blocks.0`, `.1`, ... of a repeat or loop) fold when they
repeat: a run of items after the first that are identical (same ops, attributes, shapes and
wiring), led by a first item of the same kind and output shape, is one node `bottleneck x 3`
that lists how the first item differs (a stride, a projection shortcut).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from ..ir.graph import Graph

# attributes that do not change what a block computes at inference (stochastic depth rates
# grow along a stage; without this, no block with drop_path would ever fold)
_IGNORED_ATTRS = {"dropout": {"p"}, "drop_path": {"p"}}


def ancestors(scope: str) -> list[str]:
    """Proper dotted prefixes, shallowest first: `a.b.c` -> [`a`, `a.b`]."""
    parts = scope.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def depth_of(scope: str) -> int:
    return 0 if scope == "" else scope.count(".") + 1


@dataclass(frozen=True)
class Run:
    """Consecutive items of a container: `first` .. `last` (indices), folded when longer than one."""

    container: str
    first: int
    last: int

    @property
    def items(self) -> list[str]:
        return [f"{self.container}.{i}" for i in range(self.first, self.last + 1)]

    @property
    def key(self) -> str:
        """The drawing's name for the folded run: `stages.0.blocks.0-2`."""
        return f"{self.container}.{self.first}-{self.last}"

    def __len__(self) -> int:
        return self.last - self.first + 1


@dataclass
class ScopeTree:
    """Every scope of a graph, the nodes under each, and the runs of each container."""

    graph: Graph
    nodes_under: dict[str, list[int]] = field(default_factory=dict)  # scope -> nodes, topological order
    children: dict[str, list[str]] = field(default_factory=dict)  # scope -> child scopes, in order met
    order: list[int] = field(default_factory=list)  # every node, in the graph's topological order
    inputs: dict[int, list[int]] = field(default_factory=dict)  # node -> arguments, in order
    users: dict[int, list[int]] = field(default_factory=dict)  # node -> the nodes that use it

    @classmethod
    def of(cls, graph: Graph) -> "ScopeTree":
        """The tree, and the graph's order and use-def lists once (every drawing reads them)."""
        tree = cls(graph)
        tree.nodes_under[""] = []
        tree.children[""] = []
        for node in graph:
            tree.order.append(node.id)
            tree.inputs[node.id] = graph.inputs(node.id)
            tree.users[node.id] = graph.users(node.id)
            tree.nodes_under[""].append(node.id)
            parent = ""
            for prefix in ancestors(node.scope):
                if prefix not in tree.nodes_under:
                    tree.nodes_under[prefix] = []
                    tree.children[prefix] = []
                    tree.children[parent].append(prefix)
                tree.nodes_under[prefix].append(node.id)
                parent = prefix
        return tree

    def ancestors(self, scope: str) -> list[str]:
        """`ancestors(scope)`, remembered (every drawing asks it of every node)."""
        found = self._ancestors.get(scope)
        if found is None:
            found = self._ancestors[scope] = ancestors(scope)
        return found

    @cached_property
    def _ancestors(self) -> dict[str, list[str]]:
        return {}

    def kind(self, scope: str) -> str:
        """What the spec made the scope: `bottleneck` (a block), `loop item`, `section`, ..."""
        return self.graph.scopes.get(scope, "scope").removeprefix("block ")

    def is_block(self, scope: str) -> bool:
        return self.graph.scopes.get(scope, "").startswith("block ")

    def scopes(self) -> list[str]:
        """Every scope but the root, parents before children."""
        return [s for s in self.nodes_under if s]

    def direct_nodes(self, scope: str) -> list[int]:
        """Nodes whose own parent is `scope` (not inside a child scope)."""
        return self._direct.get(scope, [])

    @cached_property
    def _direct(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for nid in self.order:
            out.setdefault(self.graph.node(nid).parent_scope, []).append(nid)
        return out

    def items(self, scope: str) -> list[str] | None:
        """The numbered items `scope.0 .. scope.k-1` when `scope` is a container of them."""
        kids = self.children.get(scope, [])
        if not kids or self.direct_nodes(scope):
            return None
        want = [f"{scope}.{i}" for i in range(len(kids))]
        return kids if kids == want else None

    # folding --------------------------------------------------------------
    @cached_property
    def runs(self) -> dict[str, list[Run]]:
        """Container -> its items grouped into runs (length 1 when an item does not repeat)."""
        out = {}
        for scope in self.scopes():
            items = self.items(scope)
            if items:
                out[scope] = self._runs(scope, items)
        return out

    def _runs(self, container: str, items: list[str]) -> list[Run]:
        sigs = [self.signature(s) for s in items]
        outs = [self.graph.node(self.nodes_under[s][-1]).shape for s in items]
        runs, i, k = [], 0, len(items)
        while i < k:
            j = i
            if i + 1 < k and self.kind(items[i]) == self.kind(items[i + 1]) and outs[i] == outs[i + 1]:
                j = i + 1
                while j + 1 < k and sigs[j + 1] == sigs[i + 1]:
                    j += 1
            runs.append(Run(container, i, j))
            i = j + 1
        return runs

    def signature(self, scope: str) -> tuple:
        """What makes two items the same block: each node's place, op, attributes, shapes and
        arguments (inside the item by relative scope, outside as `^`)."""
        inside = set(self.nodes_under[scope])
        cut = len(scope) + 1
        sig = []
        for nid in self.nodes_under[scope]:
            node = self.graph.node(nid)
            attrs = node.attrs.model_dump(exclude=_IGNORED_ATTRS.get(node.op, set()))
            args = tuple(self.graph.node(a).scope[cut:] if a in inside else "^" for a in self.inputs[nid])
            sig.append((node.scope[cut:], node.op, repr(sorted(attrs.items())), str(node.shape), args))
        return tuple(sig)

    def run_of(self, item: str) -> Run | None:
        return self._run_of.get(item)

    @cached_property
    def _run_of(self) -> dict[str, Run]:
        return {item: run for runs in self.runs.values() for run in runs for item in run.items}


def only_child(tree: ScopeTree, scope: str) -> str | None:
    """The one child scope of a scope that holds nothing else (`stages.2` -> `stages.2.blocks`):
    opening the parent alone would show just that child closed, so a click opens both."""
    kids = tree.children.get(scope, [])
    return kids[0] if len(kids) == 1 and not tree.direct_nodes(scope) else None


def with_only_children(tree: ScopeTree, scope: str) -> list[str]:
    """`scope` and the chain of only children below it."""
    chain = [scope]
    while (kid := only_child(tree, chain[-1])) is not None:
        chain.append(kid)
    return chain


def open_scopes(tree: ScopeTree, depth: int | None, expand: list[str] = ()) -> frozenset[str]:
    """The scopes a drawing opens: the root, those shallower than `depth` (None: all), and
    each `expand`ed scope with its ancestors. Unknown names in `expand` raise ValueError."""
    opened = {""}
    for scope in tree.scopes():
        if depth is None or depth_of(scope) < depth:
            opened.add(scope)
    for scope in expand:
        if scope not in tree.nodes_under:
            raise ValueError(scope)
        opened.update(ancestors(scope))
        opened.add(scope)
    return frozenset(opened)


def max_depth(tree: ScopeTree) -> int:
    """The depth at which every scope is open (the drawing shows single ops)."""
    return max((depth_of(s) for s in tree.scopes()), default=0) + 1
