"""`archdsl eject`: an emitted module as one standalone, readable PyTorch file (needs only torch).

The file is written from the same emitter as the live module (`torch_module._Emitter`): the
same scopes become the same classes with the same `forward` code, and the same leaf modules
(the lowering table's) are constructed in `__init__`, so the state_dict keys are identical.

What the file adds over the live module:
- a class per kind of scope (block, section, branch), whose instances differ only in numbers;
  a block's class takes the spec's parameters (eject_blocks.py), another scope's the numbers
  that differ between its instances, named after the layer argument they first feed;
- one class for a block whose instances differ in structure (a part under `when`, an
  activation parameter), where it can build each of them exactly (eject_variants.py);
- one class for scopes whose forwards differ only in numbers (a split, a map size): the
  constructor keeps them for the forward (eject_numbers.py);
- repeats and loops stay loops: a numbered container whose items are called one after the
  other is an `nn.Sequential` of list comprehensions (`[Basic(c, c) for _ in range(d - 1)]`);
  a named loop's items are one class of the loop's variables, built in a loop over the spec's
  rows (eject_loops.py);
- each class and layer is commented with the spec line it came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from ..errors import source_line
from .eject_blocks import ABSENT, BlockArguments, Column
from .eject_leaves import helpers, leaf
from .eject_loops import Sequences, is_block, with_loop_items
from .eject_numbers import split_numbers
from .eject_spec import asks_same_padding
from .eject_render import ClassWriter
from .eject_variants import Kind, plan
from .torch_module import ArchModule, _Emitter

# ------------------------------------------------------------------------ the class model
@dataclass
class _Member:
    kind: str  # "leaf", "region", "seq", "number" (the forward's); in a merged block's class also "attr", "flag"
    attr: str
    comment: str
    ctor: str = ""  # leaf: constructor name
    arg_specs: list = field(default_factory=list)  # leaf: (kw, default, hint)
    child: int = -1  # region: class id
    runs: tuple = ()  # seq: ((form, class id), ...), form "range" or "list"
    container: str = "nn.Sequential"
    cond: str | None = None  # an optional part: the condition it is built under (eject_variants.py)
    text: str = ""  # a flag: its condition


@dataclass
class _Class:
    id: int
    name: str
    doc: str
    forward: str | None
    members: list
    instances: list = field(default_factory=list)  # per instance: raw values per member
    params: list = field(default_factory=list)  # constructor argument names
    defaults: dict = field(default_factory=dict)  # argument -> its default (the spec's)
    slots: list = field(default_factory=list)  # per flat slot: ("const", value) or ("expr", Python text)
    assignments: list = field(default_factory=list)  # (name, Python expression, span): __init__'s first lines
    merged: Kind | None = None  # several structures of a block made one class (eject_variants.py)


class _Ejector(ClassWriter, Sequences):
    """Collects the classes of a module's scopes (pass A, `visit`; a numbered container's runs of
    items as `Sequences`, eject_loops.py), solves their constructor arguments (pass B,
    `resolve`); writes them as `ClassWriter` (eject_render.py)."""

    def __init__(self, module: ArchModule, kinds: dict[str, Kind] | None = None, firsts: frozenset = frozenset()):
        self.module = module
        self.kinds = kinds  # block instance -> the merged class it is one of (eject_variants.py); None: pass 1
        # sequences (by path, loop indices as "#") where some instance's first item differs from
        # the rest: a repeat with `first(...)`, written as a first item and a loop in every instance
        self.firsts = set(firsts)
        self.em = _Emitter(with_loop_items(module.archdsl_graph))  # a loop's items as a block's (eject_loops.py)
        g = self.em.graph
        self.children: dict[str, list[tuple[str, object]]] = {r: [] for r in self.em.members}
        seen: set[str] = set()
        for nid in self.em.order:  # direct children in the order the live module adds them
            parts = self.em.parts[nid]
            for i in range(1, len(parts)):
                path = ".".join(parts[:i])
                parent = ".".join(parts[: i - 1])
                if path not in seen:
                    seen.add(path)
                    self.children[parent].append(("region", path))
            if self.em._lower(nid).module is not None:
                self.children[g.node(nid).parent_scope].append(("node", nid))
        self.classes: dict[tuple, _Class] = {}
        self.region_class: dict[str, _Class] = {}
        self.raw: dict[str, tuple] = {}  # region -> (class id, instance index)
        self.resolved: dict[str, list] = {}
        self.leaf_node: dict[tuple[str, str], int] = {}  # (region, attribute) -> the leaf's node
        self.used_runtime: set[str] = set()

    # pass A: classes and their instances, children first
    def visit(self, region: str) -> _Class:
        members, values = [], []
        for kind, ref in self.children[region]:
            if kind == "node":
                node = self.em.graph.node(ref)
                module = self.module.get_submodule(node.scope)
                ctor, args = leaf(module, asks_same_padding(self.em.graph, node))
                self.leaf_node[(region, node.name)] = ref
                if not ctor.startswith("nn."):
                    self.used_runtime.add(ctor)
                members.append(_Member("leaf", node.name, self._where(node.span), ctor=ctor,
                                       arg_specs=[(kw, d, h) for kw, _, d, h in args]))
                values.append(("leaf", [v for _, v, _, _ in args]))
                continue
            attr = ref.rsplit(".", 1)[-1]
            items = self._sequence_items(ref)
            if items is not None:
                runs, run_values = [], []
                for item_group in self._runs(items):
                    raws = {self._raw(i) for i in item_group}
                    form = "range" if len(raws) <= 1 else "list"
                    runs.append((form, self.region_class[(item_group or items)[0]].id))
                    run_values.append(item_group)
                container = "nn.Sequential" if self.em.callable.get(ref) else "nn.ModuleList"
                members.append(_Member("seq", attr, self._region_where(ref), runs=tuple(runs), container=container))
                values.append(("seq", run_values))
            else:
                child = self.visit(ref)
                members.append(_Member("region", attr, self._member_where(ref), child=child.id))
                values.append(("region", ref))
        name, base, src = self.em.region_class(region)
        forward = src if base != "container" else None
        merged = (self.kinds or {}).get(region)
        if merged is not None:
            members, values = self._as_merged(merged, region, members, values)
            forward, key = merged.forward, ("merged", id(merged))
        else:
            # the numbers in its code: arguments (eject_numbers.py); a block's only once merged (as
            # the plan reads one instance of a class for all)
            if forward and (self.kinds is not None or not is_block(self.em.graph.scopes.get(region, ""))):
                forward, numbers, hints = split_numbers(forward)
                members = members + [_Member("number", h, "") for h in hints]
                values = values + [("number", n) for n in numbers]
            key = (name, forward, tuple((m.kind, m.attr, m.ctor, tuple(m.arg_specs), m.child, m.runs, m.container)
                                        for m in members))
        cls = self.classes.get(key)
        if cls is None:
            kind = self.em.graph.scopes.get(region, "section")
            cls = self.classes[key] = _Class(len(self.classes), name, kind, forward, members, merged=merged)
        elif merged is not None:  # a part the first instances lacked: its class is this pass's
            for i, (k, _) in enumerate(values):
                if k == "region":
                    cls.members[i] = members[i]
        self.raw[region] = (cls.id, len(cls.instances))
        cls.instances.append((region, values))
        self.region_class[region] = cls
        return cls

    def _as_merged(self, merged: Kind, region: str, members: list, values: list) -> tuple[list, list]:
        """A merged class's members (every variant's, optional ones with their condition, then
        its activation attributes and flags) and this instance's values ("absent" where it lacks one)."""
        mine = {m.attr: (m, v) for m, v in zip(members, values)}
        out_m = [_Member("attr", p, "") for p in merged.acts]
        out_v = [("attr", merged.act_values[p][region]) for p in merged.acts]
        for attr in merged.order:
            m, v = mine.get(attr, (merged.members[attr], ("absent", None)))
            out_m.append(replace(m, cond=merged.conds.get(attr)))
            out_v.append(v)
        for name, text, span in merged.flags:
            out_m.append(_Member("flag", name, self._where(span), text=text))
            out_v.append(("flag", merged.flag_values[name][region]))
        return out_m, out_v

    def _raw(self, region: str):
        """A hashable value of everything a region's constructor is made of."""
        cls = self.region_class[region]
        _, values = cls.instances[self.raw[region][1]]
        out = [cls.id]
        for kind, v in values:
            if kind == "leaf":
                out.append(tuple(v))
            elif kind == "region":
                out.append(self._raw(v))
            elif kind == "seq":
                out.append(tuple(tuple(self._raw(i) for i in group) for group in v))
            else:
                out.append(v)
        return tuple(out)

    def _class_id_of(self, region: str) -> int:
        if region not in self.region_class:
            self.visit(region)
        return self.region_class[region].id

    def _where(self, span) -> str:
        if span is None:
            return ""
        text = source_line(span.file, span.line)
        file = str(span.file).replace("<stdlib>/", "")
        return f"{file}:{span.line}" + (f": {text.strip()}" if text else "")

    def _member_where(self, region: str) -> str:
        """A block instance's comment quotes its call; other scopes give their lines."""
        call = self.em.graph.calls.get(region)
        return self._where(call.span) if call is not None and call.span is not None else self._region_where(region)

    def _region_where(self, region: str) -> str:
        """The lines a scope comes from: a block called in it counts as its call's line (a
        stage's loop is the line that calls the block, not the block's own lines)."""
        g = self.em.graph
        prefix = region + "." if region else ""
        called = {r for r in g.calls if r.startswith(prefix) and r != region}
        outer = {r for r in called if not any(r.startswith(o + ".") for o in called if o != r)}
        spans = [g.calls[r].span for r in outer if g.calls[r].span is not None]
        for n in self.em.members.get(region) or []:
            parts = self.em.parts[n]
            if g.node(n).span is not None and not any(".".join(parts[:i]) in outer for i in range(1, len(parts))):
                spans.append(g.node(n).span)
        files = {str(s.file) for s in spans}
        if len(files) != 1:
            return ""
        lines = [s.line for s in spans]
        if max(lines) == min(lines):
            return self._where(spans[0])
        return f"{files.pop().replace('<stdlib>/', '')}:{min(lines)}-{max(lines)}"

    # pass B: constructor arguments, children's classes first
    def resolve(self) -> None:
        for cls in self.bottom_up():
            columns = []
            for i, member in enumerate(cls.members):
                per = [values[i] for _, values in cls.instances]
                if member.cond is not None:  # the condition first: the part's own columns read its names
                    columns.append(Column([k != "absent" for k, _ in per], "condition", member.attr, text=member.cond))
                rows, info = [], None
                for (region, _), (kind, v) in zip(cls.instances, per):
                    if kind == "absent":
                        rows.append(None)
                        continue
                    flat, info_ = self._member_columns(region, member, kind, v)
                    rows.append(flat)  # what a column feeds, from an instance where it is there
                    info = info_ if info is None else [a if a[3] is not None else b for a, b in zip(info, info_)]
                for j, item in enumerate(info or []):
                    columns.append(Column([ABSENT if row is None else row[j] for row in rows], *item))
            regions = [region for region, _ in cls.instances]
            calls = [self._block_call(r) for r in regions]
            if all(c is not None and c.decl is not None for c in calls) and len({c.decl for c in calls}) == 1:
                self._solve_block(cls, regions, calls, columns)
            else:
                self._solve_section(cls, regions, columns)

    def _member_columns(self, region: str, member: _Member, kind: str, v) -> tuple[list, list]:
        """One instance's values of a member's columns, and what each feeds: (hint, attr, leaf
        node, child region, child parameter[, condition text, block parameter])."""
        if kind == "leaf":
            nid = self.leaf_node[(region, member.attr)]
            return list(v), [(h, member.attr, nid, None, None) for _, _, h in member.arg_specs]
        if kind == "region":
            return list(self.resolved[v]), [(p, member.attr, None, v, p) for p in self._class(member.child).params]
        if kind == "attr":
            return [v], [(member.attr, member.attr, None, None, None, None, member.attr)]
        if kind == "number":
            return [v], [(member.attr, member.attr, None, None, None)]
        if kind == "flag":
            return [v], [("flag", member.attr, None, None, None, member.text)]
        flat, info, before = [], [], 0
        for k, ((form, cid), group) in enumerate(zip(member.runs, v)):
            child = self._class(cid)
            if form == "range":  # an empty loop (after a first item) has its arguments nowhere
                flat += (self.resolved[group[0]] if group else [ABSENT] * len(child.params)) + [len(group)]
                info += [(p, member.attr, None, group[0] if group else None, p) for p in child.params]
                first = k == 0 and len(member.runs) > 1 and len(group) == 1
                info.append(("depth", member.attr, None, None, None, None, None, before, first))
            else:
                flat.append(tuple(tuple(self.resolved[r]) for r in group))
                info.append((f"{member.attr}_args", member.attr, None, None, None))
            before += len(group)
        return flat, info

    def bottom_up(self) -> list[_Class]:
        """Every class after the classes it builds, in the order the root first uses them."""
        out, seen = [], set()

        def visit(cls: _Class) -> None:
            seen.add(cls.id)
            for m in cls.members:
                for cid in ([m.child] if m.kind == "region" else [c for _, c in m.runs] if m.kind == "seq" else []):
                    if cid not in seen:
                        visit(self._class(cid))
            out.append(cls)

        visit(self.region_class[""])
        return out

    def _block_call(self, region: str):
        """The call of the block `region` is, or is a part of (a shortcut, a branch), else None."""
        calls = self.em.graph.calls
        while region not in calls and region:
            region = region.rsplit(".", 1)[0] if "." in region else ""
        return calls.get(region)

    def _solve_block(self, cls: _Class, regions: list[str], calls: list, columns: list[Column]) -> None:
        """A block's class, or a part's: the spec's parameters as its arguments (eject_blocks.py)."""
        in_channels = [self._in_channels(r) for r in regions]
        sig = BlockArguments(self.em.graph, regions, calls, in_channels).solve(columns)
        cls.params, cls.defaults, cls.slots, cls.assignments = sig.params, sig.defaults, sig.slots, sig.assignments
        for region, values in zip(regions, sig.values):
            self.resolved[region] = values

    def _in_channels(self, region: str) -> int | None:
        interface = self.em.callable.get(region)
        return self.em.graph.node(interface[0]).shape.c if interface is not None else None

    def _solve_section(self, cls: _Class, regions: list[str], columns: list[Column]) -> None:
        """Any other scope's class: the numbers that differ between its instances become its
        arguments, named after the layer argument they first feed."""
        names: dict[tuple, str] = {}
        params: list[tuple[str, int]] = []
        for j, col in enumerate(columns):
            values = tuple(col.values)
            if len(set(map(_key, values))) == 1:
                cls.slots.append(("const", values[0]))
                continue
            if values not in names:
                taken = {n for n, _ in params}
                name = col.hint if col.hint not in taken else f"{col.attr}_{col.hint}"
                k = 2
                while name in taken:
                    name, k = f"{col.hint}_{k}", k + 1
                names[values] = name
                params.append((name, j))
            cls.slots.append(("expr", names[values]))
        cls.params = [n for n, _ in params]
        for i, region in enumerate(regions):
            self.resolved[region] = [columns[j].values[i] for _, j in params]

    def _class(self, cid: int) -> _Class:
        return next(c for c in self.classes.values() if c.id == cid)

    # rendering


def _key(v):
    return repr(v)


def eject_source(module: ArchModule) -> str:
    """One standalone Python file (needs only torch) defining `module`'s classes; the root class
    built with no arguments has the same state_dict keys as `module`."""
    if getattr(module, "archdsl_graph", None) is None:
        raise ValueError("this module carries no archdsl graph; build it with archdsl.build")
    with torch.device("meta"):  # the emitter's own leaf modules are only looked at, not kept
        first = _Ejector(module)  # a class per structure, as the emitter makes them
        first.visit("")
        # then again, the structures of one block that can be one class merged (eject_variants.py)
        ej = _Ejector(module, plan(first), frozenset(first.firsts))
        root = ej.visit("")
    ej.resolve()
    names = ej.class_names()
    classes = [ej.render_class(c, names) for c in ej.bottom_up()]
    copied = helpers(ej.used_runtime, [c.forward or "" for c in ej.classes.values()] + classes)
    info = module.archdsl_info
    optimized = " (inference form: archdsl.optimize)" if getattr(module, "archdsl_passes", None) is not None else ""
    spec = info.get("spec") or info.get("model")
    header = (f'"""{names[root.id]}{optimized}: written by `archdsl eject` from {spec}.\n\n'
              f"Standalone PyTorch (needs only torch). `{names[root.id]}()` has the state_dict keys of\n"
              f"the archdsl module, so checkpoints load in either. Input {list(info.get('input_shape', []))}, "
              f"output {list(info.get('output_shape', []))}.\n\"\"\"\n")
    stdlib = "".join(f"import {m}\n" for m in ("itertools", "math") if f"{m}." in copied + "".join(classes))
    imports = (stdlib + "\n" if stdlib else "") + "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
    parts = [header + imports]
    if copied:
        parts.append(copied)
    parts += classes
    return "\n\n".join(parts).rstrip() + "\n"


__all__ = ["eject_source"]
