"""Diagnostics: every error a user can cause carries the spec position that caused it.

An `ArchDSLError` names a `Span` of spec text (file, 1-based line and column, end
column), says what is wrong in the spec's own terms, and may carry a hint and the
chain of use sites that led to it (a block's body error shows where the block was
called). `render()` turns it into the `file:line:col: error: ...` form compilers use.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable

class SourceName(str):
    """A file name (`specs/resnet50.arch`, `<spec>`) that carries the text it was parsed from.

    The parser gives every span it makes this name, so a diagnostic quotes the very text
    that caused it: two inline specs both called `<spec>`, compiled on two threads, never
    quote each other's lines. It is a `str` in every other respect (equal to and hashing
    like the plain name)."""

    def __new__(cls, name: str, text: str):
        obj = super().__new__(cls, name)
        obj.text = text
        return obj

    def lines(self) -> list[str]:
        lines = self.__dict__.get("_lines")
        if lines is None:  # computed once; a race only computes it twice
            lines = self.__dict__["_lines"] = self.text.splitlines()
        return lines

    def __reduce__(self):
        return (SourceName, (str(self), self.text))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self  # immutable: spans of a copied graph share their text


# The latest text parsed under each plain file name: only for spans made without a
# `SourceName` (a name typed as a plain str). Parsing the same name again replaces it.
_SOURCE_TEXTS: dict[str, str] = {}


def remember_source(file: str, text: str) -> None:
    _SOURCE_TEXTS[str(file)] = text


def source_known(file: str) -> bool:
    return isinstance(file, SourceName) or file in _SOURCE_TEXTS


def source_line(file: str, line: int) -> str | None:
    """Line `line` (1-based) of the text `file` names, or None."""
    if line < 1:
        return None
    if isinstance(file, SourceName):
        lines = file.lines()
    else:
        text = _SOURCE_TEXTS.get(file)
        if text is None:
            return None
        lines = text.splitlines()
    return lines[line - 1] if line <= len(lines) else None


@dataclass(frozen=True)
class Span:
    """A region of spec text; lines and columns are 1-based, end_col exclusive."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @property
    def text(self) -> str | None:
        """The spec text the span covers (first line only)."""
        line = source_line(self.file, self.line)
        if line is None:
            return None
        end = self.end_col if self.end_line in (None, self.line) and self.end_col else len(line) + 1
        return line[self.col - 1 : end - 1]


class ArchDSLError(Exception):
    """Base of every error a spec can cause. Never raised for archdsl's own bugs."""

    kind = "error"

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.trace: list[Span] = []  # use sites, outermost (the user's spec) first
        self.related: list[ArchDSLError] = []  # further independent errors found in the same pass

    def at(self, span: Span | None) -> "ArchDSLError":
        """Attach a position if the error has none yet; returns self for `raise e.at(...)`."""
        if self.span is None:
            self.span = span
        return self

    def called_from(self, span: Span) -> "ArchDSLError":
        """Record that the failing construct was reached through a call at `span`."""
        if span is not None and span != self.span and span not in self.trace:
            self.trace.insert(0, span)
        return self

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.message}"

    def render(self, severity: str = "error") -> str:
        """This error, then any related ones (several syntax errors of one file), as compilers print them."""
        parts = [render_diagnostic(severity, self.message, self.span, self.hint, self.trace)]
        parts += [e.render(severity) for e in self.related]
        if self.related:
            parts.append(f"{1 + len(self.related)} errors")
        return "\n".join(parts)


class ArchSyntaxError(ArchDSLError):
    """The text does not parse."""


class ArchNameError(ArchDSLError):
    """An unknown or duplicate name: block, op, parameter, variable."""


class ArchTypeError(ArchDSLError):
    """A value of the wrong kind or out of range: a channel count that is 'relu', a zero stride."""


class ArchShapeError(ArchDSLError):
    """Shapes that do not fit together: mismatched residual channels, a kernel larger than its input."""


class ArchImportError(ArchDSLError):
    """An import that cannot be resolved, escapes the spec tree, or forms a cycle."""


class ArchLimitError(ArchDSLError):
    """A spec that would exceed a resource limit (size, depth, repetition)."""


class ArchExpectError(ArchDSLError):
    """An `expect` statement that does not hold."""


class ArchWeightsError(ArchDSLError):
    """A state_dict that does not map onto a compiled module."""


@dataclass
class Diagnostic:
    """A warning (or note) that does not stop compilation."""

    message: str
    span: Span | None = None
    hint: str | None = None
    trace: list[Span] = field(default_factory=list)

    def render(self) -> str:
        return render_diagnostic("warning", self.message, self.span, self.hint, self.trace)


def render_diagnostic(severity: str, message: str, span: Span | None, hint: str | None,
                      trace: Iterable[Span] = ()) -> str:
    """`file:line:col: severity: message`, the source line, a caret underline, the hint."""
    out: list[str] = []
    for use in trace:
        out.append(f"{use}: note: in a use from here")
        out.extend(_quote(use))
    head = f"{span}: " if span else ""
    out.append(f"{head}{severity}: {_clip(message)}")
    if span is not None:
        out.extend(_quote(span))
    if hint:
        out.append(f"hint: {_clip(hint)}")
    return "\n".join(out)


def _clip(text: str, limit: int = 300) -> str:
    """Messages quote spec text and values; a 100 kB name is shown by its ends."""
    return text if len(text) <= limit else text[: limit - 60] + " ... " + text[-55:]


def _quote(span: Span) -> list[str]:
    line = source_line(span.file, span.line)
    if line is None:
        return []
    line = line.expandtabs(1)
    if len(line) > 200:  # a giant line is cut around the column, not dumped
        start = max(0, span.col - 80)
        line = line[start : start + 160]
        col = span.col - start
    else:
        col = span.col
    width = 1
    if span.end_col and span.end_line in (None, span.line) and span.end_col > span.col:
        width = span.end_col - span.col
    width = max(1, min(width, len(line) - col + 1))
    gutter = f"{span.line:>5} | "
    underline = " " * (col - 1) + "^" + "~" * (width - 1)
    return [gutter + line, " " * (len(gutter) - 2) + "| " + underline]


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest known names, or None."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
