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
    parts, pos = [], 0
    for f in _FIELD.finditer(source):
        if f.group(2):
            raise ValueError(f"arithmetic belongs in the target, not the source: {source!r}")
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


def mapping_path(family_file: str | Path) -> Path:
    p = Path(family_file)
    return p.with_name(p.stem + ".weights.toml")


def read_mapping(path: Path, source: str) -> Mapping:
    if not path.is_file():
        raise ArchWeightsError(f"no weight mapping for this family: {path} does not exist",
                               hint="write one beside the family's .arch file (see docs/language.md, 'Weights')")
    data = tomllib.loads(path.read_text())
    if source not in data:
        known = ", ".join(sorted(data)) or "none"
        raise ArchWeightsError(f"{path.name} has no mapping for source '{source}' (it has: {known})")
    table = data[source]
    try:
        rules = tuple(compile_rule(s, t) for s, t in table.get("rules", []))
    except ValueError as e:
        raise ArchWeightsError(f"{path.name}: {e}") from None
    ignore = tuple(re.compile(p) for p in table.get("ignore", []))
    in_order = tuple((str(s), str(t)) for s, t in table.get("in_order", []))
    return Mapping(source, table.get("reference", ""), rules, ignore, in_order)
