"""The builtin functions of the language (`min`, `range`, `make_divisible`, `str`, ...) and
the bounds on the values they make."""
from __future__ import annotations

import math
from typing import Callable

from ..errors import ArchLimitError, ArchTypeError
from .values import Builtin, describe, make_divisible

MAX_INT = 10**15  # no architecture needs a bigger number; stops 10 ** 10 ** 10 early
MAX_LIST = 100_000
MAX_STRING = 10_000  # characters: a string is a name or a short label


def _range(*args):
    if not 1 <= len(args) <= 3 or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        raise ArchTypeError("range takes one to three whole numbers: range(stop), range(start, stop[, step])")
    if len(args) == 3 and args[2] == 0:
        raise ArchTypeError("range step must not be zero")
    r = range(*args)
    if len(r) > MAX_LIST:
        raise ArchLimitError(f"range of {len(r):,} items is over the limit of {MAX_LIST:,}")
    return list(r)


def _numbers(name: str, values) -> None:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ArchTypeError(f"{name} expects numbers, got {describe(v)}")


def _fn_numeric(name: str, fn: Callable) -> Callable:
    def call(*args):
        _numbers(name, args)
        return fn(*args)
    return call


def _aggregate(name: str, fn: Callable) -> Callable:
    def call(*args):
        items = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
        if not items and name == "sum":
            return 0
        if not items:
            raise ArchTypeError(f"{name} of an empty list")
        _numbers(name, items)
        return fn(items)
    return call


def _len(v):
    if not isinstance(v, list):
        raise ArchTypeError(f"len expects a list, got {describe(v)}")
    return len(v)


def _int(v):
    _numbers("int", [v])
    return int(v)


def _make_divisible(value, divisor=8, min_value=None):
    _numbers("make_divisible", [value, divisor] + ([min_value] if min_value is not None else []))
    if divisor <= 0:
        raise ArchTypeError("make_divisible needs a positive divisor")
    return make_divisible(value, int(divisor), None if min_value is None else int(min_value))


def _str(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return str(v)
    raise ArchTypeError(f"str expects a number, a boolean or a string, got {describe(v)}")


def _zip(*lists):
    for v in lists:
        if not isinstance(v, list):
            raise ArchTypeError(f"zip expects lists, got {describe(v)}")
    return [list(t) for t in zip(*lists)]


BUILTINS: dict[str, Builtin] = {b.name: b for b in [
    Builtin("min", _aggregate("min", min), "smallest of numbers or of a list"),
    Builtin("max", _aggregate("max", max), "largest of numbers or of a list"),
    Builtin("sum", _aggregate("sum", sum), "sum of a list"),
    Builtin("len", _len, "length of a list"),
    Builtin("range", _range, "range(stop) or range(start, stop[, step]) as a list"),
    Builtin("zip", _zip, "zip(a, b, ...): list of [a[i], b[i], ...]"),
    Builtin("str", _str, "str(v): a number or boolean as text (`str(3)` is \"3\")"),
    Builtin("int", _int, "truncate towards zero"),
    Builtin("float", _fn_numeric("float", float), "as a real number"),
    Builtin("abs", _fn_numeric("abs", abs), "absolute value"),
    Builtin("ceil", _fn_numeric("ceil", lambda v: int(math.ceil(v))), "round up to a whole number"),
    Builtin("floor", _fn_numeric("floor", lambda v: int(math.floor(v))), "round down to a whole number"),
    Builtin("round", _fn_numeric("round", lambda v, nd=None: round(v) if nd is None else round(v, int(nd))),
            "round half to even, like Python"),
    Builtin("sqrt", _fn_numeric("sqrt", math.sqrt), "square root"),
    Builtin("make_divisible", _make_divisible,
            "make_divisible(v, divisor=8, min_value=divisor): nearest multiple, never 10% below v"),
]}

