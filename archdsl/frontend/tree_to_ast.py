"""Parse tree to typed AST: a lark Transformer that gives every node its span."""
from __future__ import annotations

from decimal import Decimal

from lark import Token, Transformer, v_args

from ..errors import ArchLimitError, ArchSyntaxError, Span
from . import ast

# `x` repeats a statement; as a variable it would read ambiguously after a call.
RESERVED = {"x", "in", "true", "false", "and", "or", "not"}
MAX_NUMBER_DIGITS = 40  # a numeric literal longer than this is not a sensible number
MAX_LITERAL = 10**15  # as the evaluator's bound on numbers


def parse_number(text: str) -> int | float:
    """`25_557_032` -> int, `1e-6` -> float, `4.2G` -> 4_200_000_000 (K, M, G, T suffixes).
    Raises ValueError for a number too large to be meant (the caller adds the position)."""
    scale = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}.get(text[-1], 1)
    digits = text.rstrip("KMGT").replace("_", "")
    if len(digits) > MAX_NUMBER_DIGITS:
        raise ValueError(f"number with {len(digits):,} digits is too large")
    if any(c in digits for c in ".eE"):
        exact = Decimal(digits) * scale  # exact, so that 1.001K is 1001, not 1000.9999999999999
        if not exact.is_finite() or abs(exact) > MAX_LITERAL:
            raise ValueError(f"number {text} is too large")
        return int(exact) if scale > 1 and exact == exact.to_integral_value() else float(exact)
    value = int(digits) * scale
    if value > MAX_LITERAL:
        raise ValueError(f"number {text} is too large")
    return value


@v_args(meta=True)
class TreeToAst(Transformer):
    """Builds `ast` nodes; each gets the span of the parse-tree node it came from."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 1, 1)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok_span(self, tok: Token) -> Span:
        return Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    def _check_name(self, tok: Token) -> str:
        if tok.value in RESERVED:
            raise ArchSyntaxError(f"'{tok.value}' is a reserved word and cannot be a name",
                                  self._tok_span(tok), "choose another name")
        return str(tok.value)

    # declarations
    def start(self, meta, children):
        return [c for c in children if not isinstance(c, Token)]

    def import_decl(self, meta, c):
        return ast.Import(c[0][1:-1], self._span(meta))

    def block_decl(self, meta, c):
        return ast.BlockDecl(self._check_name(c[0]), tuple(c[1] or ()), c[2], self._span(meta))

    def family_decl(self, meta, c):
        return ast.FamilyDecl(self._check_name(c[0]), tuple(c[1] or ()), c[2], self._span(meta))

    def model_instance(self, meta, c):
        extra = c[3]
        for stmt in extra.stmts if extra else ():
            if not isinstance(stmt, ast.ExpectStmt):
                raise ArchSyntaxError("only `expect` statements may follow a family instance", stmt.span,
                                      "put layers in the family, or write the model inline: `model m { ... }`")
        return ast.ModelDecl(self._check_name(c[0]), str(c[1]), c[2] or ast.Args(), None,
                             self._span(meta), self._tok_span(c[1]), extra)

    def model_inline(self, meta, c):
        return ast.ModelDecl(self._check_name(c[0]), None, ast.Args(), c[1], self._span(meta))

    def params(self, meta, c):
        return [p for p in c if p is not None]

    def param(self, meta, c):
        return ast.Param(self._check_name(c[0]), c[1], self._span(meta))

    def body(self, meta, c):
        return ast.Body(tuple(s for s in c if not isinstance(s, Token)), self._span(meta))

    # statements
    def assign(self, meta, c):
        return ast.Assign(self._check_name(c[0]), c[1], self._span(meta))

    def input_stmt(self, meta, c):
        return ast.InputStmt(c[0], self._span(meta))

    def scale_stmt(self, meta, c):
        return ast.ScaleStmt(tuple(c), self._span(meta))

    def scale_width(self, meta, c):
        return ast.ScaleRule(self._check_name(c[0]), c[1], "width", c[2], c[3], None, self._span(meta))

    def scale_depth(self, meta, c):
        return ast.ScaleRule(self._check_name(c[0]), c[1], "depth", None, None, str(c[2]), self._span(meta))

    def expect_stmt(self, meta, c):
        return ast.ExpectStmt(str(c[0]), str(c[1]), c[2], self._span(meta), self._tok_span(c[0]))

    def for_stmt(self, meta, c):
        return ast.ForStmt(c[0], c[1], c[2], self._span(meta))

    def if_stmt(self, meta, c):
        otherwise = c[2]
        if isinstance(otherwise, ast.IfStmt):  # `else if` nests as a one-statement body
            otherwise = ast.Body((otherwise,), otherwise.span)
        return ast.IfStmt(c[0], c[1], otherwise, self._span(meta))

    def names(self, meta, c):
        return tuple(self._check_name(t) for t in c)

    def chain_stmt(self, meta, c):
        return ast.ChainStmt(tuple(c[0]), c[1], c[2], self._span(meta))

    def chain(self, meta, c):
        return c

    def repeat(self, meta, c):
        index = self._check_name(c[1]) if c[1] is not None else None
        return ast.Repeat(c[0], c[2], self._span(meta), index)

    def first(self, meta, c):
        return c[0] or ast.Args()

    def when(self, meta, c):
        return c[0]

    def call_el(self, meta, c):
        if c[0] == "as":  # the contextual lexer reads a stray `as` as a name
            raise ArchSyntaxError("stray 'as'", self._tok_span(c[0]),
                                  "`as NAME` names the element just before it: `conv(64, k=3) as conv1`")
        alias = self._check_name(c[2]) if c[2] is not None else None
        return ast.CallEl(str(c[0]), c[1] or ast.Args(), alias, self._span(meta), self._tok_span(c[0]))

    def section(self, meta, c):
        return ast.Section(self._check_name(c[0]), c[1], self._span(meta))

    def named_loop(self, meta, c):
        return ast.NamedLoop(self._check_name(c[0]), c[1], c[2], c[3], self._span(meta))

    def residual(self, meta, c):
        when, body, shortcut = c
        sc_when, sc_body = shortcut if shortcut is not None else (None, None)
        return ast.Residual(when, body, sc_body, sc_when, self._span(meta))

    def shortcut(self, meta, c):
        return (c[0], c[1])

    def merge(self, meta, c):
        return ast.Merge(str(c[0]), c[1] or ast.Args(), tuple(c[2]), self._span(meta), self._tok_span(c[0]))

    def concat(self, meta, c):
        span = self._span(meta)
        return ast.Merge("concat", ast.Args(), tuple(c[0]), span, Span(span.file, span.line, span.col,
                                                                        span.line, span.col + 6))

    def gate(self, meta, c):
        return ast.Gate(c[0], self._span(meta))

    def aux(self, meta, c):
        return ast.Aux(self._check_name(c[0]), c[1], self._span(meta))

    def branches(self, meta, c):
        return c

    def branch(self, meta, c):
        label = self._check_name(c[0]) if c[0] is not None else None
        return ast.Branch(label, c[1], self._span(meta), c[2])

    def args(self, meta, c):
        pos = [a for a in c if a is not None and not isinstance(a, ast.Kwarg)]
        kw = [a for a in c if isinstance(a, ast.Kwarg)]
        seen_kw = False
        names: set[str] = set()
        for a in c:
            if isinstance(a, ast.Kwarg):
                seen_kw = True
                if a.name in names:
                    raise ArchSyntaxError(f"keyword argument '{a.name}' is given twice", a.span,
                                          "give each argument once")
                names.add(a.name)
            elif a is not None and seen_kw:
                raise ArchSyntaxError("a positional argument follows a keyword argument", a.span,
                                      "put positional arguments first")
        return ast.Args(tuple(pos), tuple(kw))

    def kwarg(self, meta, c):
        return ast.Kwarg(str(c[0]), c[1], self._span(meta))

    # expressions
    def number(self, meta, c):
        try:
            return ast.Num(parse_number(str(c[0])), self._span(meta))
        except ValueError as e:
            raise ArchLimitError(str(e), self._span(meta), "numbers in a spec stay below 10^15") from None

    def string(self, meta, c):
        return ast.Str(str(c[0])[1:-1], self._span(meta))

    def name(self, meta, c):
        return ast.Name(str(c[0]), self._span(meta))

    def true(self, meta, c):
        return ast.Bool(True, self._span(meta))

    def false(self, meta, c):
        return ast.Bool(False, self._span(meta))

    def in_ref(self, meta, c):
        return ast.InRef(self._span(meta))

    def list(self, meta, c):
        return ast.ListLit(tuple(c[0] or ()), self._span(meta))

    def comprehension(self, meta, c):
        return ast.ListComp(c[0], c[1], c[2], c[3], self._span(meta))

    def exprlist(self, meta, c):
        return [e for e in c if e is not None]

    def call(self, meta, c):
        return ast.CallExpr(c[0], c[1] or ast.Args(), self._span(meta))

    def index(self, meta, c):
        return ast.Index(c[0], c[1], self._span(meta))

    def slice(self, meta, c):
        return ast.Slice(c[0], c[1], c[2], self._span(meta))

    def attr(self, meta, c):
        return ast.Attr(c[0], str(c[1]), self._span(meta))

    def cond(self, meta, c):
        return ast.Cond(c[0], c[1], c[2], self._span(meta))

    def compare(self, meta, c):
        return ast.BinOp(str(c[1]), c[0], c[2], self._span(meta))

    def _bin(op):  # noqa: N805 - a small factory for the binary operator rules
        def rule(self, meta, c):
            return ast.BinOp(op, c[0], c[1], self._span(meta))
        return rule

    or_, and_, add, sub, mul, div, floordiv, mod, pow = (
        _bin("or"), _bin("and"), _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("//"), _bin("%"), _bin("**"))

    def not_(self, meta, c):
        return ast.UnaryOp("not", c[0], self._span(meta))

    def neg(self, meta, c):
        return ast.UnaryOp("-", c[0], self._span(meta))

    def pos(self, meta, c):
        return ast.UnaryOp("+", c[0], self._span(meta))
