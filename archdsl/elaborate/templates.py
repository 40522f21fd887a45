"""Block instances made once and copied: a block called again with the same arguments on the
same input shape builds the same ops, so the elaborator records what the first call added to
the graph (a `Template`) and replays it for the next ones, instead of evaluating the block's
body again (expressions, argument binding, attribute validation, shape inference, lint).

ResNet-50's stages repeat one bottleneck with the same arguments; a synthetic spec of 10,000
residual blocks elaborates ~10,000 identical instances. Replaying one costs a graph insertion
per op; evaluating it cost about 30 us per op (docs/performance.md).

What a block's body builds depends only on its bound parameters (the environment a call
creates: declared parameters and their defaults, nothing from the caller's scope) and the
shape flowing in. It makes its modules under its own fresh scope, so everything it records is
relative to that scope. A call whose body does anything else (a feature tap, an auxiliary
head, an `expect`, a family used as a backbone, a use of a value from outside the block) is
not recorded, and a value that cannot be compared reliably (anything but numbers, strings,
booleans, lists and blocks or ops named as values) makes the call uncached. A replay that
would cross a limit (ops, parameters, work) is not replayed: the call is elaborated, so the
error points where it would have.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Diagnostic, Span
from ..limits import BYTES_PER_ELEMENT
from .values import BlockRef, BoundArgs, OpRef

_UNCACHEABLE = object()


@dataclass
class Template:
    """What one block call added to the graph, relative to its scope and its input (-1)."""

    nodes: list[tuple[str, str, Any, list[int], Span | None, Any]]  # (relative scope, op, attrs, args, span, shape)
    output: int  # index into nodes, or -1: the input itself
    scopes: list[tuple[str, str]]  # (relative scope, kind), in the order they were made
    calls: list[tuple[str, Any]]  # (relative scope, BlockCall) of the blocks inside
    loop_items: list[tuple[str, Any]]  # (relative scope, LoopItem) of the named loops' items inside
    own_kind: str  # the call's own scope's final kind (an in-place inner block renames it)
    own_call: Any  # ... and its final BlockCall, when an in-place inner block replaced it
    warnings: list[tuple[Diagnostic, int]]  # with how many use sites precede this call's
    params: int
    work: int
    credit: int
    iterations: int


def freeze(value: Any):
    """A hashable stand-in for a spec value that tells apart what a spec tells apart (1, 1.0
    and True are three values), or _UNCACHEABLE."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return (type(value), value)
    if isinstance(value, (list, tuple)):
        items = tuple(freeze(v) for v in value)
        return _UNCACHEABLE if any(i is _UNCACHEABLE for i in items) else (list, items)
    if isinstance(value, (BlockRef, OpRef)):
        bound = _freeze_bound(value.bound)
        if bound is _UNCACHEABLE:
            return _UNCACHEABLE
        return (BlockRef, id(value.decl), bound) if isinstance(value, BlockRef) else (OpRef, value.name, bound)
    return _UNCACHEABLE


def _freeze_bound(bound: BoundArgs):
    parts = [freeze(v) for v in bound.positional] + [freeze(v) for _, v, _ in bound.keyword]
    if any(p is _UNCACHEABLE for p in parts):
        return _UNCACHEABLE
    return tuple(parts) + tuple(name for name, _, _ in bound.keyword)


def call_key(decl, variables: dict[str, Any], in_shape) -> tuple | None:
    """The key of a block call: the block, its bound parameters, the shape flowing in."""
    frozen = tuple((name, freeze(v)) for name, v in variables.items())
    if any(v is _UNCACHEABLE for _, v in frozen):
        return None
    return (id(decl), frozen, in_shape)


def _relative(sub: str, scope: str) -> str | None:
    if scope == sub:
        return ""
    return scope[len(sub) + 1:] if scope.startswith(sub + ".") else None


def _join(sub: str, rel: str) -> str:
    return f"{sub}.{rel}" if rel else sub


def _last_items(d: dict, n: int) -> list:
    """The last `n` items of a dict, oldest first, in O(n)."""
    out = []
    for item in reversed(d.items()):
        if len(out) == n:
            break
        out.append(item)
    return out[::-1]


def _added_under(sub: str, d: dict, before: int) -> list | None:
    """The entries added to `d` since it had `before`, keyed relative to `sub` (None when one
    is not strictly inside `sub`: the call touched something outside its scope)."""
    out = []
    for scope, value in _last_items(d, len(d) - before):
        rel = _relative(sub, scope)
        if not rel:
            return None
        out.append((rel, value))
    return out


class Templates:
    """A mixin of `Elaborator` (builder.py): `_instance` elaborates a block's body in its scope,
    through a template when it can."""

    def _instance(self, decl, env, sub: str, x: int) -> int:
        graph = self.graph
        key = call_key(decl, env.vars, graph.node(x).shape) if sub and not self._used.get(sub) else None
        templates = self._templates
        template = templates.get(key) if key is not None else None
        if template is not None and self._fits(template):
            return self._replay(template, sub, x)
        start = (graph._next_id, len(graph.scopes), len(graph.calls), len(graph.loop_items), len(self.warnings),
                 len(graph.taps), len(graph.aux_outputs), len(self.expects), self._params, self.evaluation.work,
                 self.evaluation.credit, self._iterations_done, graph.calls.get(sub))
        out = self._body(decl.body, env, sub, x, collapse=True)
        if key is not None and key not in templates:
            templates[key] = self._record(start, sub, x, out)
        return out

    def _record(self, start, sub: str, x: int, out: int) -> Template | None:
        """The template of the call that just ran, or None when it cannot be replayed."""
        graph = self.graph
        (first, scopes0, calls0, items0, warnings0, taps0, aux0, expects0, params0, work0, credit0, iterations0,
         call0) = start
        if (len(graph.taps), len(graph.aux_outputs), len(self.expects)) != (taps0, aux0, expects0):
            return None
        index = {x: -1}
        nodes = []
        for nid in range(first, graph._next_id):
            if nid not in graph:
                return None
            node = graph.node(nid)
            rel = _relative(sub, node.scope)
            args = [index.get(a) for a in graph._args[nid]]
            if rel is None or None in args or set(node.meta) != {"shape"}:
                return None
            index[nid] = len(nodes)
            nodes.append((rel, node.op, node.attrs, args, node.span, node.shape))
        if out not in index:
            return None
        scopes = _added_under(sub, graph.scopes, scopes0)
        calls = _added_under(sub, graph.calls, calls0)
        items = _added_under(sub, graph.loop_items, items0)
        if scopes is None or calls is None or items is None:
            return None
        depth = len(self._use_sites)
        warnings = [(w, depth) for w in self.warnings[warnings0:]]
        own_call = graph.calls.get(sub)
        return Template(nodes, index[out], scopes, calls, items, graph.scopes[sub], own_call if own_call is not call0 else None,
                        warnings, self._params - params0, self.evaluation.work - work0,
                        self.evaluation.credit - credit0, self._iterations_done - iterations0)

    def _fits(self, t: Template) -> bool:
        """Whether replaying stays within every limit (else the call is elaborated, and the
        limit's error points at the op that crosses it)."""
        limits, ev = self.limits, self.evaluation
        return (len(self.graph) + len(t.nodes) <= limits.max_nodes
                and (self._params + t.params) * BYTES_PER_ELEMENT <= limits.max_param_bytes
                and self._iterations_done + t.iterations <= limits.max_iterations
                and ev.work + t.work <= ev.max_work + ev.credit + t.credit)

    def _replay(self, t: Template, sub: str, x: int) -> int:
        graph = self.graph
        ids: list[int] = []
        for rel, op, attrs, args, span, shape in t.nodes:
            ids.append(graph.add(op, attrs, [x if a < 0 else ids[a] for a in args], _join(sub, rel), span, shape))
        for rel, kind in t.scopes:
            graph.scopes[_join(sub, rel)] = kind
        for rel, call in t.calls:
            graph.calls[_join(sub, rel)] = call
        for rel, item in t.loop_items:
            graph.loop_items[_join(sub, rel)] = item
        graph.scopes[sub] = t.own_kind
        if t.own_call is not None:
            graph.calls[sub] = t.own_call
        for w, depth in t.warnings:
            self.warnings.append(Diagnostic(w.message, w.span, w.hint, list(self._use_sites) + w.trace[depth:]))
        self._params += t.params
        self.evaluation.work += t.work
        self.evaluation.credit += t.credit
        self._iterations_done += t.iterations
        return x if t.output < 0 else ids[t.output]
