"""Spec expressions as Python source, for `archdsl eject`: `int(out / expansion * base_width
/ 64) * groups`, `stride != 1 or in_channels != out`.

`in.channels` becomes `in_channels` (the block's input width, a constructor argument); the
builtins keep their names (`int`, `max`, `make_divisible`, `math.ceil` for `ceil`). An
expression using anything else (lists, `in.h`, loop variables) has no translation: `python`
returns None and the caller writes a literal instead. A translation is only used after
`evaluate` gave the value the elaborator computed for every instance (see eject_blocks.py).
"""
from __future__ import annotations

import math
from typing import Any

from ..elaborate.values import make_divisible
from ..frontend import ast

# Python's precedence, loosest first: a child binding looser than its parent is parenthesized
_PRECEDENCE = {"if": 0, "or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
               "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6, "unary": 7, "**": 8, "atom": 9}
_FUNCTIONS = {"int": "int", "float": "float", "abs": "abs", "round": "round", "min": "min", "max": "max",
              "make_divisible": "make_divisible", "ceil": "math.ceil", "floor": "math.floor"}
_NAMESPACE = {"int": int, "float": float, "abs": abs, "round": round, "min": min, "max": max,
              "make_divisible": make_divisible, "math": math}


def python(e: ast.Expr, names: set[str]) -> str | None:
    """`e` as a Python expression over `names` (and `in_channels`), or None."""
    try:
        return _expr(e, names)[0]
    except _Untranslatable:
        return None


def evaluate(text: str, values: dict[str, Any]) -> Any:
    """The value of a translated expression with `values` bound; raises on any failure."""
    return eval(text, {"__builtins__": {}, **_NAMESPACE}, dict(values))  # noqa: S307 - our own translation


class _Untranslatable(Exception):
    pass


def _expr(e, names: set[str]) -> tuple[str, int]:
    if isinstance(e, ast.Bool):
        return repr(e.value), _PRECEDENCE["atom"]
    if isinstance(e, (ast.Num, ast.Str)):
        return repr(e.value), _PRECEDENCE["unary"] if isinstance(e.value, (int, float)) and e.value < 0 \
            else _PRECEDENCE["atom"]
    if isinstance(e, ast.Name):
        if e.id not in names:
            raise _Untranslatable(e.id)
        return e.id, _PRECEDENCE["atom"]
    if isinstance(e, ast.Attr) and isinstance(e.value, ast.InRef) and e.name == "channels":
        return "in_channels", _PRECEDENCE["atom"]
    if isinstance(e, ast.BinOp):
        p = _PRECEDENCE[e.op]
        left = _wrap(_expr(e.left, names), p if e.op != "**" else p + 1)
        right = _wrap(_expr(e.right, names), p + 1 if e.op != "**" else p)  # a - (b - c); a ** b ** c
        return f"{left} {e.op} {right}", p
    if isinstance(e, ast.UnaryOp):
        if e.op == "not":
            return f"not {_wrap(_expr(e.operand, names), _PRECEDENCE['not'])}", _PRECEDENCE["not"]
        return f"{e.op}{_wrap(_expr(e.operand, names), _PRECEDENCE['unary'])}", _PRECEDENCE["unary"]
    if isinstance(e, ast.Cond):
        p = _PRECEDENCE["if"]
        test, then = (_wrap(_expr(x, names), p + 1) for x in (e.test, e.then))
        return f"{then} if {test} else {_wrap(_expr(e.otherwise, names), p)}", p
    if isinstance(e, ast.CallExpr) and isinstance(e.func, ast.Name) and e.func.id in _FUNCTIONS \
            and e.func.id not in names:
        args = [_expr(a, names)[0] for a in e.args.positional]
        args += [f"{k.name}={_expr(k.value, names)[0]}" for k in e.args.keyword]
        return f"{_FUNCTIONS[e.func.id]}({', '.join(args)})", _PRECEDENCE["atom"]
    raise _Untranslatable(type(e).__name__)


def _wrap(part: tuple[str, int], need: int) -> str:
    text, p = part
    return text if p >= need else f"({text})"


def literal_default(e: ast.Expr | None) -> tuple[bool, Any]:
    """(True, value) when a parameter's default is a plain literal (`stride = 1`, `eps = 1e-5`,
    `act = relu` is not: an op), else (False, None)."""
    if isinstance(e, (ast.Num, ast.Str, ast.Bool)):
        return True, e.value
    if isinstance(e, ast.UnaryOp) and e.op == "-" and isinstance(e.operand, ast.Num):
        return True, -e.operand.value
    return False, None
