"""Numbers in a forward's code, as constructor arguments, for `archdsl eject`.

The emitter writes some of a layer's numbers into the forward, not into a module: where
ShuffleNet's unit splits its input (`channel_chunk(x, 0, 58, True)`), the map size MobileViT
folds patches back to (`fold_patches(x, 2, 2, 32, 32)`), the token grid LeViT subsamples
(`x.unflatten(1, (14, 14))`). Scopes that differ only there are one class, as a person writes
it: the number is an argument the constructor keeps (`self.h = h`), the forward reads it
(`fold_patches(x, 2, 2, self.h, self.w)`); a number every instance shares stays a literal.
Each is named after the parameter of the function it is passed to, where the file defines that
function (archdsl's runtime helpers), else `size`.
"""
from __future__ import annotations

import inspect
import re

from . import channels, runtime

_NUMBER = re.compile(r"(?<![\w.])(?<!e-)(?<!e\+)\d+(?![\w.])")  # not in a name, a float, `1e-05`
_MARK = "\x00{}\x00"
_FUNCTIONS = {name: f for m in (runtime, channels) for name, f in vars(m).items() if inspect.isfunction(f)}


def split_numbers(forward: str) -> tuple[str, list[int], list[str]]:
    """`forward` with each whole-number literal outside a name or float marked, the numbers,
    and a name for each (see the module docstring)."""
    numbers, hints, out, last = [], [], [], 0
    for m in _NUMBER.finditer(forward):
        line_start = forward.rfind("\n", 0, m.start()) + 1
        if "#" in forward[line_start:m.start()] or forward[line_start:m.start()].count('"') % 2 \
                or str(int(m.group())) != m.group():
            continue  # in a comment or a string
        out += [forward[last:m.start()], _MARK.format(len(numbers))]
        numbers.append(int(m.group()))
        hints.append(_hint(forward[line_start:m.start()]))
        last = m.end()
    return "".join(out) + forward[last:], numbers, hints


def fill_numbers(template: str, texts: list[str]) -> str:
    """The forward with each marked number written as `texts` says (a literal or `self.h`)."""
    return re.sub("\x00(\\d+)\x00", lambda m: texts[int(m.group(1))], template)


def _hint(before: str) -> str:
    """The name of the parameter a number is passed as: found from the innermost call open
    before it (a tuple counts as one argument of the call around it)."""
    depth, commas = 0, 0
    for i in range(len(before) - 1, -1, -1):
        c = before[i]
        if c in ")]":
            depth += 1
        elif c in "([" and depth > 0:
            depth -= 1
        elif c == "(":
            name = re.search(r"[\w.]*$", before[:i]).group()
            if not name:  # a tuple: one argument of the call around it
                commas = 0
                continue
            f = _FUNCTIONS.get(name)
            params = list(inspect.signature(f).parameters) if f is not None else []
            return params[commas] if commas < len(params) else "size"
        elif c == "[":
            return "size"
        elif c == "," and depth == 0:
            commas += 1
    return "size"
