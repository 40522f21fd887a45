"""Reading spec files and resolving `import`s into one namespace of declarations.

An import names a file relative to the importing file; when none is there, the
standard library shipped inside the package (`archdsl/stdlib/`). Imports may not
leave the importing spec's folder tree (nor be absolute) unless the caller allows
it, and a cycle is reported with its chain.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ArchImportError, ArchLimitError, ArchNameError, ArchSyntaxError, Span
from ..fileio import ArchFileError, FileTooLarge, read_regular_file
from . import ast
from .ast_cache import parse

STDLIB = Path(__file__).resolve().parent.parent / "stdlib"
# Imports nest at most this deep (a imports b imports c ...): resolving them recurses. The
# standard library nests 2 deep.
MAX_IMPORT_DEPTH = 64
MAX_SPEC_BYTES = 4 * 1024 * 1024  # a spec is a page of text; refuse megabytes of it early


@dataclass
class Program:
    """Every declaration visible from the root spec, by name."""

    root: str
    blocks: dict[str, ast.BlockDecl] = field(default_factory=dict)
    families: dict[str, ast.FamilyDecl] = field(default_factory=dict)
    models: dict[str, ast.ModelDecl] = field(default_factory=dict)
    constants: dict[str, ast.Assign] = field(default_factory=dict)
    root_models: list[str] = field(default_factory=list)  # models declared in the root file itself
    files: list[str] = field(default_factory=list)
    family_files: dict[str, Path] = field(default_factory=dict)  # family name -> the file declaring it


def read_spec_text(path: Path, span: Span | None = None) -> str:
    """Read a spec as UTF-8 text, refusing binary, oversized and undecodable files clearly."""
    file = str(path)
    try:  # only regular files, size checked before reading: a FIFO or /dev/zero is refused at once
        data = read_regular_file(path, MAX_SPEC_BYTES)
    except FileNotFoundError:
        raise ArchImportError(f"no such spec file: {path}", span,
                              None if path.suffix else "spec files end in .arch") from None
    except IsADirectoryError:
        raise ArchImportError(f"{path} is a folder, not a spec file", span,
                              f"name the files: {path}/*.arch") from None
    except FileTooLarge as e:
        raise ArchSyntaxError(f"spec file is {e.size:,} bytes; the limit is {MAX_SPEC_BYTES:,}",
                              Span(file, 1, 1), "a spec is a page of text: is this the right file?") from None
    except ArchFileError as e:
        raise ArchImportError(e.message, span, e.hint) from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path itself
        raise ArchImportError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}", span) from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ArchSyntaxError("spec file contains a NUL byte (is it a binary file?)", Span(file, line, 1))
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark, as some editors write
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ArchSyntaxError(f"spec file is not valid UTF-8 (byte 0x{data[e.start]:02x})",
                              Span(file, line, col), "save the file as UTF-8") from None


class Loader:
    """Parses a root spec and everything it imports, once each."""

    def __init__(self, allow_outside_imports: bool = False):
        self.allow_outside = allow_outside_imports
        self._parsed: dict[Path, ast.Module] = {}

    def load_file(self, path: str | Path) -> Program:
        path = Path(path)
        text = read_spec_text(path)
        return self._load(path.resolve(), text, str(path), tree_root=path.resolve().parent)

    def load_text(self, text: str, file: str = "<spec>", base: Path | None = None) -> Program:
        base = (base or Path.cwd()).resolve()
        return self._load(base / "__inline__.arch", text, file, tree_root=base)

    def _load(self, key: Path, text: str, display: str, tree_root: Path) -> Program:
        program = Program(root=display)
        module = parse(text, display)
        self._parsed[key] = module
        self._add(program, module, key, tree_root, owners={}, seen={key}, chain=[key], root=True)
        return program

    def _add(self, program: Program, module: ast.Module, key: Path, tree_root: Path,
             owners: dict[tuple[str, str], str], seen: set[Path], chain: list[Path], root: bool) -> None:
        program.files.append(module.file)
        for decl in module.decls:
            if isinstance(decl, ast.Import):
                target = self._resolve(decl, key.parent, tree_root)
                if target in chain:
                    cycle = " -> ".join(p.name for p in chain[chain.index(target):] + [target])
                    raise ArchImportError(f"import cycle: {cycle}", decl.span,
                                          "remove one of the imports in the cycle")
                if target in seen:
                    continue  # already imported through another path
                if len(chain) > MAX_IMPORT_DEPTH:
                    raise ArchLimitError(f"imports nest more than {MAX_IMPORT_DEPTH} deep", decl.span,
                                         "import the files a spec needs from the spec itself, not in a chain")
                seen.add(target)
                sub = self._parsed.get(target)
                if sub is None:
                    sub = _parse_cached(target, decl.span)
                    self._parsed[target] = sub
                try:
                    self._add(program, sub, target, tree_root, owners, seen, chain + [target], root=False)
                except (ArchImportError, ArchLimitError) as e:
                    raise e.called_from(decl.span)
                continue
            # blocks, families, models and constants each have a namespace of their own:
            # `model mobilenet_v2 = mobilenet_v2(...)` names a model after its family
            name, kind = decl.name, type(decl).__name__
            if (kind, name) in owners:
                raise ArchNameError(f"'{name}' is declared twice (first in {owners[kind, name]})", decl.span,
                                    "rename one of them")
            owners[kind, name] = module.file
            if isinstance(decl, ast.BlockDecl):
                program.blocks[name] = decl
            elif isinstance(decl, ast.FamilyDecl):
                program.families[name] = decl
                program.family_files[name] = key
            elif isinstance(decl, ast.ModelDecl):
                program.models[name] = decl
                if root:
                    program.root_models.append(name)
            elif isinstance(decl, ast.Assign):
                program.constants[name] = decl

    def _resolve(self, decl: ast.Import, folder: Path, tree_root: Path) -> Path:
        try:
            return self._find(decl, folder, tree_root)
        except (OSError, ValueError) as e:  # a path too long for the file system, a NUL, a loop of links
            reason = getattr(e, "strerror", None) or str(e)
            hint = "import paths are short relative paths: 'blocks/x.arch'"
            raise ArchImportError(f"cannot import '{_clip(decl.path)}': {reason}", decl.span, hint) from None

    def _find(self, decl: ast.Import, folder: Path, tree_root: Path) -> Path:
        raw = decl.path
        if not raw:
            raise ArchImportError("empty import path", decl.span)
        if Path(raw).is_absolute() and not self.allow_outside:
            raise ArchImportError(f"absolute import path '{raw}' is not allowed", decl.span,
                                  "import relative to this file, or from the standard library")
        local = (folder / raw).resolve()
        if local.is_file():
            inside = _is_within(local, tree_root) or _is_within(local, STDLIB)
            if not inside and not self.allow_outside:
                raise ArchImportError(f"import '{raw}' leaves the spec's folder tree", decl.span,
                                      "keep imported specs next to or below the root spec")
            return local
        std = (STDLIB / raw).resolve()
        if std.is_file() and _is_within(std, STDLIB):
            return std
        raise ArchImportError(f"cannot find '{raw}' next to {_display_path(folder)} or in the standard library",
                              decl.span, _std_hint(raw))


class _ParseCache:
    """Parsed imports by (display name, text): `archdsl check specs/*.arch` parses the
    standard library once, not once per spec. Keyed by content, so a file edited in place is
    parsed again however quickly it changed; the values (frozen ASTs whose spans carry their
    own text) are never mutated, so threads may share them. Bounded, oldest out first."""

    def __init__(self, size: int = 256):
        self._size = size
        self._entries: dict[tuple[str, str], ast.Module] = {}
        self._lock = threading.Lock()

    def parse(self, text: str, file: str) -> ast.Module:
        key = (file, text)
        with self._lock:
            module = self._entries.get(key)
        if module is None:
            module = parse(text, file)  # outside the lock: threads parse different files at once
            with self._lock:
                self._entries[key] = module
                while len(self._entries) > self._size:
                    del self._entries[next(iter(self._entries))]
        return module


_PARSE_CACHE = _ParseCache()


def _parse_cached(path: Path, span: Span) -> ast.Module:
    """Parse an imported file, from the cache when its text has been parsed before."""
    return _PARSE_CACHE.parse(read_spec_text(path, span), _display_path(path))


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 25] + " ... " + text[-20:]


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _display_path(path: Path) -> str:
    if _is_within(path, STDLIB):
        return f"<stdlib>/{path.relative_to(STDLIB)}"
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _std_hint(raw: str) -> str | None:
    from ..errors import did_you_mean

    known = [str(p.relative_to(STDLIB)) for p in STDLIB.rglob("*.arch")]
    return did_you_mean(raw, known) or ("standard library files: " + ", ".join(sorted(known)) if known else None)
