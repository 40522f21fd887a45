"""The items of a named loop as instances of one block, for `archdsl eject`.

`stages for i, w, k, pool in [[192, 5, true], ...] { conv(w, k=k) -> relu; maxpool(3, 2) when
pool }` builds one scope per item, each from the same body with other values of the loop's
variables: what a person writes as one class whose constructor takes those variables,
`Stage(in_channels, w, k, pool)`, built in a loop over the spec's rows. That is how the ejector
already writes a block's instances (eject_blocks.py: arguments named after the parameters;
eject_variants.py: a part under `when` built under its condition), so an item is handed to it
as a call of a block: the loop's body, whose parameters are the loop's variables, called with
the values the item bound (`Graph.loop_items`, recorded by the elaborator).

An item whose body is a single block call is that block's scope (the elaborator collapses it):
it stays that block's instance.

`Sequences` (a part of the ejector) splits a numbered container's items into runs of one class
(a first item, then a loop over the rest: `range(n - 1)`, empty where an instance has one item
only, so that it is built by its siblings' class); `threaded_loop` writes a loop item's container
as a for loop over the spec's rows.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from ..frontend import ast
from ..ir.calls import BlockCall
from ..ir.graph import Graph


def with_loop_items(graph: Graph) -> Graph:
    """A shallow copy of `graph` whose `calls` hold each loop item as a call of its loop's body."""
    out = copy.copy(graph)
    decls: dict[int, ast.BlockDecl] = {}
    items = {}
    for region, item in getattr(graph, "loop_items", {}).items():
        if region in graph.calls or item.loop is None:
            continue
        decl = decls.get(id(item.loop))
        if decl is None:
            decl = decls[id(item.loop)] = loop_block(item.loop)
        items[region] = BlockCall(decl.name, dict(item.args), item.span, decl)
    out.calls = {**items, **graph.calls}
    return out


@dataclass(frozen=True)
class LoopBlock(ast.BlockDecl):
    """The body of a named loop as a block whose parameters are the loop's variables."""

    loop: ast.NamedLoop | None = None


def loop_block(loop: ast.NamedLoop) -> LoopBlock:
    params = tuple(ast.Param(name, None, loop.span) for name in loop.names)
    return LoopBlock(loop.name, params, loop.body, loop.span, loop)


def loop_index(loop: ast.NamedLoop) -> str:
    """The variable that may number a loop's items (`i` of `for i, d in depths`, `for i in
    range(3)`); whether it does, its values tell."""
    return loop.names[0]


def is_block(kind: str) -> bool:
    """Whether a scope of this kind (`Graph.scopes`) is solved as a block's instance: a block's
    scope, or a loop item (its loop's body)."""
    return kind.startswith("block ") or kind == "loop item"


class Sequences:
    """A part of `eject._Ejector`: a numbered container's items as runs of one class each (a
    loop where they are built alike), split off to keep each file readable. It reads the
    ejector's `children`, `em`, `firsts`, `_raw` and `_class_id_of`."""

    def _sequence_items(self, region: str) -> list[str] | None:
        """The items of a numbered container ("0", "1", ...) that is a chain of its items (or a
        plain list of them, when not callable), else None."""
        kids = self.children[region]
        if not kids or any(k != "region" for k, _ in kids):
            return None
        items = [r for _, r in kids]
        if [r.rsplit(".", 1)[-1] for r in items] != [str(i) for i in range(len(items))]:
            return None
        if self.em.callable.get(region) is None:
            return items
        steps = list(self.em.steps(region))
        inp, out = self.em.callable[region]
        prev = inp
        for step, item in zip(steps, items):
            if step[0] != "call" or step[1] != item or step[3] != prev:
                return None
            prev = step[4]
        return items if len(steps) == len(items) and prev == out else None

    def _runs(self, items: list[str]) -> list[list[str]]:
        """Consecutive items of one class: a loop where they are built alike, or a first one and
        a loop over the rest (a stage's projecting block, then its repeats); a table of rows
        where most differ (DenseNet's growing layers)."""
        groups: list[list[str]] = []
        for item in items:
            cls = self._class_id_of(item)
            if groups and self._class_id_of(groups[-1][0]) == cls:
                groups[-1].append(item)
            else:
                groups.append([item])
        runs: list[list[str]] = []
        path = re.sub(r"(?<![^.])\d+(?![^.])", "#", items[0].rsplit(".", 1)[0])
        raws = [self._raw(i) for i in items]
        if len(items) == 1 and path in self.firsts:  # a first item and no more, as its siblings' first and rest
            return [items, []]
        if len(items) > 1 and raws[0] != raws[1] and raws[1:] == raws[2:] + raws[-1:]:
            self.firsts.add(path)
        for group in groups:
            alike: list[list[str]] = []
            for item in group:
                if alike and self._raw(alike[-1][0]) == self._raw(item):
                    alike[-1].append(item)
                else:
                    alike.append([item])
            if group is groups[0] and len(alike) == 1 and len(group) > 1 and path in self.firsts:
                alike = [group[:1], group[1:]]  # as its sibling sequences: a first item, then the loop
            runs += alike if len(alike) <= 2 or any(len(a) > 1 for a in alike) else [group]
        return runs


def threaded_loop(attr: str, container: str, call: str, params: list[str], rows: tuple, index: str | None,
                  literal) -> list[str] | None:
    """A container of items built in a loop over the spec's rows, the width flowing from one item
    into the next as a person threads it (`in_channels = w` after each), or None where no
    argument of an item is the next one's input width:

        stages = []
        in_channels = 64
        for w, k, pool in [(192, 5, True), (384, 3, False), ...]:
            stages.append(Stage(in_channels, w, k, pool))
            in_channels = w
        self.stages = nn.Sequential(*stages)

    `call` is the item's constructor call over `params` (`in_channels` first); `index`, a
    parameter that counts the items (the loop's `i`): `for i, (w, k) in enumerate(...)`."""
    if len(rows) < 2 or not params or params[0] != "in_channels":
        return None
    out = next((j for j in range(1, len(params)) if params[j] != index and
                all(rows[r][j] == rows[r + 1][0] and type(rows[r][j]) is int for r in range(len(rows) - 1))), None)
    if out is None:
        return None
    if index not in params or [row[params.index(index)] for row in rows] != list(range(len(rows))):
        index = None
    names = [p for p in params[1:] if p != index]
    cols = [params.index(p) for p in names]
    values = [tuple(row[j] for j in cols) if len(cols) > 1 else row[cols[0]] for row in rows] if cols else []
    target = ", ".join(names) if len(names) != 1 or index is None else names[0]
    if len(names) > 1 and index is not None:
        target = f"({target})"
    table = "[" + ", ".join(literal(v) for v in values) + "]"
    if len(table) > 70:
        table = "[\n" + "".join(f"{' ' * 4}{literal(v)},\n" for v in values) + "]"  # (the caller indents)
    if index is not None and not names:
        head = f"for {index} in range({len(rows)}):"
    elif index is not None:
        head = f"for {index}, {target} in enumerate({table}):"
    else:
        head = f"for {target} in {table}:"
    built = f"nn.ModuleList({attr})" if container == "nn.ModuleList" else f"{container}(*{attr})"
    return [f"{attr} = []", f"in_channels = {literal(rows[0][0])}", head, f"    {attr}.append({call})",
            f"    in_channels = {params[out]}", f"self.{attr} = {built}"]
