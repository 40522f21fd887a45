"""Binding call arguments: block and family parameters, and op attributes (via pydantic)."""
from __future__ import annotations

import typing
from typing import Any

from pydantic import ValidationError

from ..errors import ArchNameError, ArchTypeError, Span, did_you_mean
from ..frontend import ast
from ..ir.calls import BlockCall, LoopItem
from ..ir.ops.base import Op
from .expressions import Env, evaluate
from .values import describe

# What each common attribute means, for "expected ..." messages.
_MEANING = {
    "out": "an output channel count", "k": "a kernel size", "s": "a stride", "p": "a padding",
    "d": "a dilation", "g": "a group count", "eps": "a small positive number", "heads": "a head count",
    "key_dim": "a key width", "patch": "a patch size", "stride": "a stride", "init": "an initial value",
}


def bind_params(params: tuple[ast.Param, ...], pos: list[Any], kw: dict[str, tuple[Any, Span]], env: Env,
                what: str, span: Span, known) -> Env:
    """Bind positional and keyword values to declared parameters; defaults are evaluated in
    order, so a default may use earlier parameters and `in`."""
    names = [p.name for p in params]
    if len(pos) > len(params):
        raise ArchTypeError(f"{what} takes {len(params)} arguments, got {len(pos)}", span,
                            "parameters: " + ", ".join(names) if names else None)
    for name, (_, kspan) in kw.items():
        if name not in names:
            raise ArchNameError(f"{what} has no parameter '{name}'", kspan,
                                did_you_mean(name, names) or ("parameters: " + ", ".join(names) if names else None))
    for p, _ in zip(params, pos):
        if p.name in kw:
            raise ArchTypeError(f"{what} got '{p.name}' twice (by position and by name)", kw[p.name][1])
    for i, p in enumerate(params):
        if i < len(pos):
            env.vars[p.name] = pos[i]
        elif p.name in kw:
            env.vars[p.name] = kw[p.name][0]
        elif p.default is not None:
            env.vars[p.name] = evaluate(p.default, env, known)
        else:
            raise ArchTypeError(f"{what} needs a value for '{p.name}'", span,
                                f"pass it: {p.name} = ...")
    return env


def block_call(decl: ast.BlockDecl, env: Env, span: Span) -> BlockCall:
    """The record of a block instance (ir/calls.py) from the environment `bind_params` bound:
    each parameter's value, a block or op passed as a value written as its name."""
    args = {}
    for p in decl.params:
        value = env.vars[p.name]
        args[p.name] = value if isinstance(value, (bool, int, float, str, list)) else _spec_name(value)
    return BlockCall(decl.name, args, span, decl)


def loop_item(loop: ast.NamedLoop, bound: dict[str, Any]) -> LoopItem:
    """The record of a named loop's item (ir/calls.py): its variables' values, as `block_call`'s."""
    args = {k: v if isinstance(v, (bool, int, float, str, list)) else _spec_name(v) for k, v in bound.items()}
    return LoopItem(args, loop.span, loop)


def _spec_name(value: Any) -> Any:
    name = getattr(value, "name", None) or getattr(getattr(value, "decl", None), "name", None)
    return name if isinstance(name, str) else value


def build_attrs(op: Op, pos: list[Any], kw: dict[str, tuple[Any, Span]], span: Span):
    """Validate a call's arguments into the op's frozen attribute model."""
    fields = [f for f in op.attrs.model_fields if not f.startswith("_")]
    if len(pos) > len(fields):
        raise ArchTypeError(f"{op.name} takes at most {len(fields)} positional arguments, got {len(pos)}", span,
                            f"{op.name} arguments: {', '.join(fields)}" if fields else f"{op.name} takes no arguments")
    data: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    for name, value in zip(fields, pos):
        data[name] = value
        spans[name] = span
    for name, (value, kspan) in kw.items():
        if name not in fields:
            raise ArchNameError(f"{op.name} has no argument '{name}'", kspan,
                                did_you_mean(name, fields) or
                                (f"{op.name} arguments: {', '.join(fields)}" if fields else f"{op.name} takes none"))
        if name in data:
            raise ArchTypeError(f"{op.name} got '{name}' twice", kspan)
        data[name] = value
        spans[name] = kspan
    for name, value in data.items():
        accepts = _accepted_types(op.attrs.model_fields[name].annotation)
        wrong = not isinstance(value, (bool, int, float, str, list))
        # pydantic would quietly read "64" as 64 and true as 1: a spec means what it says
        wrong = wrong or isinstance(value, str) and str not in accepts
        wrong = wrong or isinstance(value, bool) and bool not in accepts
        wrong = wrong or accepts == {bool} and not isinstance(value, bool)
        if wrong:
            raise ArchTypeError(f"{op.name}: '{name}' expects {_MEANING.get(name, 'a value')}, got {describe(value)}",
                                spans[name])
    try:
        return op.attrs(**data)
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        raise _attr_error(op, field, data.get(field), err, spans.get(field, span)) from None


def _accepted_types(annotation) -> set[type]:
    """The plain Python types an attribute annotation admits (Literal values count by type)."""
    out: set[type] = set()
    stack = [annotation]
    while stack:
        t = stack.pop()
        origin = typing.get_origin(t)
        if origin is typing.Literal:
            out |= {type(v) for v in typing.get_args(t)}
        elif origin is typing.Annotated:
            stack.append(typing.get_args(t)[0])
        elif origin is not None:  # Union, Optional, tuple[...]: look inside; tuples take lists
            if origin in (tuple, list):
                out.add(list)
            stack.extend(typing.get_args(t))
        elif isinstance(t, type):
            out.add(t)
            if t is float:
                out.add(int)
    return out


def _attr_error(op: Op, field: str, value: Any, err: dict, span: Span) -> ArchTypeError:
    kind = err["type"]
    meaning = _MEANING.get(field, "a valid value")
    if kind == "missing":
        return ArchTypeError(f"{op.name} needs '{field}' ({meaning})", span,
                             f"{op.name}({', '.join(op.attrs.model_fields)})")
    if kind == "int_from_float":
        return ArchTypeError(f"{op.name}: '{field}' must be a whole number, got {value:g}", span,
                             "use // for integer division, or round(...)")
    if kind in ("greater_than", "greater_than_equal"):
        bound = err.get("ctx", {}).get("gt", err.get("ctx", {}).get("ge"))
        cmp = ">" if kind == "greater_than" else ">="
        return ArchTypeError(f"{op.name}: '{field}' must be {cmp} {bound}, got {describe(value)}", span)
    if kind in ("less_than", "less_than_equal"):
        bound = err.get("ctx", {}).get("lt", err.get("ctx", {}).get("le"))
        return ArchTypeError(f"{op.name}: '{field}' must be below {bound}, got {describe(value)}", span)
    return ArchTypeError(f"{op.name}: '{field}' expects {meaning}, got {describe(value)}", span,
                         err.get("msg"))
