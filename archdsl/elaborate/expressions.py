"""Evaluating expressions: arithmetic, comparisons, lists, comprehensions, calls. Never
Python `eval`. The builtins are in builtins.py, the environments in environment.py."""
from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import ArchLimitError, ArchNameError, ArchTypeError, did_you_mean
from ..frontend import ast
from .builtins import BUILTINS, MAX_INT, MAX_LIST, MAX_STRING  # noqa: F401 - BUILTINS is public here
from .environment import Env, Evaluation  # noqa: F401 - Evaluation is public here
from .values import BlockRef, BoundArgs, Builtin, OpRef, ScaleRule, ShapeView, describe, type_name


_MISSING = object()


def evaluate(e: ast.Expr, env: Env, known_names: Callable[[], set[str]] = lambda: set()) -> Any:
    """Evaluate an expression; errors carry the span of the offending sub-expression."""
    ctx = env.ctx
    ctx.work += 1
    if ctx.work > ctx.max_work + ctx.credit:
        ctx.exhausted(e.span)
    ev = lambda sub: evaluate(sub, env, known_names)  # noqa: E731
    if isinstance(e, ast.Num) or isinstance(e, ast.Str) or isinstance(e, ast.Bool):
        return e.value
    if isinstance(e, ast.Name):
        found, value = env.lookup_local(e.id)
        if found:
            return value
        resolving = ctx.resolving
        if e.id in resolving:  # a constant defined through itself: `n = n + 1`
            cycle = " -> ".join(resolving[resolving.index(e.id):] + [e.id])
            raise ArchNameError(f"'{e.id}' is defined in terms of itself ({cycle})", e.span,
                                "a constant cannot refer to itself, directly or through others")
        resolving.append(e.id)
        try:
            value = env.fallback(e.id) if env.fallback else _MISSING
        finally:
            resolving.pop()
        if value is not _MISSING and value is not None:
            return value
        raise ArchNameError(f"unknown name '{e.id}'", e.span,
                            did_you_mean(e.id, env.names() | known_names()))
    if isinstance(e, ast.InRef):
        if env.in_shape is None:
            raise ArchNameError("'in' is only defined inside a block or a scope that has an input", e.span,
                                "declare the model's `input [...]` first")
        return env.in_shape
    if isinstance(e, ast.ListLit):
        return [ev(i) for i in e.items]
    if isinstance(e, ast.ListComp):
        return _comprehension(e, env, known_names)
    if isinstance(e, ast.Attr):
        base = ev(e.value)
        if isinstance(base, ShapeView):
            try:
                return base.get(e.name)
            except KeyError:
                raise ArchNameError(f"'in' has no attribute '{e.name}'", e.span,
                                    did_you_mean(e.name, ShapeView.FIELDS) or
                                    "known: " + ", ".join(ShapeView.FIELDS)) from None
            except ArchTypeError as err:
                raise err.at(e.span)
        raise ArchTypeError(f"{describe(base)} has no attributes", e.span)
    if isinstance(e, ast.Index):
        base, idx = ev(e.value), ev(e.index)
        if not isinstance(base, list):
            raise ArchTypeError(f"cannot index {describe(base)}", e.value.span, "only lists can be indexed")
        if isinstance(idx, bool) or not isinstance(idx, int):
            if isinstance(idx, float) and idx.is_integer():
                idx = int(idx)
            else:
                raise ArchTypeError(f"list index must be a whole number, got {describe(idx)}", e.index.span)
        if not -len(base) <= idx < len(base):
            raise ArchTypeError(f"index {idx} is out of range for a list of {len(base)} items", e.index.span)
        return base[idx]
    if isinstance(e, ast.Slice):
        base = ev(e.value)
        if not isinstance(base, list):
            raise ArchTypeError(f"cannot slice {describe(base)}", e.value.span)
        lo = ev(e.lower) if e.lower is not None else None
        hi = ev(e.upper) if e.upper is not None else None
        for bound, sub in ((lo, e.lower), (hi, e.upper)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
                raise ArchTypeError(f"slice bound must be a whole number, got {describe(bound)}", sub.span)
        ctx.spend(len(base[lo:hi]), e.span)
        return base[lo:hi]
    if isinstance(e, ast.Cond):
        return ev(e.then) if _truth(ev(e.test), e.test) else ev(e.otherwise)
    if isinstance(e, ast.UnaryOp):
        if e.op == "not":
            return not _truth(ev(e.operand), e.operand)
        v = ev(e.operand)
        _numbers_at(e.op, [(v, e.operand)])
        return -v if e.op == "-" else v
    if isinstance(e, ast.BinOp):
        if e.op == "and":
            return _truth(ev(e.left), e.left) and _truth(ev(e.right), e.right)
        if e.op == "or":
            return _truth(ev(e.left), e.left) or _truth(ev(e.right), e.right)
        a, b = ev(e.left), ev(e.right)
        if isinstance(a, list) or isinstance(b, list):  # comparing or building lists costs their size
            ctx.spend(_size(a) + _size(b), e.span)
            r = _binop(e, a, b)
            ctx.spend(_size(r), e.span)
            return r
        return _binop(e, a, b)
    if isinstance(e, ast.CallExpr):
        return _call(e, env, known_names)
    raise ArchTypeError(f"cannot evaluate {type(e).__name__}", getattr(e, "span", None))


def bindings(names: tuple[str, ...], items, iterable: ast.Expr):
    """The variables of each iteration of `for names in items` (statements, named loops and
    comprehensions alike). With several names, items that are lists of that many values
    unpack (`for t, c, n, s in table`); otherwise `for i, v in xs` gives index and item, and
    `for i, a, b in xs` index and the item's parts."""
    if not isinstance(items, list):
        raise ArchTypeError(f"can only loop over a list, got {describe(items)}", iterable.span,
                            "use range(n) to loop n times")
    unpack = len(names) > 1 and all(isinstance(it, list) and len(it) == len(names) for it in items)
    for i, item in enumerate(items):
        if len(names) == 1:
            yield {names[0]: item}
        elif unpack:
            yield dict(zip(names, item))
        elif len(names) == 2:
            yield {names[0]: i, names[1]: item}
        else:
            if not isinstance(item, list) or len(item) != len(names) - 1:
                raise ArchTypeError(f"item {i} is {describe(item)}, which does not unpack into "
                                    f"{len(names) - 1} names", iterable.span)
            yield {names[0]: i, **dict(zip(names[1:], item))}


def _size(v) -> int:
    return len(v) if isinstance(v, list) else 0


def _comprehension(e: ast.ListComp, env: Env, known_names) -> list:
    out = []
    for bound in bindings(e.names, evaluate(e.iterable, env, known_names), e.iterable):
        env.ctx.spend(1, e.span)
        inner = env.child(bound)
        if e.cond is None or _truth(evaluate(e.cond, inner, known_names), e.cond):
            out.append(evaluate(e.item, inner, known_names))
    return out


def _truth(v, e: ast.Expr) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    raise ArchTypeError(f"expected a condition (true/false or a number), got {describe(v)}", e.span)


def _numbers_at(op: str, pairs) -> None:
    for v, sub in pairs:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ArchTypeError(f"'{op}' expects numbers, got {describe(v)}", sub.span)


def _binop(e: ast.BinOp, a, b):
    op = e.op
    if op in ("==", "!="):
        same = a == b and type_name(a) == type_name(b)
        return same if op == "==" else not same
    if op == "+" and isinstance(a, list) and isinstance(b, list):
        if len(a) + len(b) > MAX_LIST:
            raise ArchLimitError(f"list of {len(a) + len(b):,} items is over the limit", e.span)
        return a + b
    if op == "*" and isinstance(a, list) and isinstance(b, int) and not isinstance(b, bool):
        if len(a) * max(b, 0) > MAX_LIST:
            raise ArchLimitError(f"list of {len(a) * b:,} items is over the limit", e.span)
        return a * b
    if op == "+" and (isinstance(a, str) or isinstance(b, str)):
        return _concat(e, a, b)
    _numbers_at(op, [(a, e.left), (b, e.right)])
    try:
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            r = a / b
        elif op == "//":
            r = a // b
        elif op == "%":
            r = a % b
        elif op == "**":
            if abs(b) > 64 or (isinstance(a, int) and abs(a) > 1 and abs(b) * math.log2(abs(a)) > 60):
                raise ArchLimitError(f"{a} ** {b} is too large", e.span, "numbers in a spec stay below 10^15")
            r = a ** b
        elif op in ("<", "<=", ">", ">="):
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        else:
            raise ArchTypeError(f"unknown operator {op}", e.span)
    except ZeroDivisionError:
        raise ArchTypeError("division by zero", e.right.span) from None
    except OverflowError:
        raise ArchLimitError("number too large", e.span) from None
    if isinstance(r, complex):
        raise ArchTypeError("result is not a real number", e.span)
    if isinstance(r, int) and abs(r) > MAX_INT or isinstance(r, float) and not math.isfinite(r):
        raise ArchLimitError("number too large", e.span, "numbers in a spec stay below 10^15")
    return r


def _concat(e: ast.BinOp, a, b) -> str:
    """`"stage" + str(i)`: strings join only with strings."""
    for v, sub in ((a, e.left), (b, e.right)):
        if not isinstance(v, str):
            raise ArchTypeError(f"'+' joins a string only with another string, got {describe(v)}", sub.span,
                                "convert it with str(...): \"stage\" + str(i)")
    if len(a) + len(b) > MAX_STRING:
        raise ArchLimitError(f"string of {len(a) + len(b):,} characters is over the limit of {MAX_STRING:,}",
                             e.span)
    return a + b


def _checked(r, e: ast.Expr):
    """A builtin's result, refused where it leaves the language's number range."""
    if isinstance(r, bool):
        return r
    if isinstance(r, complex) or isinstance(r, float) and not math.isfinite(r) \
            or isinstance(r, (int, float)) and abs(r) > MAX_INT:
        raise ArchLimitError("number too large", e.span, "numbers in a spec stay below 10^15")
    if isinstance(r, list) and len(r) > MAX_LIST:
        raise ArchLimitError(f"list of {len(r):,} items is over the limit of {MAX_LIST:,}", e.span)
    return r


def _call(e: ast.CallExpr, env: Env, known_names) -> Any:
    fn = evaluate(e.func, env, known_names)
    args = [evaluate(a, env, known_names) for a in e.args.positional]
    kwargs = {k.name: evaluate(k.value, env, known_names) for k in e.args.keyword}
    if isinstance(fn, (BlockRef, OpRef)):
        return configure(fn, args, {k.name: (kwargs[k.name], k.span) for k in e.args.keyword}, e)
    if isinstance(fn, ScaleRule):
        if kwargs or len(args) != 1:
            raise ArchTypeError(f"scale rule '{fn.name}' takes one number", e.span)
        _numbers_at(fn.name, [(args[0], e.args.positional[0])])
        return fn(args[0])
    if isinstance(fn, Builtin):
        env.ctx.spend(sum(_size(a) for a in args), e.span)  # what it reads, and below what it makes
        try:
            result = fn.fn(*args, **kwargs)
        except TypeError:
            raise ArchTypeError(f"wrong arguments for {fn.name}: {fn.doc}", e.span) from None
        except (ValueError, ZeroDivisionError):  # sqrt(-1), round(x, 10**9), ...
            raise ArchTypeError(f"{fn.name} is undefined for these arguments", e.span, fn.doc) from None
        except OverflowError:
            raise ArchLimitError(f"{fn.name}: number too large", e.span, "numbers in a spec stay below 10^15") from None
        except (ArchTypeError, ArchLimitError) as err:
            raise err.at(e.span)
        result = _checked(result, e)
        env.ctx.spend(_size(result), e.span)
        return result
    raise ArchTypeError(f"{describe(fn)} cannot be called in an expression", e.func.span,
                        "only builtins, scaling rules, blocks and ops can be called")


def configure(fn: BlockRef | OpRef, pos: list, kw: dict, e: ast.CallExpr) -> BlockRef | OpRef:
    """`bottleneck(groups = 32)` in an expression: the block (or op) with these arguments
    bound, added to those of every use (see `BoundArgs`). Names are checked here, values
    where it is used."""
    pos, kw = fn.bound.then(pos, kw)
    if isinstance(fn, BlockRef):
        what, names = f"block '{fn.decl.name}'", [p.name for p in fn.decl.params]
    else:
        from ..ir.ops import OPS
        what, names = fn.name, [f for f in OPS[fn.name].attrs.model_fields if not f.startswith("_")]
    if len(pos) > len(names):
        raise ArchTypeError(f"{what} takes {len(names)} arguments, got {len(pos)}", e.span,
                            "parameters: " + ", ".join(names) if names else None)
    for name, (_, span) in kw.items():
        if name not in names:
            raise ArchNameError(f"{what} has no parameter '{name}'", span,
                                did_you_mean(name, names) or ("parameters: " + ", ".join(names) if names else None))
        if names.index(name) < len(pos):
            raise ArchTypeError(f"{what} got '{name}' twice (by position and by name)", span)
    bound = BoundArgs(tuple(pos), tuple((name, value, span) for name, (value, span) in kw.items()))
    return BlockRef(fn.decl, bound) if isinstance(fn, BlockRef) else OpRef(fn.name, bound)
