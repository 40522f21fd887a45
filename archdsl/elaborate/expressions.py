"""Evaluating expressions: arithmetic, comparisons, lists, builtins. Never Python `eval`."""
from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import ArchLimitError, ArchNameError, ArchTypeError, did_you_mean
from ..frontend import ast
from .values import (BlockRef, BoundArgs, Builtin, OpRef, ScaleRule, ShapeView, describe, make_divisible,
                     type_name)

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


DEFAULT_MAX_WORK = 200_000  # see `Evaluation`; archdsl.limits.Limits.max_work sets it per compilation
# Steps charged for a loop iteration, a repetition or a block call, which cost about as much
# as this many expression steps even when they evaluate nothing (an empty block `x 10000`).
WORK_PER_ITEM = 10
# Steps each op node made adds to the budget: a model's size is bounded by the node limit,
# and the budget stops the work that builds nothing.
WORK_PER_NODE = 50


class Evaluation:
    """What one elaboration's evaluations share, carried by its environments (never a module
    global: threads compiling at once, or one compilation inside another, each have their own).

    * `resolving`: the global names being resolved, outermost first, to report a constant
      defined in terms of itself.
    * `work`: steps of work done so far: one per expression evaluated, one per list item
      made, read or compared, WORK_PER_ITEM per loop iteration, repetition and block call.
      It may exceed `credit` (WORK_PER_NODE per op node made: the model being built) by at
      most `max_work`. Runaway specs that build little (three nested `x 10000` around an
      empty block, loops of loops, list arithmetic in loops) stop there with a position in
      a fraction of a second (a step costs about 1-3 us); the zoo's largest models spend
      a few thousand steps beyond their credit.
    """

    def __init__(self, max_work: int = DEFAULT_MAX_WORK):
        self.resolving: list[str] = []
        self.work = 0
        self.credit = 0
        self.max_work = max_work

    def spend(self, steps: int, span) -> None:
        """Count `steps` of work done for the text at `span`; past the budget, an ArchLimitError there."""
        self.work += steps
        if self.work > self.max_work + self.credit:
            self.exhausted(span)

    def exhausted(self, span) -> None:
        raise ArchLimitError(f"elaborating the spec takes more than {self.max_work:,} steps of work beyond "
                             "the ops it builds (expressions, loop iterations, repetitions)", span,
                             "check repetition counts, loop bounds and list sizes (nested loops and "
                             "repetitions multiply); to allow it, raise the limit: --limit work=N, "
                             "or Limits(max_work=...)")


class Env:
    """Lexical variables, innermost first; `fallback` resolves globals (blocks, ops, builtins).
    `ctx` is the elaboration's shared `Evaluation`: inherited from the parent; for a root
    environment, that of the object whose method `fallback` is (the Elaborator's
    `evaluation`), else a new one.

    A `transparent` environment (a `for` iteration's) holds only its loop variables: other
    names assigned in it are assigned in the environment around it, as in Python."""

    def __init__(self, vars: dict[str, Any] | None = None, parent: "Env | None" = None,
                 fallback: Callable[[str], Any] | None = None, in_shape: ShapeView | None = None,
                 transparent: bool = False, ctx: Evaluation | None = None):
        self.vars = dict(vars or {})
        self.parent = parent
        self.fallback = fallback if fallback is not None else (parent.fallback if parent else None)
        self.in_shape = in_shape if in_shape is not None else (parent.in_shape if parent else None)
        self.transparent = transparent and parent is not None
        if ctx is None:
            ctx = parent.ctx if parent is not None else getattr(getattr(fallback, "__self__", None), "evaluation", None)
        self.ctx = ctx if ctx is not None else Evaluation()

    def child(self, vars: dict[str, Any] | None = None, in_shape: ShapeView | None = None,
              transparent: bool = False) -> "Env":
        return Env(vars, self, in_shape=in_shape, transparent=transparent)

    def assign(self, name: str, value: Any) -> None:
        """`name = value`: in this environment, or through transparent ones to the first that
        is not (or that already binds `name` as a loop variable)."""
        env = self
        while env.transparent and name not in env.vars:
            env = env.parent
        env.vars[name] = value

    def lookup_local(self, name: str):
        env = self
        while env is not None:
            if name in env.vars:
                return True, env.vars[name]
            env = env.parent
        return False, None

    def names(self) -> set[str]:
        out, env = set(), self
        while env is not None:
            out |= set(env.vars)
            env = env.parent
        return out


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
