"""What each block instance was called with: `Graph.calls` maps a block's scope
(`stages.1.blocks.0`) to a `BlockCall` (`basic(out=128, stride=2)`); `Graph.loop_items` maps
an item of a named loop (`stages.1`) to a `LoopItem`, the values its variables took.

The elaborator records one per block call, in place of nothing else: ops keep no link to
the call that made them. Emitters that write source (`archdsl eject`) read it to name a
block's constructor arguments after the spec's parameters. A block whose body is a single
call of another block shares its scope with that block (the scope's modules are the inner
block's), so the scope records the innermost call, as `Graph.scopes` names it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Span


@dataclass(frozen=True)
class BlockCall:
    """A block instance: the block's name, its parameters' values in declaration order
    (defaults included; a block or op passed as a value is its name, as a spec writes it),
    the span of the call, and the block's declaration (the front end's `ast.BlockDecl`,
    whose parameter defaults and body expressions an emitter may print)."""

    block: str
    args: dict[str, Any]
    span: Span | None = None
    decl: Any = None

    def __str__(self) -> str:
        return f"{self.block}({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"


@dataclass(frozen=True)
class LoopItem:
    """An item of a named loop (`stages for i, w in [...] { ... }`): the values the loop's
    variables took in it (an index included), the span of the loop, and the loop itself (the
    front end's `ast.NamedLoop`, whose body an emitter may print)."""

    args: dict[str, Any]
    span: Span | None = None
    loop: Any = None
