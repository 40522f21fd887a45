"""lark's parse tables, built once per user and grammar instead of once per process.

Building the LALR tables of the grammar takes about 0.15-0.5 s; loading them from lark's
cache about 0.03 s. The cache file lives in the user's cache folder
(`$ARCHDSL_CACHE_DIR`, else `$XDG_CACHE_HOME/archdsl`, else `~/.cache/archdsl`) and is
named after a hash of the grammar, the parser options and lark's version, so an edited
grammar or another lark gets its own file (lark checks the same hash inside the file).
The file is written under a temporary name and renamed into place, so a process killed
while writing it, or two processes writing it at once, never leave a torn file. When the
folder cannot be created or written, the tables are simply built in memory, as before.
Set `ARCHDSL_CACHE_DIR` to an empty string to turn the cache off.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


def cache_dir() -> Path | None:
    """The folder for archdsl's caches, or None when caching is turned off."""
    configured = os.environ.get("ARCHDSL_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "archdsl"


def cached_lark(grammar: str, options: dict) -> Lark:
    """`Lark(grammar, **options)`, its tables loaded from (or saved to) the per-user cache."""
    from lark import Lark, __version__ as lark_version  # here: a check whose ASTs are cached never needs lark

    folder = cache_dir()
    if folder is None:
        return Lark(grammar, **options)
    hashable = sorted((k, str(v)) for k, v in options.items() if k not in ("lexer_callbacks", "postlex"))
    key = hashlib.sha256(repr((grammar, hashable, lark_version, sys.version_info[:2])).encode()).hexdigest()[:24]
    path = folder / f"grammar-{key}.lark"
    if path.is_file():
        return Lark(grammar, cache=str(path), **options)  # lark rebuilds if the file is unreadable
    tmp = folder / f".grammar-{key}.{os.getpid()}.{id(options)}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        parser = Lark(grammar, cache=str(tmp), **options)  # builds the tables, then writes tmp
        if tmp.is_file():
            os.replace(tmp, path)
        return parser
    except OSError:  # an unwritable or full cache folder: no cache, same parser
        return Lark(grammar, **options)
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass
