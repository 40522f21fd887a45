"""Where names live while elaborating: `Env`, the lexical environments, and `Evaluation`,
the state one elaboration's evaluations share (the constants being resolved, the work budget)."""
from __future__ import annotations

from typing import Any, Callable

from ..errors import ArchLimitError
from .values import ShapeView

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

