"""Where things are in a block's body, for `archdsl eject`: its call elements by position (a
node's span is its call's), the count of the repeat or loop that makes a container, the
`first(...)` arguments of a repeated call, whether a conv asks for "same" padding. (A named
loop's body is read as a block's: eject_loops.py.)
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass

from ..frontend import ast
from .eject_exprs import evaluate, python


def walk(root, into_exprs: bool = False, breadth_first: bool = False):
    """The nodes of a spec's syntax tree under `root` (a block's body), `root` included;
    expressions are entered only `into_exprs`."""
    todo = [root]
    while todo:
        item = todo.pop(0) if breadth_first else todo.pop()
        yield item
        if is_dataclass(item) and (into_exprs or not isinstance(item, ast.EXPR_TYPES)):
            todo.extend(getattr(item, f.name) for f in fields(item))
        elif isinstance(item, tuple):
            todo.extend(item)


def repeat_count(decl: ast.BlockDecl, container: str) -> ast.Expr | None:
    """The count of the repeat or loop of a block's body that makes the container `container`:
    `b(...) x n` (`blocks`, or its alias) gives `n`, `blocks for j in range(d)` gives `d`."""
    for item in walk(decl.body):
        if isinstance(item, ast.NamedLoop) and item.name == container:
            it = item.iterable
            if isinstance(it, ast.CallExpr) and isinstance(it.func, ast.Name) and it.func.id == "range" \
                    and len(it.args.positional) == 1 and not it.args.keyword:
                return it.args.positional[0]
            return None
        if isinstance(item, ast.ChainStmt) and item.repeat is not None:
            first = item.elements[0]
            single = len(item.elements) == 1 and isinstance(first, ast.CallEl)
            if ((first.alias if single else None) or "blocks") == container:
                return item.repeat.count
    return None


def first_args(decl: ast.BlockDecl) -> dict[tuple[int, int], ast.Args]:
    """The `first(...)` arguments of each repeated call of a block's body, by where the call starts."""
    out = {}
    for item in walk(decl.body):
        if isinstance(item, ast.ChainStmt) and item.repeat is not None and item.repeat.first is not None:
            el = item.elements[0]
            out[(el.span.line, el.span.col)] = item.repeat.first
    return out


def call_sites(decl: ast.BlockDecl) -> dict[tuple[int, int], ast.CallEl]:
    """Every call element of a block's body by where it starts (a node's span is its call's)."""
    return {(item.span.line, item.span.col): item for item in walk(decl.body, into_exprs=True)
            if isinstance(item, ast.CallEl)}


def asks_same_padding(graph, node) -> bool:
    """Whether the spec asks the conv `node` for TensorFlow's "same" padding: its call's `p`
    evaluates to "same" with the arguments of the block it is in (the graph keeps only the pads
    resolved for the input's size). A conv outside any block (a section's: `p=padding`, a
    family parameter the graph does not record) answers False, and keeps its pads."""
    if node.span is None or not hasattr(node.attrs, "pads"):
        return False
    scope = node.parent_scope
    while scope not in graph.calls and scope:
        scope = scope.rsplit(".", 1)[0] if "." in scope else ""
    call = graph.calls.get(scope)
    if call is None or call.decl is None or call.decl.span.file != node.span.file:
        return False
    site = call_sites(call.decl).get((node.span.line, node.span.col))
    given = next((k.value for k in site.args.keyword if k.name == "p"), None) if site is not None else None
    text = python(given, set(call.args)) if given is not None else None
    try:
        return text is not None and evaluate(text, call.args) == "same"
    except Exception:  # noqa: BLE001 - an expression Python does not evaluate as the spec does
        return False
