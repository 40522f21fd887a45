"""The constructor of an ejected block class, named after the spec's parameters.

A class made for a block (`block bottleneck(out, stride = 1, expansion = 4, ...)`) takes the
block's parameters as its arguments, and `in_channels`, the width flowing in, where the
block reads it: `Bottleneck(in_channels, out, stride=1, expansion=4, groups=1, base_width=64)`.
Each number its layers are built with (a "column": one value per instance of the class) is
written as, in order of preference:
1. the spec's own expression for it, from the layer's call in the block (`conv(mid, k=1)`
   gives `mid`; `s=stride` gives `stride`), with the block's assignments (`mid = int(out /
   expansion * base_width / 64) * groups`) as lines at the top of `__init__`;
2. for an input width, the output width of the layer that feeds it (`nn.BatchNorm2d(mid)`
   after `conv(mid)`), or `in_channels` when the block's input feeds it;
3. a literal, when every instance has the same value;
4. a parameter or assignment whose value it is in every instance;
5. else an argument of its own, named after the layer argument it feeds (as for sections).
An expression is used only if it evaluates, with each instance's arguments (`Graph.calls`),
to the value that instance was built with: the file builds exactly the archdsl module.
"""
from __future__ import annotations

import ast as pyast
import re
from dataclasses import dataclass, field
from typing import Any

from ..frontend import ast
from ..ir.graph import Graph
from ..ir.ops import OPS
from .eject_exprs import evaluate, literal_default, python
from .eject_spec import call_sites, first_args, repeat_count
from .torch_ops import _ACTIVATION_CODE

# a leaf module's constructor argument (eject_leaves.leaf's hint) -> the op argument it is
_OP_ARGUMENT = {"out_channels": "out", "out_features": "out", "kernel_size": "k", "stride": "s", "dilation": "d",
                "groups": "g", "bias": "bias", "eps": "eps", "init": "init"}
_INPUT_WIDTH = {"in_channels", "channels", "in_features"}
_OUTPUT_WIDTH = {"out_channels", "out_features"}
_WIDTH = _INPUT_WIDTH | _OUTPUT_WIDTH | {"out"}  # `out`: the blocks' own name for it
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\b(?!\s*\()")


class _Absent:
    """The value of a column for an instance that lacks the member (an optional part)."""

    def __repr__(self) -> str:
        return "None"


ABSENT = _Absent()


@dataclass(frozen=True)
class Code:
    """A value written as Python code, not as a literal: an activation function (`F.hardswish`)."""

    text: str

    def __repr__(self) -> str:
        return self.text


# an activation a block takes as a parameter (`act = relu6`) -> the function the file passes
ACTIVATIONS = {name: Code(m.group(1)) for name, code in _ACTIVATION_CODE.items()
               if (m := re.fullmatch(r"([\w.]+)\(\{0\}\)", code))}


@dataclass
class Column:
    """One number a class's constructor uses, per instance, and where it goes."""

    values: list
    hint: str  # the leaf argument or child parameter it feeds
    attr: str  # the member it feeds
    node: int | None = None  # a leaf column: the node of the leaf
    child: str | None = None  # a child class's parameter: the first instance's child region
    child_param: str | None = None
    text: str | None = None  # the expression it must be (a condition of an optional part)
    param: str | None = None  # the block parameter it is (an activation kept as an attribute)
    before: int = 0  # a repeat count: how many items of its sequence come before the loop
    first: bool = False  # ... of a first item, which a loop over the rest follows: always one


@dataclass
class Signature:
    params: list[str]
    defaults: dict[str, Any]
    assignments: list[tuple[str, str, Any]]  # (name, Python expression, the spec's span) for __init__
    slots: list[tuple[str, Any]]  # per column: ("const", value) or ("expr", text)
    values: list[list]  # per instance: its arguments, in `params` order
    extra: dict[str, int] = field(default_factory=dict)  # an argument of its own -> its column


def same(a, b) -> bool:
    """Equal as constructor values: lists are tuples, a square pair is its side, bools are not ints."""
    a, b = _norm(a), _norm(b)
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and all(map(same, a, b))
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _norm(v):
    if isinstance(v, (list, tuple)):
        v = tuple(_norm(x) for x in v)
        return v[0] if len(v) == 2 and v[0] == v[1] else v
    return v


class BlockArguments:
    """Solves one block class's constructor (see the module docstring)."""

    def __init__(self, graph: Graph, regions: list[str], calls: list, in_channels: list[int | None]):
        self.graph = graph
        self.regions = regions
        self.calls = calls  # per instance: the call of the block it is (or is a part of)
        self.decl: ast.BlockDecl = calls[0].decl
        self.sites = call_sites(self.decl)
        self.firsts = first_args(self.decl)
        scalars = [p.name for p in self.decl.params
                   if all(isinstance(c.args[p.name], (bool, int, float, str)) for c in self.calls)]
        self.env = [{p: c.args[p] for p in scalars} for c in self.calls]
        self.code_params: set[str] = set()  # activations passed as functions (`act=F.hardswish`)
        self.names: dict[str, None] = {}  # what expressions may read, in order of preference
        if all(c is not None for c in in_channels):
            for env, c in zip(self.env, in_channels):
                env["in_channels"] = c
            self.names["in_channels"] = None
        self.names.update(dict.fromkeys(scalars))
        self.assignments: dict[str, tuple[str, Any]] = {}  # name -> (Python expression, span)
        for stmt in self.decl.body.stmts:  # the block's own assignments, where they translate
            if isinstance(stmt, ast.Assign) and stmt.name not in self.names:
                self._assign(stmt)
        self.out_text: dict[str, str] = {}  # a leaf (its scope in the instance) -> the expression of its output width
        self.region_set = set(regions)
        self.node_text: dict[tuple[int, str], str] = {}  # (leaf node, argument) -> its expression

    def _assign(self, stmt: ast.Assign) -> None:
        text = python(stmt.value, self.names)
        if text is None:
            return
        try:
            values = [evaluate(text, env) for env in self.env]
        except Exception:  # noqa: BLE001 - an expression Python does not evaluate as the spec does
            return
        for env, v in zip(self.env, values):
            env[stmt.name] = v
        self.names[stmt.name] = None
        self.assignments[stmt.name] = (text, stmt.span)

    def _holds(self, text: str | None, values: list, strict: bool = False) -> bool:
        """Whether `text` gives each instance's value; `strict`: as the same kind of value (a
        name that holds a side is not a pair of sides that some constructor keeps as a tuple)."""
        if text is None:
            return False
        try:
            return all(v is ABSENT or same(got := _as(evaluate(text, env), v), v) and
                       (not strict or isinstance(got, (tuple, list)) == isinstance(v, (tuple, list)))
                       for env, v in zip(self.env, values))
        except Exception:  # noqa: BLE001
            return False

    def solve(self, columns: list[Column]) -> Signature:
        slots, extra = [], {}
        for j, col in enumerate(columns):
            if col.param is not None:  # an activation the forward calls (eject_variants.py)
                self.code_params.add(col.param)
                slots.append(("expr", col.param))
                continue
            present = [v for v in col.values if v is not ABSENT] or [None]  # an argument no instance has
            text = self._expression(col)
            if text in self.names and isinstance(present[0], Code):  # a child's activation, passed down
                self.code_params.add(text)
            if text is not None and _is_literal(text):  # `bias=true`: a constant, left out where it is the default
                slots.append(("const", present[0]))
            elif text is not None:
                slots.append(("expr", text))
                if col.node is not None:
                    self.node_text[(col.node, col.hint)] = text
                if col.node is not None and col.hint in _OUTPUT_WIDTH:
                    self.out_text[self._place(self.graph.node(col.node).scope)[1]] = text
            elif all(same(v, present[0]) for v in present) and not (
                    ABSENT in col.values and present != [None] and col.hint in _WIDTH and any(
                        self._holds(n, col.values, True) for n in self.names)):
                slots.append(("const", present[0]))  # (a width some instances lack is a name where one holds)
            else:  # a repeat count or a table of rows is never a parameter's value by chance
                name = None if col.hint == "depth" or col.hint.endswith("_args") else \
                    next((n for n in self.names if self._holds(n, col.values, strict=True)), None)
                if name is None:
                    name = self._fresh(col, extra)
                    extra[name] = j
                    self.names[name] = None
                    for env, v in zip(self.env, _filled(col.values, columns[j + 1:])):
                        env[name] = v
                if isinstance(present[0], Code):
                    self.code_params.add(name)
                slots.append(("expr", name))
        for env in self.env:  # an op's name, where the file passes the function
            for p in self.code_params:
                env[p] = ACTIVATIONS.get(env[p], env[p]) if isinstance(env[p], str) else env[p]
        used = self._used({t for kind, t in slots if kind == "expr"})
        assignments = [(n, *self.assignments[n]) for n in self.assignments if n in used]
        params, defaults = self._params(used, extra)
        values = [[env[p] for p in params] for env in self.env]
        return Signature(params, defaults, assignments, slots, values, extra)

    def _expression(self, col: Column) -> str | None:
        candidates = [col.text] if col.text is not None else []
        if col.hint == "depth" and not col.first and any(col.values):  # the count: `x n`, `range(d)`; `n - 1`
            # after a first item (none where no instance loops: it is left out)
            count = repeat_count(self.decl, col.attr)
            text = python(count, self.names) if count is not None else None
            candidates += [text if not col.before or text is None else f"{_atom(text)} - {col.before}"]
        if col.node is not None:
            node = self.graph.node(col.node)
            site = self.sites.get((node.span.line, node.span.col)) if node.span is not None else None
            op = OPS[site.name] if site is not None and site.name in OPS else None
            if site is not None and col.hint in _OP_ARGUMENT:
                candidates.append(_argument(site, op, _OP_ARGUMENT[col.hint]))
            k = self.node_text.get((col.node, "kernel_size"))
            if col.hint == "padding" and k is not None and not k.isdigit():  # "centred": half the (dilated) kernel
                d = _argument(site, op, "d") if site is not None else None
                d = python(d, self.names) if d is not None else None
                candidates += ([f"({k} - 1) // 2 * {_atom(d)}"] if d and d != "1" else []) + [f"{_atom(k)} // 2"]
            if col.hint in _INPUT_WIDTH:
                candidates.append(self._width_into(self.graph.inputs(col.node), col.node))
        elif col.child is not None:
            call = self.graph.calls.get(col.child)
            site = self.sites.get((call.span.line, call.span.col)) if call is not None and call.span else None
            if site is not None and call.decl is not None and col.child_param in call.args:
                # a repeat's first item: `first(stride = i == 0 ? 1 : 2)` before the call's own
                first = self.firsts.get((call.span.line, call.span.col)) if col.child.endswith(".0") else None
                given = next((k.value for k in first.keyword if k.name == col.child_param), None) if first else None
                candidates.append(given if given is not None else _argument(site, call.decl, col.child_param))
            if col.child_param == "in_channels":
                candidates.append(self._width_into(self._region_inputs(col.child), col.child))
            elif col.child_param in self.names:  # a part of this block takes this block's names
                candidates.append(col.child_param)
        for candidate in candidates:
            text = candidate if candidate is None or isinstance(candidate, str) else python(candidate, self.names)
            if self._holds(text, col.values):
                return text
        return None

    def _place(self, scope: str) -> tuple[str, str]:
        """(the instance a scope is in, the scope relative to it): the same layer of every
        instance has the same relative scope (a merged class's parts come from several)."""
        parts = scope.split(".")
        for i in range(len(parts) - 1, 0, -1):
            region = ".".join(parts[:i])
            if region in self.region_set:
                return region, ".".join(parts[i:])
        return "", scope

    def _width_into(self, inputs: list[int], inside: int | str) -> str | None:
        """The expression of the width of the value `inputs[0]`: the output width of the leaf
        that made it, through layers that keep the width, or `in_channels` from outside.
        `inside`: the node or region that reads it, in the instance it is read in."""
        region = self._place(inside if isinstance(inside, str) else self.graph.node(inside).scope)[0]
        src = inputs[0] if inputs else None
        while src is not None:
            node = self.graph.node(src)
            if not node.scope.startswith(region + "."):
                return "in_channels"
            if self._place(node.scope)[1] in self.out_text:
                return self.out_text[self._place(node.scope)[1]]
            ins = self.graph.inputs(src)
            if not ins or self.graph.node(ins[0]).shape.c != node.shape.c:
                return None
            src = ins[0]
        return None

    def _region_inputs(self, region: str) -> list[int]:
        prefix = region + "."
        inside = [n for n in self.graph.order() if self.graph.node(n).scope.startswith(prefix)]
        inside_set = set(inside)
        return [src for n in inside for src in self.graph.inputs(n) if src not in inside_set][:1]

    def _fresh(self, col: Column, taken: dict) -> str:
        name = col.hint if col.hint not in self.names and col.hint not in taken else f"{col.attr}_{col.hint}"
        k = 2
        while name in self.names or name in taken:
            name, k = f"{col.hint}_{k}", k + 1
        return name

    def _used(self, texts: set[str]) -> set[str]:
        """The names the chosen expressions read, through the assignments they read."""
        used, todo = set(), list(texts)
        while todo:
            for name in _IDENTIFIER.findall(todo.pop()):
                if name in self.names and name not in used:
                    used.add(name)
                    if name in self.assignments:
                        todo.append(self.assignments[name][0])
        return used

    def _params(self, used: set[str], extra: dict) -> tuple[list[str], dict]:
        """`in_channels`, the spec's parameters without a literal default, the class's own
        arguments, then those with one (Python's order), each only where something reads it."""
        required, optional, defaults = [], [], {}
        for p in self.decl.params:
            if p.name not in used:
                continue
            has, value = literal_default(p.default)
            if isinstance(p.default, ast.Name) and p.default.id in ACTIVATIONS:  # `act = relu6`
                has, value = True, ACTIVATIONS[p.default.id] if p.name in self.code_params else p.default.id
            if has:
                optional.append(p.name)
                defaults[p.name] = value
            else:
                required.append(p.name)
        head = ["in_channels"] if "in_channels" in used else []
        return head + required + [n for n in extra if n in used] + optional, defaults


def _filled(values: list, later: list[Column]) -> list:
    """A column of an optional part (ABSENT where an instance lacks it) as a later column that
    agrees with it wherever the part is there: the Downsample's width, which the blocks after it
    take too, is an argument of every instance."""
    if not any(v is ABSENT for v in values):
        return values
    for col in later:
        if not any(v is ABSENT for v in col.values) and all(
                v is ABSENT or same(v, w) for v, w in zip(values, col.values)):
            return col.values
    return values


def _as(value, like):
    """`value` as a column's values are written: an op's name as its function where they are functions."""
    return ACTIVATIONS.get(value, value) if isinstance(like, Code) and isinstance(value, str) else value


def _is_literal(text: str) -> bool:
    try:
        pyast.literal_eval(text)
        return True
    except (ValueError, SyntaxError):
        return False


def _atom(text: str) -> str:
    return text if text.isidentifier() or text.isdigit() else f"({text})"


def _argument(site: ast.CallEl, target, name: str):
    """The expression `site` passes for the argument `name` of `target` (an op, whose
    arguments are its attribute fields, or a block declaration), or None."""
    for k in site.args.keyword:
        if k.name == name:
            return k.value
    if target is None:
        return None
    order = [p.name for p in target.params] if isinstance(target, ast.BlockDecl) else \
        [f for f in target.attrs.model_fields if not f.startswith("_")]
    i = order.index(name) if name in order else len(site.args.positional)
    return site.args.positional[i] if i < len(site.args.positional) else None
