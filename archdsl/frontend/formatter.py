"""`archdsl fmt`: the canonical text of a spec, from its AST, comments kept.

One statement per line, two-space indents, `a -> b` with spaces, `k=3` in calls and
`x = 1` in declarations and assignments, every body on its own lines, parentheses only
where precedence needs them, number literals as written. A table (a list of lists) that
does not fit in WIDTH, or has comments among its rows, is written one row per line with a
trailing comma, each row keeping its comments; parameters or arguments holding such a
table are then written one per line. A comment stays before the
statement it preceded (own line) or after the one it followed (same line); single
blank lines between statements and declarations are kept, runs of them collapse.
Formatting is idempotent, and the formatted spec compiles to the same IR.
"""
from __future__ import annotations

from ..errors import source_line
from . import ast
from .lexical import normalize_newlines
from .parser import Comment, parse_with_comments

WIDTH = 100
INDENT = "  "

# Binding strength of each expression form (higher binds tighter); see grammar.lark.
_COND, _OR, _AND, _NOT, _CMP, _SUM, _PRODUCT, _UNARY, _POWER, _POSTFIX, _ATOM = range(11)
_BINARY = {"or": _OR, "and": _AND, "+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "//": _PRODUCT,
           "%": _PRODUCT, "**": _POWER}
_CMPS = {"==", "!=", "<", "<=", ">", ">="}


def format_text(text: str, file: str = "<spec>") -> str:
    """The canonical form of spec text (raises `ArchSyntaxError` if it does not parse)."""
    text = normalize_newlines(text)  # as the parser reads it: line numbers agree
    module, comments = parse_with_comments(text, file)
    return _Formatter(text, comments).module(module)


class _Formatter:
    def __init__(self, text: str, comments: list[Comment]):
        self.src = text.split("\n")  # the parser's lines (splitlines would also break at \f, \x85, ...)
        self.comments = list(comments)
        self.out: list[str] = []
        self.last_src = 0  # the last source line accounted for (for blank-line keeping)

    # ------------------------------------------------------------ comments and blank lines
    def _blank_between(self, a: int, b: int) -> bool:
        return any(not self.src[i - 1].strip() for i in range(max(a + 1, 1), min(b, len(self.src) + 1)))

    def _lead(self, line: int, indent: str, first: bool) -> None:
        """Own-line comments before source `line`, and the blank lines the source had."""
        while self.comments and self.comments[0].line < line:
            c = self.comments.pop(0)
            if not first and self._blank_between(self.last_src, c.line):
                self.out.append("")
            self.out.append(indent + c.text)
            self.last_src, first = c.line, False
        if not first and self._blank_between(self.last_src, line):
            self.out.append("")

    def _trail(self, upto: int) -> None:
        """Comments on lines up to `upto` (inside or after the item just written) go at its end."""
        texts = []
        while self.comments and self.comments[0].line <= upto:
            texts.append(self.comments.pop(0).text)
        if texts:
            self.out[-1] += "  " + " ".join(texts)
        self.last_src = max(self.last_src, upto)

    # ------------------------------------------------------------ declarations
    def module(self, m: ast.Module) -> str:
        for i, decl in enumerate(m.decls):
            self._lead(decl.span.line, "", first=i == 0)
            self._decl(decl)
            self._trail(_end(decl.span))
        self._lead(10**9, "", first=not m.decls)
        while self.out and not self.out[-1].strip():
            self.out.pop()
        return "\n".join(self.out) + "\n" if self.out else ""

    def _decl(self, d) -> None:
        if isinstance(d, ast.Import):
            self.out.append(f"import {_quote(d.path)}")
        elif isinstance(d, (ast.BlockDecl, ast.FamilyDecl)):
            kind = "block" if isinstance(d, ast.BlockDecl) else "family"
            params = [p.name + (f" = {self.expr(p.default)}" if p.default is not None else "") for p in d.params]
            head = f"{kind} {d.name}("
            if not self._exploded(head, [(p.name, p.default, p.span) for p in d.params], params, ") {",
                                  d.body.span.line):
                self.out.extend(_fill(head, params, ") {", ""))
            self._body(d.body, "")
        elif isinstance(d, ast.ModelDecl):
            if d.family is None:
                self.out.append(f"model {d.name} {{")
                self._body(d.body, "")
            else:
                args = self.args(d.args, " = ")
                tail = " {" if d.expects is not None else ""
                head = f"model {d.name} = {d.family}("
                named = [(None, a, a.span) for a in d.args.positional] + [(k.name, k.value, k.span)
                                                                          for k in d.args.keyword]
                end = d.expects.span.line if d.expects is not None else _end(d.span)
                if not self._exploded(head, named, args, ")" + tail, end):
                    self.out.extend(_fill(head, args, ")" + tail, ""))
                if d.expects is not None:
                    self._body(d.expects, "")
        elif isinstance(d, ast.Assign):
            self.out.extend(self._value_lines(f"{d.name} = ", d.value, "", ""))
        else:  # pragma: no cover - the parser makes no other declarations
            raise TypeError(type(d).__name__)

    def _body(self, body: ast.Body, indent: str) -> None:
        """The statements of a body whose '{' ends the last line written, then its '}'."""
        inner = indent + INDENT
        self.last_src = body.span.line
        for i, stmt in enumerate(body.stmts):
            self._lead(stmt.span.line, inner, first=i == 0)
            self._stmt(stmt, inner)
            self._trail(_end(stmt.span))
        self._lead(_end(body.span), inner, first=True)
        self.out.append(indent + "}")
        self.last_src = _end(body.span)

    # ------------------------------------------------------------ statements
    def _stmt(self, s, indent: str) -> None:
        if isinstance(s, ast.Assign):
            self.out.extend(self._value_lines(f"{indent}{s.name} = ", s.value, "", indent))
        elif isinstance(s, ast.InputStmt):
            self.out.append(f"{indent}input {self.expr(s.shape)}")
        elif isinstance(s, ast.ExpectStmt):
            self.out.append(f"{indent}expect {s.subject} {s.op} {self.expr(s.value)}")
        elif isinstance(s, ast.ScaleStmt):
            self.out.append(f"{indent}scale " + ", ".join(self._scale_rule(r) for r in s.rules))
        elif isinstance(s, ast.ForStmt):
            self._iterable_line(f"{indent}for {', '.join(s.names)} in ", s.iterable, " {", indent)
            self._body(s.body, indent)
        elif isinstance(s, ast.IfStmt):
            self.out.append(f"{indent}if {self.expr(s.test)} {{")
            self._if_rest(s, indent)
        elif isinstance(s, ast.ChainStmt):
            self._chain(s, indent)
        else:  # pragma: no cover
            raise TypeError(type(s).__name__)

    def _if_rest(self, s: ast.IfStmt, indent: str) -> None:
        self._body(s.then, indent)
        other = s.otherwise
        if other is None:
            return
        if len(other.stmts) == 1 and isinstance(other.stmts[0], ast.IfStmt) and other.span == other.stmts[0].span:
            nested = other.stmts[0]
            self.out[-1] += f" else if {self.expr(nested.test)} {{"
            self._if_rest(nested, indent)
        else:
            self.out[-1] += " else {"
            self._body(other, indent)

    # ------------------------------------------------------------ tables
    def _value_lines(self, head: str, e, tail: str, indent: str) -> list[str]:
        """`head` + the expression + `tail`; a table (a list of lists) that does not fit on
        the line, or has comments among its rows, is written one row per line, each row
        keeping the comments written on it."""
        one = head + self.expr(e) + tail
        if not _is_table(e) or len(one) <= WIDTH and not self._comments_within(e.span):
            return [one]
        inner = indent + INDENT
        lines = [head + "["]
        for i, row in enumerate(e.items):
            while self.comments and self.comments[0].line < row.span.line:  # own-line comments
                lines.append(inner + self.comments.pop(0).text)
            line = f"{inner}{self.expr(row)},"
            texts = []  # a comment after several rows on one line stays with the last of them
            upto = min(_end(row.span), e.items[i + 1].span.line - 1) if i + 1 < len(e.items) else _end(row.span)
            while self.comments and self.comments[0].line <= upto:
                texts.append(self.comments.pop(0).text)
            lines.append(line + ("  " + " ".join(texts) if texts else ""))
        while self.comments and self.comments[0].line < _end(e.span):
            lines.append(inner + self.comments.pop(0).text)
        lines.append(indent + "]" + tail)
        return lines

    def _comments_within(self, span) -> bool:
        return bool(self.comments) and self.comments[0].line < _end(span) and any(
            span.line <= c.line < _end(span) for c in self.comments)

    def _exploded(self, head: str, items: list, texts: list[str], tail: str, end_line: int) -> bool:
        """Parameters or arguments (name, value, span) holding a table, when they do not fit
        or have comments among them (before `end_line`): one per line, with their comments,
        the table row by row (`family f(\n  blocks = [\n    [...],\n  ],\n) {`). False when
        they are written the usual way."""
        if not any(_is_table(v) for _, v, _ in items):
            return False
        commented = bool(self.comments) and self.comments[0].line < end_line
        if len(head + ", ".join(texts) + tail) <= WIDTH and not commented:
            return False
        self.out.append(head)
        for name, value, span in items:
            while self.comments and self.comments[0].line < span.line:
                self.out.append(INDENT + self.comments.pop(0).text)
            prefix = INDENT + (f"{name} = " if name is not None else "")
            if value is None:
                self.out.append(f"{INDENT}{name},")
            else:
                self.out.extend(self._value_lines(prefix, value, ",", INDENT))
            texts = []
            while self.comments and self.comments[0].line <= _end(span) and self.comments[0].line < end_line:
                texts.append(self.comments.pop(0).text)
            if texts:
                self.out[-1] += "  " + " ".join(texts)
        self.out.append(tail)
        return True

    def _scale_rule(self, r: ast.ScaleRule) -> str:
        text = f"{r.name} = {self.expr(r.factor)}"
        if r.kind == "width":
            text += f" divisible_by {self.expr(r.divisor)}"
            if r.minimum is not None:
                text += f" min {self.expr(r.minimum)}"
            return text
        return text + f" rounding {r.rounding}"

    def _iterable_line(self, head: str, e, tail: str, indent: str) -> None:
        if _is_table(e) and (len(head) + len(self.expr(e)) + len(tail) > WIDTH or self._comments_within(e.span)):
            self.out.extend(self._value_lines(head, e, tail, indent))
        elif isinstance(e, ast.ListLit) and len(head) + len(self.expr(e)) + len(tail) > WIDTH:
            self.out.extend(_fill(head + "[", [self.expr(i) for i in e.items], "]" + tail, ""))
        else:
            self.out.append(head + self.expr(e) + tail)

    def _chain(self, s: ast.ChainStmt, indent: str) -> None:
        for i, el in enumerate(s.elements):
            if i == 0:
                self._element(el, indent, indent)
            elif self.out[-1].endswith("}"):  # after a body: `-> next` starts its own line
                self._element(el, indent, indent + "-> ")
            else:
                self._element(el, indent, None)
        tail = ""
        if s.repeat is not None:
            tail += f" x {self.expr(s.repeat.count, _OR)}"
            if s.repeat.index is not None:
                tail += f" with {s.repeat.index}"
            if s.repeat.first is not None:
                tail += f" first({', '.join(self.args(s.repeat.first, ' = '))})"
        if s.when is not None:
            tail += f" when {self.expr(s.when)}"
        self.out[-1] += tail

    def _element(self, el, indent: str, start: str | None) -> None:
        """Write one chain element: on a new line beginning with `start`, or after ' -> '."""
        head = self._element_head(el)
        if start is None:
            line = self.out[-1] + " -> " + head
            if isinstance(el, ast.CallEl) and len(line) > WIDTH and el.args != ast.Args():
                self.out[-1] += " -> " + el.name + "("
                self.out[-1:] = _fill(self.out[-1], self.args(el.args), ")" + _alias(el), "")
            else:
                self.out[-1] = line
        elif isinstance(el, ast.CallEl) and len(start + head) > WIDTH and el.args != ast.Args():
            self.out.extend(_fill(f"{start}{el.name}(", self.args(el.args), ")" + _alias(el), ""))
        elif isinstance(el, ast.NamedLoop) and _is_table(el.iterable):
            self.out.extend(self._value_lines(f"{start}{el.name} for {', '.join(el.names)} in ", el.iterable, " {",
                                              indent))
        else:
            self.out.append(start + head)
        if isinstance(el, (ast.Section, ast.NamedLoop, ast.Gate, ast.Aux)):
            self._body(el.body, indent)
        elif isinstance(el, ast.Residual):
            self._body(el.body, indent)
            if el.shortcut is not None:
                when = f" when {self.expr(el.shortcut_when)}" if el.shortcut_when is not None else ""
                self.out[-1] += f" shortcut{when} {{"
                self._body(el.shortcut, indent)
        elif isinstance(el, ast.Merge):
            inner = indent + INDENT
            self.last_src = el.span.line
            for i, br in enumerate(el.branches):
                self._lead(br.span.line, inner, first=i == 0)
                opening = inner + (f"{br.label} {{" if br.label else "{")
                short = self._one_line(br.body)
                when = f" when {self.expr(br.when)}" if br.when is not None else ""
                if short is not None and len(opening) + len(short) + 4 + len(when) <= WIDTH:
                    self.out.append(f"{opening} {short} }}{when}")  # `query { linear(dim) }`
                else:
                    self.out.append(opening)
                    self._body(br.body, inner)
                    self.out[-1] += when
                self._trail(_end(br.span))
            self._lead(_end(el.span), inner, first=True)
            self.out.append(indent + "}")

    def _one_line(self, body: ast.Body) -> str | None:
        """A branch body of one simple chain, without comments, as one line; else None."""
        if len(body.stmts) != 1 or not isinstance(body.stmts[0], ast.ChainStmt):
            return None
        stmt = body.stmts[0]
        if not all(isinstance(el, ast.CallEl) for el in stmt.elements):
            return None
        if any(body.span.line <= c.line <= _end(body.span) for c in self.comments):
            return None
        mark = len(self.out)
        self.out.append("")
        self._chain(stmt, "")
        lines = self.out[mark:]
        del self.out[mark:]
        return lines[1] if len(lines) == 2 else None

    def _element_head(self, el) -> str:
        if isinstance(el, ast.CallEl):
            args = self.args(el.args)
            return el.name + (f"({', '.join(args)})" if args else "") + _alias(el)
        if isinstance(el, ast.Section):
            return f"{el.name} {{"
        if isinstance(el, ast.NamedLoop):
            return f"{el.name} for {', '.join(el.names)} in {self.expr(el.iterable)} {{"
        if isinstance(el, ast.Residual):
            return "residual" + (f" when {self.expr(el.when)}" if el.when is not None else "") + " {"
        if isinstance(el, ast.Merge):
            if el.op == "concat" and el.args == ast.Args():
                return "concat {"
            args = self.args(el.args)
            return f"merge {el.op}" + (f"({', '.join(args)})" if args else "") + " {"
        if isinstance(el, ast.Gate):
            return "gate {"
        if isinstance(el, ast.Aux):
            return f"aux {el.name} {{"
        raise TypeError(type(el).__name__)  # pragma: no cover

    # ------------------------------------------------------------ expressions
    def args(self, a: ast.Args, eq: str = "=") -> list[str]:
        """Call arguments: `k=3` in calls; `name = value` (eq=" = ") where they read as declarations."""
        return [self.expr(p) for p in a.positional] + [f"{k.name}{eq}{self.expr(k.value)}" for k in a.keyword]

    def expr(self, e, need: int = _COND) -> str:
        text, level = self._expr(e)
        return f"({text})" if level < need else text

    def _expr(self, e) -> tuple[str, int]:
        if isinstance(e, ast.Num):
            return self._literal(e, _number(e.value)), _ATOM
        if isinstance(e, ast.Str):
            return _quote(e.value), _ATOM
        if isinstance(e, ast.Bool):
            return ("true" if e.value else "false"), _ATOM
        if isinstance(e, ast.Name):
            return e.id, _ATOM
        if isinstance(e, ast.InRef):
            return "in", _ATOM
        if isinstance(e, ast.ListLit):
            return "[" + ", ".join(self.expr(i) for i in e.items) + "]", _ATOM
        if isinstance(e, ast.ListComp):
            cond = f" if {self.expr(e.cond)}" if e.cond is not None else ""
            return f"[{self.expr(e.item)} for {', '.join(e.names)} in {self.expr(e.iterable)}{cond}]", _ATOM
        if isinstance(e, ast.CallExpr):
            return f"{self.expr(e.func, _POSTFIX)}({', '.join(self.args(e.args))})", _POSTFIX
        if isinstance(e, ast.Index):
            return f"{self.expr(e.value, _POSTFIX)}[{self.expr(e.index)}]", _POSTFIX
        if isinstance(e, ast.Slice):
            lo = self.expr(e.lower) if e.lower is not None else ""
            hi = self.expr(e.upper) if e.upper is not None else ""
            return f"{self.expr(e.value, _POSTFIX)}[{lo}:{hi}]", _POSTFIX
        if isinstance(e, ast.Attr):
            return f"{self.expr(e.value, _POSTFIX)}.{e.name}", _POSTFIX
        if isinstance(e, ast.Cond):
            return f"{self.expr(e.test, _OR)} ? {self.expr(e.then)} : {self.expr(e.otherwise)}", _COND
        if isinstance(e, ast.UnaryOp):
            if e.op == "not":
                return f"not {self.expr(e.operand, _NOT)}", _NOT
            return f"{e.op}{self.expr(e.operand, _UNARY)}", _UNARY
        if isinstance(e, ast.BinOp):
            if e.op in _CMPS:
                return f"{self.expr(e.left, _SUM)} {e.op} {self.expr(e.right, _SUM)}", _CMP
            level = _BINARY[e.op]
            if e.op == "**":
                return f"{self.expr(e.left, _POSTFIX)} ** {self.expr(e.right, _UNARY)}", _POWER
            return f"{self.expr(e.left, level)} {e.op} {self.expr(e.right, level + 1)}", level
        raise TypeError(type(e).__name__)  # pragma: no cover

    def _literal(self, e: ast.Num, fallback: str) -> str:
        """A number as the spec wrote it (`25_557_032`, `1e-6`, `4.2G`)."""
        s = e.span
        if s.end_line not in (None, s.line) or not s.end_col:
            return fallback
        line = source_line(s.file, s.line)
        text = line[s.col - 1 : s.end_col - 1] if line is not None else ""
        return text if text and text[0].isdigit() and " " not in text else fallback


def _end(span) -> int:
    return span.end_line or span.line


def _is_table(e) -> bool:
    """A list of two or more lists: a table of rows (MobileNet's and EfficientNet's stages)."""
    return isinstance(e, ast.ListLit) and len(e.items) > 1 and all(isinstance(i, ast.ListLit) for i in e.items)


def _alias(el: ast.CallEl) -> str:
    return f" as {el.alias}" if el.alias else ""


def _quote(s: str) -> str:
    return f'"{s}"'


def _number(v) -> str:
    return repr(v)


def _fill(head: str, items: list[str], tail: str, _indent: str) -> list[str]:
    """`head` + items joined by ', ' + `tail`; past WIDTH, items continue on lines aligned
    just after `head` (the house style of the standard library)."""
    one = head + ", ".join(items) + tail
    if len(one) <= WIDTH or not items:
        return [one]
    pad = " " * len(head)
    lines, cur = [], head
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else tail)
        if cur.strip() and cur != head and len(cur) + 1 + len(piece) > WIDTH:
            lines.append(cur.rstrip())
            cur = pad + piece
        else:
            cur = cur + ("" if cur == head else " ") + piece
    lines.append(cur)
    return lines
