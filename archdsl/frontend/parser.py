"""Text to typed AST: the lark grammar plus a transformer that keeps every position."""
from __future__ import annotations

import functools
from importlib import resources

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ..errors import ArchDSLError, ArchSyntaxError, Span, remember_source
from . import ast

# `x` repeats a statement; as a variable it would read ambiguously after a call.
RESERVED = {"x", "in", "true", "false", "and", "or", "not"}

# Human names for terminals in "expected ..." hints.
_TERMINAL_NAMES = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "LPAR": "'('", "RPAR": "')'",
    "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "EQUAL": "'='",
    "SEMICOLON": "';'", "COLON": "':'", "DOT": "'.'", "CMP": "a comparison", "__ANON_0": "'->'",
}


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files("archdsl.frontend").joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=True)


def parse(text: str, file: str = "<spec>") -> ast.Module:
    """Parse spec text into an `ast.Module`; raises `ArchSyntaxError` at the offending token."""
    remember_source(file, text)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, file) from None
    try:
        decls = _ToAst(file).transform(tree)
    except VisitError as e:  # errors raised inside the transformer arrive wrapped
        if isinstance(e.orig_exc, ArchDSLError):
            raise e.orig_exc from None
        raise
    return ast.Module(file=file, decls=tuple(decls))


def _end_position(text: str) -> tuple[int, int]:
    """Line and column just past the last non-blank character (lark reports -1 at EOF)."""
    stripped = text.rstrip()
    line = stripped.count("\n") + 1
    col = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, col


def _syntax_error(e: UnexpectedInput, text: str, file: str) -> ArchSyntaxError:
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        line, col = _end_position(text)
        expected = getattr(e, "expected", None) or getattr(e, "accepts", None) or set()
        return ArchSyntaxError("unexpected end of file", Span(file, line, col, line, col + 1),
                               _expected_hint(expected) or "a '{' or '(' may be missing its closing pair")
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        span = Span(file, e.line, e.column, e.line, e.column + 1)
        return ArchSyntaxError(f"unexpected character {ch!r}", span, _expected_hint(e.allowed))
    if isinstance(e, UnexpectedToken):
        tok = e.token
        width = max(1, len(str(tok.value)))
        span = Span(file, tok.line, tok.column, tok.line, tok.column + width)
        hint = _expected_hint(e.accepts or e.expected)
        if tok.type == "NAME" and tok.value in RESERVED or tok.value in RESERVED:
            hint = f"'{tok.value}' is a reserved word; " + (hint or "choose another name")
        return ArchSyntaxError(f"unexpected {_describe(tok)}", span, hint)
    line, col = getattr(e, "line", 1), getattr(e, "column", 1)
    return ArchSyntaxError("invalid syntax", Span(file, max(line, 1), max(col, 1)))


def _describe(tok: Token) -> str:
    if tok.type == "NAME":
        return f"name '{tok.value}'"
    if tok.type == "NUMBER":
        return f"number {tok.value}"
    return f"'{tok.value}'"


def _expected_hint(expected) -> str | None:
    if not expected:
        return None
    names = sorted({_TERMINAL_NAMES.get(t, f"'{t.lower()}'" if t.isupper() and t.isalpha() else t)
                    for t in expected})
    if len(names) > 8:
        return None
    return "expected " + ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]


def parse_number(text: str) -> int | float:
    """`25_557_032` -> int, `1e-6` -> float, `4.2G` -> 4_200_000_000 (K, M, G, T suffixes)."""
    scale = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}.get(text[-1], 1)
    digits = text.rstrip("KMGT").replace("_", "")
    if any(c in digits for c in ".eE"):
        value = float(digits) * scale
        return int(value) if scale > 1 and value.is_integer() else value
    return int(digits) * scale


@v_args(meta=True)
class _ToAst(Transformer):
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
        return ast.Repeat(c[0], c[1], self._span(meta))

    def first(self, meta, c):
        return c[0] or ast.Args()

    def when(self, meta, c):
        return c[0]

    def call_el(self, meta, c):
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

    def branches(self, meta, c):
        return c

    def branch(self, meta, c):
        label = self._check_name(c[0]) if c[0] is not None else None
        return ast.Branch(label, c[1], self._span(meta))

    def args(self, meta, c):
        pos = [a for a in c if a is not None and not isinstance(a, ast.Kwarg)]
        kw = [a for a in c if isinstance(a, ast.Kwarg)]
        seen_kw = False
        for a in c:
            if isinstance(a, ast.Kwarg):
                seen_kw = True
            elif a is not None and seen_kw:
                raise ArchSyntaxError("a positional argument follows a keyword argument", a.span,
                                      "put positional arguments first")
        return ast.Args(tuple(pos), tuple(kw))

    def kwarg(self, meta, c):
        return ast.Kwarg(str(c[0]), c[1], self._span(meta))

    # expressions
    def number(self, meta, c):
        return ast.Num(parse_number(str(c[0])), self._span(meta))

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
