"""The typed syntax tree of an .arch file. Every node keeps the span of text it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..errors import Span


# ---------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Str:
    value: str
    span: Span


@dataclass(frozen=True)
class Bool:
    value: bool
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class InRef:
    """`in`: the shape flowing into the innermost enclosing block or scope."""

    span: Span


@dataclass(frozen=True)
class ListLit:
    items: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class ListComp:
    """`[item for names in iterable if cond]`: names bound as in a `for` statement."""

    item: "Expr"
    names: tuple[str, ...]
    iterable: "Expr"
    cond: "Expr | None"
    span: Span


@dataclass(frozen=True)
class Kwarg:
    name: str
    value: "Expr"
    span: Span


@dataclass(frozen=True)
class Args:
    positional: tuple["Expr", ...] = ()
    keyword: tuple[Kwarg, ...] = ()


@dataclass(frozen=True)
class CallExpr:
    func: "Expr"
    args: Args
    span: Span


@dataclass(frozen=True)
class Index:
    value: "Expr"
    index: "Expr"
    span: Span


@dataclass(frozen=True)
class Slice:
    value: "Expr"
    lower: "Expr | None"
    upper: "Expr | None"
    span: Span


@dataclass(frozen=True)
class Attr:
    value: "Expr"
    name: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / // % ** == != < <= > >= and or
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class UnaryOp:
    op: str  # - + not
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Cond:
    test: "Expr"
    then: "Expr"
    otherwise: "Expr"
    span: Span


Expr = Union[Num, Str, Bool, Name, InRef, ListLit, ListComp, CallExpr, Index, Slice, Attr, BinOp, UnaryOp, Cond]
EXPR_TYPES = (Num, Str, Bool, Name, InRef, ListLit, ListComp, CallExpr, Index, Slice, Attr, BinOp, UnaryOp, Cond)


# ---------------------------------------------------------------- statements
@dataclass(frozen=True)
class CallEl:
    """`name`, `name(args)` or `name(args) as alias`: an op, a block, or a parameter bound to one."""

    name: str
    args: Args
    alias: str | None
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Section:
    """`name { body }`: a named scope (stem, head, downsample, ...)."""

    name: str
    body: "Body"
    span: Span


@dataclass(frozen=True)
class NamedLoop:
    """`name for i, x in expr { body }`: one scope `name.k` per iteration."""

    name: str
    names: tuple[str, ...]
    iterable: Expr
    body: "Body"
    span: Span


@dataclass(frozen=True)
class Residual:
    """`residual [when c] { body } [shortcut [when c] { body }]`: out = body(in) + shortcut(in)."""

    when: Expr | None
    body: "Body"
    shortcut: "Body | None"
    shortcut_when: Expr | None
    span: Span


@dataclass(frozen=True)
class Branch:
    label: str | None
    body: "Body"
    span: Span
    when: "Expr | None" = None  # `label { ... } when cond`: absent when cond is false


@dataclass(frozen=True)
class Merge:
    """`merge op(args) { {..} {..} }` and its shorthand `concat { ... }`: branches joined by an op."""

    op: str
    args: Args
    branches: tuple[Branch, ...]
    span: Span
    op_span: Span


@dataclass(frozen=True)
class Gate:
    """`gate { body }`: out = in * body(in) (squeeze-and-excitation and kin)."""

    body: "Body"
    span: Span


@dataclass(frozen=True)
class Aux:
    """`aux name { body }`: a training-only side output (an auxiliary classifier). The body
    reads the value flowing past; its modules go under the root scope `name`; the main value
    flows on unchanged."""

    name: str
    body: "Body"
    span: Span


Element = Union[CallEl, Section, NamedLoop, Residual, Merge, Gate, Aux]


@dataclass(frozen=True)
class Repeat:
    count: Expr
    first: Args | None
    span: Span
    index: str | None = None  # `x N with j`: the name bound to 0 .. N-1 in each repeat


@dataclass(frozen=True)
class ChainStmt:
    elements: tuple[Element, ...]
    repeat: Repeat | None
    when: Expr | None
    span: Span


@dataclass(frozen=True)
class Assign:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class InputStmt:
    shape: Expr
    span: Span


@dataclass(frozen=True)
class ScaleRule:
    """`name = factor divisible_by d [min m]` or `name = factor rounding ceil|floor|round`."""

    name: str
    factor: Expr
    kind: str  # "width" | "depth"
    divisor: Expr | None
    minimum: Expr | None
    rounding: str | None
    span: Span


@dataclass(frozen=True)
class ScaleStmt:
    rules: tuple[ScaleRule, ...]
    span: Span


@dataclass(frozen=True)
class ExpectStmt:
    subject: str
    op: str
    value: Expr
    span: Span
    subject_span: Span


@dataclass(frozen=True)
class ForStmt:
    names: tuple[str, ...]
    iterable: Expr
    body: "Body"
    span: Span


@dataclass(frozen=True)
class IfStmt:
    test: Expr
    then: "Body"
    otherwise: "Body | None"
    span: Span


Stmt = Union[ChainStmt, Assign, InputStmt, ScaleStmt, ExpectStmt, ForStmt, IfStmt]


@dataclass(frozen=True)
class Body:
    stmts: tuple[Stmt, ...]
    span: Span


# ---------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class Import:
    path: str
    span: Span


@dataclass(frozen=True)
class BlockDecl:
    name: str
    params: tuple[Param, ...]
    body: Body
    span: Span


@dataclass(frozen=True)
class FamilyDecl:
    name: str
    params: tuple[Param, ...]
    body: Body
    span: Span


@dataclass(frozen=True)
class ModelDecl:
    """`model name = family(args) [{ expect ... }]` or `model name { body }` (inline)."""

    name: str
    family: str | None
    args: Args
    body: Body | None
    span: Span
    family_span: Span | None = None
    expects: Body | None = None  # after a family instance: `expect` statements only


Decl = Union[Import, BlockDecl, FamilyDecl, ModelDecl, Assign]


@dataclass(frozen=True)
class Module:
    """One parsed .arch file."""

    file: str
    decls: tuple[Decl, ...] = field(default_factory=tuple)
