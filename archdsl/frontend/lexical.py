"""The character level of a spec, checked before lark sees it (docs/language.md, section 2).

* Line breaks are `\\n`, `\\r\\n` or a lone `\\r` (old Mac files): all become `\\n`, so a
  CR-only file is not one long line (nor one long comment).
* Names, numbers, operators and brackets are ASCII; other characters may appear only in
  comments and strings. `conv(৪)` is an error, not 4 channels.
* Unicode bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F) are refused
  everywhere, comments and strings included: they make text display in another order than
  it is read ("trojan source").
* Characters that some tools count as line breaks and others do not (vertical tab, form
  feed, U+001C-U+001E, U+0085, U+2028, U+2029) are refused everywhere: a position would
  name different lines in the editor, the parser and the formatter.
"""
from __future__ import annotations

import re
import unicodedata

from ..errors import ArchSyntaxError, Span

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
AMBIGUOUS_BREAKS = frozenset("\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_REFUSED_ANYWHERE = re.compile("[" + "".join(sorted(BIDI_CONTROLS | AMBIGUOUS_BREAKS)) + "]")
# Comments and strings (where any other character may appear), else one non-ASCII character.
_SCAN = re.compile(r'#[^\n]*|"[^"\n]*"?|[^\x00-\x7f]')


def normalize_newlines(text: str) -> str:
    """`\\r\\n` and a lone `\\r` as `\\n`."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def check_characters(text: str, file: str) -> None:
    """Raise `ArchSyntaxError` at the first character the language refuses (see the module
    docstring). `text` has its line breaks normalized."""
    m = _REFUSED_ANYWHERE.search(text)
    if m is not None:
        ch = m.group()
        if ch in BIDI_CONTROLS:
            raise ArchSyntaxError(f"Unicode bidirectional control character {_name(ch)}", _span(text, m.start(), file),
                                  "it makes the text display in another order than it is read: remove it "
                                  "(it is refused in comments and strings too)")
        raise ArchSyntaxError(f"{_name(ch)} is a line break to some tools and not to others",
                              _span(text, m.start(), file), "end lines with a plain newline; remove it")
    if text.isascii():
        return
    for m in _SCAN.finditer(text):
        token = m.group()
        if token[0] in '#"':
            continue
        if unicodedata.category(token).startswith("N"):
            hint = "numbers are written with the ASCII digits 0-9"
        elif token.isalpha():
            hint = "names are ASCII: letters A-Z and a-z, digits and '_'"
        else:
            hint = "outside comments and strings a spec is ASCII"
        raise ArchSyntaxError(f"unexpected character {token!r} ({_name(token)})", _span(text, m.start(), file),
                              hint)


def _name(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def _span(text: str, offset: int, file: str) -> Span:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Span(file, line, col, line, col + 1)
