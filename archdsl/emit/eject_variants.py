"""Instances of one block that differ in structure, as one ejected class.

A block's instances can differ in more than numbers: a part under `when` is there in some only
(`shortcut when stride != 1 or in.channels != out`), an activation passed as a parameter
(`act=hardswish`) changes the forward's code. The emitter makes a class per structure; the
ejected file makes one class of them, as a person would write it:
- an optional part is built under the spec's condition, translated to Python, and set to
  None otherwise; the forward asks `if self.shortcut is not None`, as torchvision does;
- an optional step with no module (`residual when stride == 1 and in.channels == out`: the
  add) reads a flag the constructor sets from the condition (`self.use_residual`);
- an activation the block takes as a parameter is an attribute (`self.act = act`).

Instances merge only where the result builds each of them exactly: the same members under the
same names (a state_dict key must not change meaning: MobileNet's depthwise conv is `conv1`
when the expand conv is skipped, `conv2` otherwise, so those stay two classes), and a
condition of the spec that holds exactly on the instances that have the part.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..frontend import ast
from .eject_blocks import ACTIVATIONS, BlockArguments, Code, call_sites
from .eject_exprs import evaluate, python
from .eject_loops import is_block
from .eject_spec import walk
from .torch_module import _ref, _var_name


@dataclass
class Step:
    """One line of a block's forward, keyed so that the same line of another variant matches."""

    key: Any
    var: str
    template: str  # the expression: "{0}", "{1}" its inputs, "{m}" its module
    module: str  # "self.conv1": what "{m}" stands for
    attr: str | None  # the member whose module it calls
    inputs: list  # the keys of its inputs ("x": the forward's input)
    act: tuple | None = None  # (block parameter, function) where the op is an activation parameter


@dataclass
class Kind:
    """One ejected class made of several structures of a block."""

    name: str
    order: list[str]  # member attributes, in order
    conds: dict[str, str]  # optional member -> the condition it is built under
    acts: list[str]  # activation parameters kept as attributes
    flags: list[tuple[str, str, Any]]  # (attribute, condition, the spec's span)
    forward: str
    regions: list[str]
    act_values: dict[str, dict[str, Code]] = field(default_factory=dict)  # parameter -> region -> value
    flag_values: dict[str, dict[str, bool]] = field(default_factory=dict)
    members: dict = field(default_factory=dict)  # attribute -> a member (eject._Member) of some variant


def forward_steps(ej, region: str, sites: dict, params: set[str]) -> list[Step]:
    """The forward of `region` (a block instance) as steps, as `_Emitter.forward_source` writes it."""
    em = ej.em
    inp, out = em.callable[region]
    key_of: dict[int, Any] = {inp: "x"}
    steps, seen = [], {}
    for step in em.steps(region):
        if step[0] == "call":
            _, _, rel, s_in, s_out = step
            key_of[s_out] = ("call", tuple(rel))
            steps.append(Step(key_of[s_out], _var_name(rel), "{m}({0})", _ref("self", rel), rel[0], [key_of[s_in]]))
            continue
        _, nid, rel = step
        node = em.graph.node(nid)
        lowering = em._lower(nid)
        act = None
        if lowering.module is not None or node.span is None:
            key = ("node", tuple(rel))
        else:  # a module-less op: the same line of the spec in every variant, whatever its name
            where = (node.span.line, node.span.col)
            seen[where] = seen.get(where, 0) + 1
            key = ("op", *where, seen[where])
            site = sites.get(where)
            m = re.fullmatch(r"([\w.]+)\(\{0\}\)", lowering.code)
            if site is not None and site.name in params and m:
                act = (site.name, Code(m.group(1)))
        key_of[nid] = key
        steps.append(Step(key, _var_name(rel), lowering.code, _ref("self", rel),
                          rel[0] if lowering.module is not None else None, [key_of[i] for i in em.ins[nid]], act))
    steps.append(Step("return", "", "", "", None, [key_of[out]]))
    return steps


def merge_order(seqs: list[list]) -> list | None:
    """One order holding every sequence's items in that sequence's order, or None."""
    out = list(seqs[0])
    for seq in seqs[1:]:
        pos = [out.index(k) for k in seq if k in out]
        if pos != sorted(pos):
            return None
        prev = -1
        for k in seq:
            if k in out:
                prev = out.index(k)
            else:
                prev += 1
                out.insert(prev, k)
    return out


def _whens(decl: ast.BlockDecl) -> list[tuple[str, Any, Any]]:
    """(label, condition, span) of each `when` in a block's body: the label names a flag."""
    out = []
    for item in walk(decl.body, breadth_first=True):
        if isinstance(item, ast.ChainStmt) and item.when is not None:
            first = item.elements[0] if item.elements else None
            label = item.when.id if isinstance(item.when, ast.Name) else \
                getattr(first, "alias", None) or getattr(first, "name", None) or "part"
            out.append((label, item.when, item.span))
        elif isinstance(item, ast.Residual):
            out += [(label, cond, item.span) for label, cond in (("residual", item.when), ("shortcut", item.shortcut_when))
                    if cond is not None]
        elif isinstance(item, ast.Branch) and item.when is not None:
            out.append((item.label or "branch", item.when, item.span))
    return out


def _signature(m) -> tuple:
    return (m.kind, m.ctor, tuple(m.arg_specs), m.child, m.runs, m.container) + ((m.comment,) if m.kind == "leaf" else ())


class _Merge:
    """Tries to make one class of `variants` ((class, its forward steps), ...) of the block `decl`."""

    def __init__(self, ej, variants: list, decl: ast.BlockDecl):
        self.ej, self.variants, self.decl = ej, variants, decl
        self.regions = [r for cls, _ in variants for r, _ in cls.instances]
        self.vidx = [i for i, (cls, _) in enumerate(variants) for _ in cls.instances]
        calls = [ej.em.graph.calls[r] for r in self.regions]
        self.args = BlockArguments(ej.em.graph, self.regions, calls, [ej._in_channels(r) for r in self.regions])
        self.whens = _whens(decl)

    def condition(self, having: set[int], lines: set[int] = frozenset()):
        """(label, Python text, span) of a `when` of the spec true exactly on the variants `having`;
        the one on one of `lines` (the step's own), if several are."""
        want = [i in having for i in self.vidx]
        for label, expr, span in sorted(self.whens, key=lambda w: w[2].line not in lines):
            text = python(expr, self.args.names)
            if text is None:
                continue
            try:
                got = [evaluate(text, env) for env in self.args.env]
            except Exception:  # noqa: BLE001 - a condition Python does not evaluate as the spec does
                continue
            if all(isinstance(g, bool) for g in got) and got == want:
                return label, text, span
        return None

    def kind(self) -> Kind | None:
        variants = self.variants
        signatures: dict[str, tuple] = {}
        for cls, _ in variants:
            for m in cls.members:
                if m.kind not in ("leaf", "region", "seq") or signatures.setdefault(m.attr, _signature(m)) != _signature(m):
                    return None  # a name that means another layer in another variant
        order = merge_order([[m.attr for m in cls.members] for cls, _ in variants])
        if order is None:
            return None
        having = {a: {i for i, (cls, _) in enumerate(variants) if any(m.attr == a for m in cls.members)} for a in order}
        conds = {}
        for attr in order:
            if len(having[attr]) < len(variants):
                found = self.condition(having[attr])
                if found is None:
                    return None
                conds[attr] = found[1]
        forward = self._forward(having, conds)
        if forward is None:
            return None
        text, acts, flags = forward
        kind = Kind(variants[0][0].name, order, conds, sorted(acts), [f for f in flags.values()], text, self.regions)
        for p in kind.acts:
            kind.act_values[p] = {}
            for region, i in zip(self.regions, self.vidx):
                value = ACTIVATIONS.get(self.ej.em.graph.calls[region].args.get(p))
                if value is None or acts[p].get(i, value) != value:
                    return None
                kind.act_values[p][region] = value
        for name, _, _ in kind.flags:
            kind.flag_values[name] = {r: i in self.flag_having[name] for r, i in zip(self.regions, self.vidx)}
        for cls, _ in variants:
            for m in cls.members:
                kind.members.setdefault(m.attr, m)
        return kind

    def _forward(self, having: dict, conds: dict):
        variants = self.variants
        by = [{s.key: s for s in steps} for _, steps in variants]
        order = merge_order([[s.key for s in steps] for _, steps in variants])
        if order is None:
            return None
        everyone = frozenset(range(len(variants)))
        present = {k: frozenset(i for i, d in enumerate(by) if k in d) for k in order}
        lines, acts = {}, {}
        for k in order:  # each line's expression, with "{0}".. for its inputs
            steps = [by[i][k] for i in sorted(present[k])]
            s0 = steps[0]
            if all(s.template == s0.template and s.module == s0.module for s in steps):
                lines[k] = (s0.template, s0.module)
            elif all(s.act is not None and s.act[0] == s0.act[0] for s in steps):
                param = s0.act[0]
                for i in present[k]:
                    if acts.setdefault(param, {}).setdefault(i, by[i][k].act[1]) != by[i][k].act[1]:
                        return None
                lines[k] = ("{m}({0})", f"self.{param}")
            else:
                return None
        names, taken = {"x": "x"}, {"x"}
        counts: dict[str, int] = {}
        for k in order[:-1]:
            if lines[k][1].startswith("self.") and lines[k][1][5:] in acts:
                param = lines[k][1][5:]
                counts[param] = counts.get(param, 0) + 1
                candidates = [f"{param}{counts[param]}"]
            else:
                candidates = [by[i][k].var for i in sorted(present[k])]
            name = next((c for c in candidates if c not in taken), None)
            j = 2
            while name is None:
                name = f"{candidates[0]}_{j}" if f"{candidates[0]}_{j}" not in taken else None
                j += 1
            names[k] = name
            taken.add(name)
        passthrough, inputs = {}, {}
        for k in order:  # an input that is an optional step's output in some variants only
            vs = sorted(present[k])
            per = [by[i][k].inputs for i in vs]
            if len({len(p) for p in per}) != 1:
                return None
            ins = []
            for slot in zip(*per):
                users: dict[Any, set] = {}
                for i, key in zip(vs, slot):
                    users.setdefault(key, set()).add(i)
                if len(users) == 1:
                    ins.append(slot[0])
                    continue
                if len(users) != 2:
                    return None
                a, b = users
                for opt, other in ((a, b), (b, a)):
                    if opt != "x" and present[opt] & set(vs) == users[opt] and passthrough.get(opt, other) == other \
                            and (other == "x" or order.index(other) < order.index(opt)):
                        break
                else:
                    return None
                passthrough[opt] = other
                ins.append(opt)
            inputs[k] = ins
        for k in order:  # a value read where its step may not have run
            for src in inputs[k]:
                if src != "x" and not present[k] <= present[src] and src not in passthrough:
                    return None
        flags: dict[str, tuple] = {}
        self.flag_having = {}
        body: list[str] = []
        i = 0
        while i < len(order) - 1:
            j = i
            while j + 1 < len(order) - 1 and present[order[j + 1]] == present[order[i]]:
                j += 1
            segment = order[i:j + 1]
            i = j + 1
            code = [f"{names[k]} = {self._line(lines[k], [names[s] for s in inputs[k]])}" for k in segment]
            if present[segment[0]] == everyone:
                body += code
                continue
            cond = self._runtime_condition(segment, present, having, flags, conds)
            if cond is None:
                return None
            outs = [k for k in segment if k in passthrough]
            if len(segment) == 1 and outs:
                body.append(f"{code[0]} if {cond} else {names[passthrough[segment[0]]]}")
            else:
                body += [f"if {cond}:"] + [f"    {c}" for c in code]
                if outs:
                    body += ["else:"] + [f"    {names[k]} = {names[passthrough[k]]}" for k in outs]
        body.append(f"return {names[inputs['return'][0]]}")
        text = "def forward(self, x):\n" + "".join(f"    {line}\n" for line in body)
        return text, acts, flags

    @staticmethod
    def _line(line: tuple[str, str], args: list[str]) -> str:
        template, module = line
        return template.format(*args, m=module)

    def _runtime_condition(self, segment, present, having, flags, conds) -> str | None:
        """`self.shortcut is not None` where the segment calls an optional member built under the
        same condition, else a flag the constructor sets."""
        variants = present[segment[0]]
        for k in segment:
            for s in (self.variants[i][1] for i in variants):
                step = next((t for t in s if t.key == k), None)
                if step is not None and step.attr in conds and having[step.attr] == set(variants):
                    return f"self.{step.attr} is not None"
        found = self.condition(set(variants), {k[1] for k in segment if isinstance(k, tuple) and k[0] == "op"})
        if found is None:
            return None
        label, text, span = found
        name = label if label in self.args.names else f"use_{label}"
        if name in having:  # a member's name
            name = f"use_{name}"
        flags[name] = (name, text, span)
        self.flag_having[name] = set(variants)
        return f"self.{name}"


def plan(ej) -> dict[str, Kind]:
    """The merged class of each block instance that is one (by region)."""
    by_decl: dict[tuple, list] = {}
    for cls in sorted(ej.classes.values(), key=lambda c: c.id):
        if cls.forward is None or not is_block(cls.doc):
            continue
        calls = [ej.em.graph.calls.get(r) for r, _ in cls.instances]
        if any(c is None or c.decl is None for c in calls):
            continue
        keys = {(c.block, c.decl.span.file, c.decl.span.line) for c in calls}
        if len(keys) == 1:
            by_decl.setdefault(keys.pop(), []).append((cls, calls[0].decl))
    out: dict[str, Kind] = {}
    for classes in by_decl.values():
        if len(classes) < 2:
            continue
        decl = classes[0][1]
        sites = call_sites(decl)
        params = {p.name for p in decl.params}
        groups: list[list] = []
        for cls, _ in classes:
            v = (cls, forward_steps(ej, cls.instances[0][0], sites, params))
            for g in groups:
                if _Merge(ej, g + [v], decl).kind() is not None:
                    g.append(v)
                    break
            else:
                groups.append([v])
        for g in groups:
            if len(g) > 1:
                kind = _Merge(ej, g, decl).kind()
                for r in kind.regions:
                    out[r] = kind
    return out


def _lines(members) -> set[int]:
    """The spec lines a class's members come from (their comments start `file:line`)."""
    return {int(m.group(1)) for x in members if (m := re.match(r"[^:]+:(\d+)", x.comment or ""))}


def variant_suffix(decl: ast.BlockDecl, main, cls) -> str | None:
    """What sets a structure apart from the block's merged class, in the spec's words: the
    optional lines it lacks (`NoExpand`: `... when expands`) or has (`WithSe`), else a layer
    built otherwise (`WithPaddedConv2d`), or None."""
    optional = [m for m in main.members if m.cond is not None]
    always = _lines([m for m in main.members if m.cond is None and m.kind in ("leaf", "region")])
    mine = _lines([m for m in cls.members if m.kind in ("leaf", "region")])
    whens = _whens(decl)
    words = []
    for lines, word in ((always - mine, "No"), (mine - always - _lines(optional), "With")):
        labels: list[str] = []
        for line in sorted(lines):
            around = [(span.line, label) for label, _, span in whens
                      if span.line <= line <= (getattr(span, "end_line", None) or span.line)]
            if not around:
                return None
            label = max(around)[1]
            if label not in labels:
                labels.append(label)
        words += [word + _camel(label) for label in labels]
    if not words:  # the same parts, other layers: a conv padded apart ("same" padding at stride 2)
        theirs = {m.attr: m.ctor for m in main.members if m.kind == "leaf"}
        words = sorted({"With" + m.ctor.removeprefix("nn.") for m in cls.members
                        if m.kind == "leaf" and theirs.get(m.attr, m.ctor) != m.ctor})
    return "".join(words) or None


def _camel(label: str) -> str:
    """`expands` -> `Expand`, `se` -> `Se`, `drop_path` -> `DropPath`."""
    if len(label) > 3 and label.endswith("s") and not label.endswith("ss"):
        label = label[:-1]
    return "".join(w[:1].upper() + w[1:] for w in label.split("_"))
