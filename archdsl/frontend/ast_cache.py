"""Parsed spec files on disk, as Python keeps `.pyc` files: a file parsed once is not parsed
again by the next process while its text and the front end stay the same.

A small `archdsl check` spends more time in the parser than in everything after it: importing
lark (~0.04 s), loading its tables (~0.03 s), building the lexer's scanners (~0.04 s) and
parsing the spec and the standard library files it imports. The standard library never
changes between runs and a user's spec rarely does, so the AST of each file is kept in the
cache folder of `grammar_cache.py` (`$ARCHDSL_CACHE_DIR`, `$XDG_CACHE_HOME/archdsl` or
`~/.cache/archdsl`; `ARCHDSL_CACHE_DIR=` turns both off), under a hash of the file's name and
text, the front end's own source (grammar, parser, AST classes) and Python's version. lark is
imported only when some file has to be parsed.

Entries are written under a temporary name and renamed, so a killed process or two at once
never leave a torn file; an entry that cannot be read (torn by something else, another
format) is parsed again and rewritten; an unwritable folder means no cache, not an error.
Only files that parse are cached: errors always come from the parser itself.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import pickle
import sys
from pathlib import Path

from ..errors import remember_source
from . import ast
from .grammar_cache import cache_dir

# The modules whose code decides what a parse gives: an edit to any of them is a new key.
_FRONT_END = ("grammar.lark", "parser.py", "tree_to_ast.py", "ast.py", "lexical.py", "ast_cache.py")


@functools.lru_cache(maxsize=1)
def _front_end_key() -> bytes:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(repr(sys.version_info[:2]).encode())
    for name in _FRONT_END:
        digest.update((here / name).read_bytes())
    lark = importlib.util.find_spec("lark")  # finds lark without importing it
    if lark is not None and lark.origin:
        st = os.stat(lark.origin)
        digest.update(f"{lark.origin}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.digest()


def parse(text: str, file: str) -> ast.Module:
    """`parser.parse(text, file)`, from the cache when this text was parsed before."""
    folder = cache_dir()
    if folder is None:
        return _parse(text, file)
    key = hashlib.sha256(_front_end_key() + str(file).encode() + b"\0" + text.encode()).hexdigest()[:32]
    path = folder / "ast" / f"{key}.pickle"
    try:
        module = pickle.loads(path.read_bytes())
        if isinstance(module, ast.Module) and module.file == file and getattr(module.file, "text", None) == text:
            remember_source(file, text)
            return module
    except Exception:  # missing, torn or foreign: parse it again
        pass
    module = _parse(text, file)
    _store(path, module)
    return module


def _parse(text: str, file: str) -> ast.Module:
    from .parser import parse as parse_text  # lark is imported only here

    return parse_text(text, file)


def _store(path: Path, module: ast.Module) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(pickle.dumps(module, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, RecursionError):  # no cache then, same result
        try:
            tmp.unlink()
        except OSError:
            pass
