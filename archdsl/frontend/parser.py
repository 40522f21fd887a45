"""Text to typed AST: the lark grammar plus a transformer that keeps every position."""
from __future__ import annotations

import contextvars
import functools
import re
from dataclasses import dataclass
from importlib import resources

from lark import Lark, Token, Tree
from lark.lark import PostLex
from lark.parsers.lalr_analysis import Shift
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ..errors import ArchDSLError, ArchLimitError, ArchSyntaxError, SourceName, Span, remember_source
from . import ast
from .lexical import check_characters, normalize_newlines
from .grammar_cache import cached_lark
from .tree_to_ast import RESERVED, TreeToAst, parse_number  # noqa: F401 - parse_number is public here


# The source may nest (brackets, blocks, operator chains) at most this deep: the parse tree
# is transformed and evaluated recursively, so deeper text would exhaust Python's stack.
# The shipped specs and the standard library nest at most 23 levels.
MAX_NESTING = 100
MAX_ERRORS = 5  # syntax errors reported from one file; later ones are usually echoes
# Tokens in one file. A family with its blocks is about a thousand; lark builds trees at a
# few thousand tokens per second here, so megabytes of tokens would take minutes.
MAX_TOKENS = 20_000
_TOKEN = re.compile(r'#[^\n]*|"[^"\n]*"|[A-Za-z0-9_.]+|\S')

# Human names for terminals in "expected ..." hints.
_TERMINAL_NAMES = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "LPAR": "'('", "RPAR": "')'",
    "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "EQUAL": "'='",
    "SEMICOLON": "';'", "COLON": "':'", "DOT": "'.'", "CMP": "a comparison", "__ANON_0": "'->'",
    "__ANON_1": "'//'", "__ANON_2": "'**'", "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'",
    "PERCENT": "'%'", "QMARK": "'?'", "$END": "the end of the file",
}
_ARROW = "__ANON_0"



@dataclass
class _ParseContext:
    """What one parse's lexer callbacks need: its text, and a list for the comments lark
    drops from the tree. It travels in a context variable, so that threads (each with its
    own context) parsing at once never see each other's text or comments."""

    text: str
    comments: list[Token]


_CONTEXT: contextvars.ContextVar[_ParseContext] = contextvars.ContextVar("archdsl_parse_context")


def _on_comment(tok: Token) -> Token:
    context = _CONTEXT.get(None)
    if context is not None:
        context.comments.append(tok)
    return tok


# Declaration keywords are never followed by '(': followed by one, the word is a name (a
# block parameter called `block`, say). LALR merges the states after an expression, so
# without this `w = 4  block(w)` would read `block` as the keyword that starts a top-level
# declaration.
_DECLARATION_KEYWORDS = ("BLOCK", "FAMILY", "MODEL", "IMPORT", "SCALE", "EXPECT", "FOR")


class _KeywordsBeforeParens(PostLex):
    """Retypes a declaration keyword directly followed by '(' as a name."""

    always_accept = ()

    def process(self, stream):
        text = _CONTEXT.get().text
        for tok in stream:
            if tok.type in _DECLARATION_KEYWORDS:
                end = tok.end_pos
                while end < len(text) and text[end] in " \t\r\n":
                    end += 1
                if end < len(text) and text[end] == "(":
                    tok = Token.new_borrow_pos("NAME", tok.value, tok)
            yield tok


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    """The parser, built once per process; its LALR tables come from lark's cache when one is
    there (`grammar_cache.py`: a per-user file keyed on the grammar and lark's version)."""
    grammar = resources.files("archdsl.frontend").joinpath("grammar.lark").read_text()
    options = dict(parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=True,
                   lexer_callbacks={"COMMENT": _on_comment}, postlex=_KeywordsBeforeParens())
    return cached_lark(grammar, options)


@functools.lru_cache(maxsize=1)
def _keywords() -> frozenset[str]:
    """Words the grammar spells literally (`block`, `residual`, `when`, ...)."""
    return frozenset(t.pattern.value for t in _lark().terminals
                     if t.pattern.type == "str" and t.pattern.value.isidentifier())


@dataclass(frozen=True)
class Comment:
    """A `# ...` comment: its position and text (with the '#')."""

    line: int
    col: int
    text: str


def parse(text: str, file: str = "<spec>") -> ast.Module:
    """Parse spec text into an `ast.Module`; raises `ArchSyntaxError` at the offending token
    (with up to MAX_ERRORS - 1 further independent syntax errors in `.related`)."""
    return parse_with_comments(text, file)[0]


def parse_with_comments(text: str, file: str = "<spec>") -> tuple[ast.Module, list[Comment]]:
    """`parse`, and the file's comments in order (the formatter keeps them)."""
    text = normalize_newlines(text)  # a lone \r is a line break too (lexical.py)
    file = SourceName(file, text)  # every span made from this parse can quote this text
    remember_source(file, text)
    check_characters(text, file)
    _check_size(text, file)
    errors: list[ArchSyntaxError] = []
    comments: list[Token] = []
    parser = _lark()
    token = _CONTEXT.set(_ParseContext(text, comments))
    try:
        tree = parser.parse(text, on_error=lambda e: _recover(e, errors, text, file))
    except UnexpectedInput as e:
        if not errors:
            errors.append(_syntax_error(e, text, file))
        tree = None
    finally:
        _CONTEXT.reset(token)
    if errors:
        raise _syntax_errors(errors)
    _check_nesting(tree, file)
    try:
        decls = TreeToAst(file).transform(tree)
    except VisitError as e:  # errors raised inside the transformer arrive wrapped
        if isinstance(e.orig_exc, ArchDSLError):
            raise e.orig_exc from None
        raise
    notes = [Comment(t.line, t.column, str(t.value).rstrip()) for t in comments]
    return ast.Module(file=file, decls=tuple(decls)), notes


# ------------------------------------------------------------------ error recovery
def _recover(e: UnexpectedInput, errors: list[ArchSyntaxError], text: str, file: str) -> bool:
    """lark's `on_error`: note the error, then resynchronise at a statement boundary so that
    independent mistakes further down are reported too. Returns False to stop parsing."""
    line = getattr(e, "line", -1)
    echo = bool(errors) and line == errors[-1].span.line  # the same line: an echo, not news
    if not echo:
        errors.append(_syntax_error(e, text, file))  # now: recovery changes the parser's stack
    if len(errors) >= MAX_ERRORS:
        return False
    if isinstance(e, UnexpectedToken):
        if e.token.type == "$END":
            return False
        if not echo:
            _unwind_to_statement(e.interactive_parser, e.token)
    return True  # the offending token (or character) is skipped


def _unwind_to_statement(ip, token: Token) -> None:
    """Pop the parser's stack back to the innermost state where a statement can begin (inside
    a `{ ... }` body, or the top level): the rest of the broken statement is then skipped. The
    offending token is kept when it fits there (a '}' closing the body, a name starting the
    next statement)."""
    state = ip.parser_state
    table = state.parse_conf.states
    stack, values = state.state_stack, state.value_stack
    while len(stack) > 1:
        actions = table[stack[-1]]
        if _shifts(actions, "NAME") and (_shifts(actions, "RBRACE") or _shifts(actions, "BLOCK")):
            break
        stack.pop()
        if values:
            values.pop()
    if token.type in table[stack[-1]]:
        try:
            state.feed_token(token)
        except UnexpectedInput:
            pass


def _shifts(actions, terminal: str) -> bool:
    return terminal in actions and actions[terminal][0] is Shift


def _syntax_errors(errors: list[ArchSyntaxError]) -> ArchSyntaxError:
    first, *rest = errors
    seen = {(first.span.line, first.span.col)}
    for err in rest:
        if (err.span.line, err.span.col) not in seen:
            seen.add((err.span.line, err.span.col))
            first.related.append(err)
    return first


def _end_position(text: str) -> tuple[int, int]:
    """Line and column just past the last non-blank character (lark reports -1 at EOF)."""
    stripped = text.rstrip()
    line = stripped.count("\n") + 1
    col = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, col


def _unclosed(text: str, upto: int | None = None) -> tuple[str, int, int] | None:
    """The innermost bracket still open at offset `upto` (default: the end): (char, line, col)."""
    stack: list[tuple[str, int]] = []
    i, n = 0, len(text) if upto is None else min(upto, len(text))
    pairs = {")": "(", "]": "[", "}": "{"}
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if ch == '"':
            j = text.find('"', i + 1)
            k = text.find("\n", i + 1)
            i = (j if j >= 0 and (k < 0 or j < k) else (k if k >= 0 else n))
        elif ch in "([{":
            stack.append((ch, i))
        elif ch in pairs and stack and stack[-1][0] == pairs[ch]:
            stack.pop()
        i += 1
    if not stack:
        return None
    ch, pos = stack[-1]
    line = text.count("\n", 0, pos) + 1
    return ch, line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _previous_token(e: UnexpectedToken) -> Token | None:
    ip = getattr(e, "interactive_parser", None)
    values = ip.parser_state.value_stack if ip is not None else []
    last = values[-1] if values else None
    while last is not None and not isinstance(last, Token):  # a reduced rule: its last token
        children = getattr(last, "children", None)
        last = next((c for c in reversed(children) if c is not None), None) if children else None
    return last


def _syntax_error(e: UnexpectedInput, text: str, file: str) -> ArchSyntaxError:
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        line, col = _end_position(text)
        expected = getattr(e, "expected", None) or getattr(e, "accepts", None) or set()
        open_ = _unclosed(text)
        if open_ is not None:
            ch, oline, ocol = open_
            close = {"(": ")", "[": "]", "{": "}"}[ch]
            hint = f"the '{ch}' at line {oline}, column {ocol} is never closed: add a '{close}'"
        else:
            hint = _expected_hint(expected) or "the file stops in the middle of a statement"
        prev = _previous_token(e) if isinstance(e, UnexpectedToken) else None
        if prev is not None and prev.type == _ARROW:
            hint = "a '->' must be followed by another element: remove the trailing '->'"
        return ArchSyntaxError("unexpected end of file", Span(file, line, col, line, col + 1), hint)
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        span = Span(file, e.line, e.column, e.line, e.column + 1)
        hint = _expected_hint(e.allowed)
        if ch == "'":
            hint = 'strings use double quotes: "..."'
        elif ch == '"':
            hint = "a string must end on the line it starts"
        elif ch == "=" and text[e.pos_in_stream:e.pos_in_stream + 2] != "==":
            hint = "to compare, write '=='"
        elif ch == "!":
            hint = "write 'not' for negation, '!=' for inequality"
        elif ch == "&" or ch == "|":
            hint = "write 'and' / 'or'"
        return ArchSyntaxError(f"unexpected character {ch!r}", span, hint)
    if isinstance(e, UnexpectedToken):
        return _token_error(e, text, file)
    line, col = getattr(e, "line", 1), getattr(e, "column", 1)
    return ArchSyntaxError("invalid syntax", Span(file, max(line, 1), max(col, 1)))


def _token_error(e: UnexpectedToken, text: str, file: str) -> ArchSyntaxError:
    tok = e.token
    width = max(1, len(str(tok.value)))
    span = Span(file, tok.line, tok.column, tok.line, tok.column + width)
    expected = set(e.accepts or e.expected or ())
    hint = _expected_hint(expected)
    prev = _previous_token(e)
    message = f"unexpected {_describe(tok)}"
    offset = _offset(text, tok.line, tok.column)
    if tok.value == ">" and offset > 0 and text[offset - 1] == "-" and _open_paren_before(text, tok):
        where = _unclosed(text, offset)
        message = "missing ')' before '->'"
        span = Span(file, tok.line, tok.column - 1, tok.line, tok.column + 1)
        hint = f"close the '(' opened at line {where[1]}, column {where[2]}"
    elif tok.value in RESERVED:
        hint = f"'{tok.value}' is a reserved word; " + (hint or "choose another name")
    elif tok.type != "NAME" and str(tok.value) in _keywords() and "NAME" in expected:
        hint = f"'{tok.value}' is a keyword and cannot be a name; choose another name"
    elif tok.type == "EQUAL" and "CMP" in expected:
        hint = "to compare, write '=='"
    elif prev is not None and prev.type == _ARROW:
        message = f"'->' is followed by {_describe(tok)}, not an element"
        span = Span(file, prev.line, prev.column, prev.line, prev.column + 2)
        hint = "a '->' must be followed by another element (a block, an op, a section): remove the trailing '->'"
    elif tok.type == "AS":
        hint = "`as NAME` names the element just before it: `conv(64, k=3) as conv1`"
    elif prev is not None and prev.type == "AS":
        hint = "`as` must be followed by a name: `conv(64, k=3) as conv1`"
    elif "RPAR" in expected and "RBRACE" not in expected and _open_paren_before(text, tok):
        where = _unclosed(text, _offset(text, tok.line, tok.column))
        at = f" opened at line {where[1]}, column {where[2]}" if where and where[0] == "(" else ""
        message = f"missing ')' before {_describe(tok)}"
        hint = f"close the '('{at}" + (", or separate arguments with ','" if "COMMA" in expected else "")
    elif "RSQB" in expected and "RBRACE" not in expected and "RPAR" not in expected:
        message = f"missing ']' before {_describe(tok)}"
        hint = "close the '[', or separate items with ','" if "COMMA" in expected else "close the '['"
    elif expected == {"LBRACE"} or (tok.type != "LBRACE" and "LBRACE" in expected and "NAME" not in expected
                                    and "LPAR" not in expected):
        message = f"missing '{{' before {_describe(tok)}"
        hint = "a body is written between '{' and '}'"
    elif tok.type == "RBRACE" and _unclosed(text, _offset(text, tok.line, tok.column)) is None:
        message = "unmatched '}'"
        hint = "this '}' closes nothing: remove it, or add the '{' it belongs to"
    return ArchSyntaxError(message, span, hint)


def _offset(text: str, line: int, col: int) -> int:
    pos = 0
    for _ in range(line - 1):
        j = text.find("\n", pos)
        if j < 0:
            return len(text)
        pos = j + 1
    return pos + col - 1


def _open_paren_before(text: str, tok: Token) -> bool:
    where = _unclosed(text, _offset(text, tok.line, tok.column))
    return where is not None and where[0] == "("


def _describe(tok: Token) -> str:
    if tok.type == "NAME":
        return f"name '{tok.value}'"
    if tok.type == "NUMBER":
        return f"number {tok.value}"
    if tok.type == "STRING":
        return f"string {tok.value}"
    if tok.type == "$END":
        return "the end of the file"
    return f"'{tok.value}'"


def _expected_hint(expected) -> str | None:
    if not expected:
        return None
    names = sorted({_TERMINAL_NAMES.get(t, f"'{t.lower()}'" if t.isupper() and t.replace("_", "").isalpha() else t)
                    for t in expected})
    if len(names) > 8:
        return None
    return "expected " + ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]


def _check_size(text: str, file: str) -> None:
    """Refuse a file of more than MAX_TOKENS tokens before parsing it (the scan stops there)."""
    if len(text) < MAX_TOKENS:
        return
    count = 0
    for m in _TOKEN.finditer(text):
        if m.group()[0] == "#":
            continue
        count += 1
        if count > MAX_TOKENS:
            line = text.count("\n", 0, m.start()) + 1
            col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
            raise ArchLimitError(f"the spec has more than {MAX_TOKENS:,} tokens", Span(file, line, col),
                                 "a spec is a page of text: split it into files, or loop instead of listing")


def _check_nesting(tree: Tree, file: str) -> None:
    """Refuse source nested deeper than MAX_NESTING (iteratively: no recursion here)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            meta = node.meta
            line, col = (meta.line, meta.column) if not getattr(meta, "empty", True) else (1, 1)
            raise ArchLimitError(f"the spec nests more than {MAX_NESTING} levels deep here", Span(file, line, col),
                                 "split deep expressions or bodies with intermediate names or blocks")
        for child in node.children:
            if isinstance(child, Tree):
                stack.append((child, depth + 1))
