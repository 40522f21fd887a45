"""Weight mapping rules: data files beside each family (`<family>.weights.toml`).

A rule maps a key prefix of the reference checkpoint to a prefix of ours:

    ["resnet.encoder.stages.{s}.layers.{b}.layer.{k}.convolution.", "stages.{s}.blocks.{b}.conv{k+1}."]

`{name}` matches a number in the source; in the target, `{name}`, `{name+1}`, `{name-1}`,
`{name*2}` and `{name//2}` compute one. The rest of the key after the prefix is kept.
Rules are tried in order and the first whose target exists in the module wins, so a rule
may have fallbacks (LeViT's MLP index `j` is either `blocks.{j//2}` or the downsample's).

`{name:PATTERN}` in a target (arithmetic allowed: `{i+1:PATTERN}`) is the scope of the module
at that position, counting from 0, among the scopes that match PATTERN, a dotted path whose
`*` stands for a number, in numeric order: a flat reference list onto nested stages,

    ["features.{i}.conv.", "{i-1:stages.*.blocks.*}."]   # features.1 is stages.0.blocks.0

or onto every conv of them (`{i:stages.*.blocks.*.conv*}`). Past the last one the rule does
not apply.

`in_order = [["features.", "stages."]]` pairs the source's keys under the first prefix with
ours under the second one to one, in state-dict order (module order): for a flat reference
`Sequential` whose activations and pools take indices too (torchvision's VGG `features.0`,
`features.3`, ...), where no arithmetic on the index finds the layer. Shapes are still
checked; keys left over on either side are reported as usual. Rules apply to the rest.

`ignore = ["pooler.", "layer.{i}.unused."]` lists source key prefixes (the rules' syntax) that
load nowhere on purpose. A malformed file is an `ArchWeightsError` naming it.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArchWeightsError

_FIELD = re.compile(r"\{(\w+)(?:(\+|-|\*|//)(\d+))?\}")
_NTH = re.compile(r"\{(\w+)(?:(\+|-|\*|//)(\d+))?:([\w.*]+)\}")  # {i-1:stages.*.blocks.*}


@dataclass(frozen=True)
class Rule:
    source: str
    target: str
    pattern: re.Pattern

    def apply(self, key: str, scopes: "ScopeIndex | None" = None) -> str | None:
        m = self.pattern.match(key)
        if m is None:
            return None
        values = {k: int(v) for k, v in m.groupdict().items()}
        target = self.target
        if _NTH.search(target):
            if scopes is None:
                return None
            found = [scopes.nth(f.group(4), _compute(values, f)) for f in _NTH.finditer(target)]
            if None in found:
                return None
            it = iter(found)
            target = _NTH.sub(lambda f: next(it), target)
        return _FIELD.sub(lambda f: str(_compute(values, f)), target) + key[m.end():]


class ScopeIndex:
    """The module's scopes matching a `{i:PATTERN}` pattern, in numeric order (cached)."""

    def __init__(self, keys):
        self.keys = list(keys)
        self._found: dict[str, list[str]] = {}

    def nth(self, pattern: str, i: int) -> str | None:
        if pattern not in self._found:
            rx = re.compile("^" + re.escape(pattern).replace(r"\*", r"(\d+)") + r"(?=\.)")
            seen = {}
            for k in self.keys:
                m = rx.match(k)
                if m:
                    seen[m.group(0)] = tuple(int(g) for g in m.groups())
            self._found[pattern] = sorted(seen, key=seen.get)
        found = self._found[pattern]
        return found[i] if 0 <= i < len(found) else None


def _compute(values: dict[str, int], f: re.Match) -> int:
    v = values[f.group(1)]
    op, k = f.group(2), int(f.group(3) or 0)
    return {None: v, "+": v + k, "-": v - k, "*": v * k, "//": v // k if k else v}[op]


def compile_rule(source: str, target: str) -> Rule:
    """A rule's source compiles to an anchored pattern of literals and `\\d+` groups, each
    group followed by a literal that is not a digit: matching a key is linear in its length
    (no pattern a mapping file can write backtracks catastrophically)."""
    parts, pos = [], 0
    fields = list(_FIELD.finditer(source))
    for f, nxt in zip(fields, fields[1:] + [None]):
        after = source[f.end():nxt.start() if nxt else len(source)]
        if nxt is not None and (not after or after[0].isdigit()):
            raise ValueError(f"two numbers must be separated by a non-digit in {source!r}")
    for f in fields:
        if f.group(2):
            raise ValueError(f"arithmetic belongs in the target, not the source: {source!r}")
        if not f.group(1).isidentifier():
            raise ValueError(f"field names are identifiers: {{{f.group(1)}}} in {source!r}")
        parts.append(re.escape(source[pos:f.start()]))
        parts.append(f"(?P<{f.group(1)}>\\d+)")
        pos = f.end()
    parts.append(re.escape(source[pos:]))
    known = {f.group(1) for f in _FIELD.finditer(source)}
    for f in [*_FIELD.finditer(target), *_NTH.finditer(target)]:
        if f.group(1) not in known:
            raise ValueError(f"target {target!r} uses {{{f.group(1)}}}, which the source does not match")
    return Rule(source, target, re.compile("".join(parts)))


@dataclass(frozen=True)
class Mapping:
    source: str  # "hf", "timm", "torchvision"
    reference: str
    rules: tuple[Rule, ...]
    ignore: tuple[re.Pattern, ...]
    # [source prefix, our prefix] pairs whose keys pair up in state-dict order (`in_order`)
    in_order: tuple[tuple[str, str], ...] = ()
    # source key prefixes whose tensors are cut into n parts along dim 0 (`split`)
    split: tuple[tuple[re.Pattern, int], ...] = ()


def mapping_path(family_file: str | Path) -> Path:
    p = Path(family_file)
    return p.with_name(p.stem + ".weights.toml")


_SECTION_KEYS = {"reference", "rules", "ignore", "in_order", "include", "split"}


def read_mapping(path: Path, source: str, _seen: tuple = ()) -> Mapping:
    """The `[source]` section of a mapping file, validated: a malformed file is an
    `ArchWeightsError` naming it and what is wrong, never a raw TOML or Python error.
    `include = ["mobilenet_v2"]` appends the same section of `mobilenet_v2.weights.toml` (beside
    this file): the mapping of a family used as a backbone, whose layers keep their names."""
    if not path.is_file():
        raise ArchWeightsError(f"no weight mapping for this family: {path} does not exist",
                               hint="write one beside the family's .arch file (see docs/language.md, 'Weights')")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
        raise ArchWeightsError(f"{path}: not a valid mapping file: {e}",
                               hint="see archdsl/weights/mapping.py for the format") from None
    if source not in data:
        known = ", ".join(sorted(data)) or "none"
        raise ArchWeightsError(f"{path.name} has no mapping for source '{source}' (it has: {known})")
    table = data[source]

    def bad(what: str) -> ArchWeightsError:
        return ArchWeightsError(f"{path}: [{source}] {what}", hint="see archdsl/weights/mapping.py for the format")

    if not isinstance(table, dict):
        raise bad("must be a table")
    unknown = set(table) - _SECTION_KEYS
    if unknown:
        raise bad(f"has unknown keys {sorted(unknown)} (known: {sorted(_SECTION_KEYS)})")
    if not isinstance(table.get("reference", ""), str):
        raise bad("reference must be a string")
    for key in ("rules", "in_order"):
        pairs = table.get(key, [])
        if not isinstance(pairs, list) or not all(
                isinstance(r, list) and len(r) == 2 and all(isinstance(x, str) for x in r) for r in pairs):
            raise bad(f"{key} must be a list of [source, target] string pairs")
    ignore = table.get("ignore", [])
    if not isinstance(ignore, list) or not all(isinstance(x, str) for x in ignore):
        raise bad("ignore must be a list of strings")
    try:
        rules = tuple(compile_rule(s, t) for s, t in table.get("rules", []))
        # ignored key prefixes: the rules' own syntax (`{n}` a number), never free regexes
        ignore_patterns = tuple(compile_rule(p, "").pattern for p in ignore)
    except (ValueError, re.error) as e:
        raise bad(str(e)) from None
    in_order = tuple((s, t) for s, t in table.get("in_order", []))
    split = table.get("split", [])
    if not isinstance(split, list) or not all(
            isinstance(r, list) and len(r) == 2 and isinstance(r[0], str) and type(r[1]) is int and r[1] >= 2
            for r in split):
        raise bad("split must be a list of [source prefix, number of parts >= 2] pairs")
    try:
        split = tuple((compile_rule(p, "").pattern, n) for p, n in split)
    except (ValueError, re.error) as e:
        raise bad(str(e)) from None
    include = table.get("include", [])
    if not isinstance(include, list) or not all(isinstance(x, str) and x.isidentifier() for x in include):
        raise bad("include must be a list of family file names (`mobilenet_v2`)")
    for name in include:
        other = path.with_name(f"{name}.weights.toml")
        if other in _seen or other == path:
            raise bad(f"includes {other.name} in a cycle")
        sub = read_mapping(other, source, _seen + (path,))
        rules, ignore_patterns, in_order = rules + sub.rules, ignore_patterns + sub.ignore, in_order + sub.in_order
        split += sub.split
    return Mapping(source, table.get("reference", ""), rules, ignore_patterns, in_order, split)


def split_tensors(mapping: Mapping, tensors) -> dict:
    """The source tensors with those under a `split` prefix cut along dim 0 into n equal
    parts, keyed `prefix + "0."`, `"1."`, ... before the rest of the key: timm's fused qkv
    linear (`attn.qkv.weight`) becomes `attn.qkv.0.weight` (query), `.1.` (key), `.2.` (value)
    for the rules to map. A tensor whose first dim n does not divide is left whole (and is
    then reported as unmapped)."""
    if not mapping.split:
        return dict(tensors)
    out = {}
    for key, t in tensors.items():
        for pattern, n in mapping.split:
            m = pattern.match(key)
            if m and getattr(t, "ndim", 0) >= 1 and t.shape[0] % n == 0:
                for i, part in enumerate(t.chunk(n, 0)):
                    out[f"{key[:m.end()]}{i}.{key[m.end():]}"] = part
                break
        else:
            out[key] = t
    return out
