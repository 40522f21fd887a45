"""Diagram files: the format follows the suffix (.svg .png .pdf .dot .html); every write is
atomic, so a failed render never leaves a half-written or empty file behind."""
from __future__ import annotations

import os
from pathlib import Path

import graphviz

FORMATS = (".svg", ".png", ".pdf", ".dot", ".html")


class DotNotFound(Exception):
    """Graphviz's `dot` program is not installed (`.dot` and `.html` output work without it:
    the page lays itself out in the browser)."""

    def __init__(self):
        super().__init__("graphviz's `dot` program was not found: install graphviz "
                         "(apt-get install graphviz, brew install graphviz) or write -o FILE.dot or FILE.html, "
                         "which need no dot")


def render(facts, opened: frozenset[str], suffix: str, rankdir: str = "TB") -> bytes:
    """The file's bytes for one format (a suffix of FORMATS)."""
    from .dot import draw
    from .html import page
    from .view import build_view

    if suffix not in FORMATS:
        raise ValueError(f"unknown diagram format {suffix!r}: use one of {', '.join(FORMATS)}")
    try:
        if suffix == ".html":
            return page(facts, opened, rankdir).encode()
        digraph = draw(facts, build_view(facts.graph, facts.tree, opened), rankdir)
        if suffix == ".dot":
            return digraph.source.encode()
        return digraph.pipe(format=suffix[1:])
    except graphviz.ExecutableNotFound:
        raise DotNotFound() from None


def write(path: str | os.PathLike, data: bytes) -> None:
    """Write all or nothing (`archdsl.fileio.write_atomic` where the package has it)."""
    try:
        from ..fileio import write_atomic
    except ImportError:  # older checkouts: the same idea, inline
        write_atomic = _write_atomic
    write_atomic(path, data)


def _write_atomic(path, data: bytes) -> None:
    import tempfile

    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
