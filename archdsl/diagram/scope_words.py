"""What a closed scope or a folded run says in words: what it holds (`bottleneck x 3`,
`downsample, convnext x 3`, `(attention + mlp) x 4`) and how a run's first item differs from
its repeats (`conv2 s2`, `+ shortcut: conv 1x1 s2 -> bn`)."""
from __future__ import annotations

from ..ir.graph import Graph
from . import labels as L
from .scopes import Run, ScopeTree


def contents(tree: ScopeTree, scope: str, limit: int = 3, sep: str = ", ") -> str | None:
    """What a scope holds, in a few words: `bottleneck x 3`, `downsample, convnext x 3`,
    `(attention + mlp) x 4` (an item's parts joined by `+`)."""
    runs = tree.runs.get(scope)
    if runs:
        parts = [times(part(tree, r.items[0]), len(r)) for r in runs]
    else:
        kids = tree.children.get(scope, [])
        if len(kids) == 1 and not tree.direct_nodes(scope):
            return contents(tree, kids[0], limit, sep) if not tree.is_block(kids[0]) else tree.kind(kids[0])
        if tree.is_block(scope) or not kids:
            return tree.kind(scope)
        parts = [part(tree, k) for k in kids]
    parts = _grouped(parts)
    if len(parts) > limit:
        parts = parts[:limit] + [f"... ({len(parts)} parts)"]
    return sep.join(parts)


def part(tree: ScopeTree, scope: str) -> str:
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
    return [times(p, n) for p, n in out]


def times(text: str, n: int) -> str:
    if n == 1:
        return text
    return f"({text}) x {n}" if " + " in text or ", " in text else f"{text} x {n}"


def first_differences(graph: Graph, tree: ScopeTree, run: Run, limit: int = 3) -> list[str]:
    """How the first item of a run differs from the repeats: `conv2 s2`, `+ shortcut: conv 1x1 s2 -> bn`."""
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
