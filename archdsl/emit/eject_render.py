"""Writing an ejected file's classes (`archdsl eject`): names, constructors, forward.

`ClassWriter` is a part of `eject._Ejector`, split off to keep each file readable: it reads the
classes the ejector collected (`classes`, `em`, `_class`, `_where`, `_region_where`) after
their arguments are solved, and writes each class's source.
"""
from __future__ import annotations

import re

from .eject_blocks import same
from .eject_leaves import NO_DEFAULT, literal
from .eject_loops import is_block, loop_index, threaded_loop
from .eject_numbers import fill_numbers
from .eject_variants import variant_suffix


class ClassWriter:
    def _describe(self, cls: _Class, region: str) -> str:
        kind = cls.doc
        if region == "":
            return f"The model `{self.em.graph.name}`"
        if kind.startswith("block "):
            return f"Block `{kind.split(' ', 1)[1]}`"
        name = region.rsplit(".", 1)[-1]
        if kind in ("loop item", "repeat item"):
            return f"An item of `{region.rsplit('.', 2)[-2]}`" if "." in region else "An item"
        return f"`{name}` ({kind})"

    def class_names(self) -> dict[int, str]:
        """A block's class has the block's name; a structure of it that its class cannot build
        is named by what sets it apart (`InvertedResidualNoExpand`, eject_variants.py). Variants
        of another scope are named by their parts: `Stage`, `StageWithDownsample`; a variant
        whose output adds its input, `...WithSkip`. Numbered only where that is not enough."""
        kinds: dict[str, list[_Class]] = {}
        for cls in sorted(self.classes.values(), key=lambda c: c.id):
            kinds.setdefault(cls.name, []).append(cls)
        names, taken = {}, set()
        for base, variants in kinds.items():
            main = max(variants, key=lambda c: (c.merged is not None, len(c.instances), -c.id))
            call = self.em.graph.calls.get(main.instances[0][0])
            if len(variants) > 1 and call is not None and call.decl is not None and \
                    all(is_block(c.doc) for c in variants):
                # the block's class; a structure it cannot build, named by what sets it apart
                decl = call.decl
                for cls in variants:
                    suffix = "" if cls is main else variant_suffix(decl, main, cls)
                    name, k = base + (suffix or ""), 2
                    while name in taken or (suffix is None and k == 2):
                        name, k = f"{base}{suffix or ''}{k}", k + 1
                    taken.add(name)
                    names[cls.id] = name
                continue
            parts = {cls.id: _parts(cls) for cls in variants}
            if any("Shortcut" in p for p in parts.values()):  # the other residual form: no need to say
                parts = {i: [p for p in ps if p != "Skip"] for i, ps in parts.items()}
            common = set.intersection(*map(set, parts.values()))
            for cls in variants:
                extra = [p for p in parts[cls.id] if p not in common]
                name = base + ("With" + "And".join(extra) if extra else "")
                k = 2
                while name in taken:
                    name, k = f"{base}{''.join(extra) and 'With' + 'And'.join(extra)}{k}", k + 1
                taken.add(name)
                names[cls.id] = name
        return names

    def render_class(self, cls: _Class, names: dict[int, str]) -> str:
        slots = iter(cls.slots)

        def arg(default=NO_DEFAULT):
            kind, v = next(slots)
            if kind == "expr":
                return v, True
            return literal(v), not (default is not NO_DEFAULT and same(v, default))

        def call(child: _Class, cname: str) -> str:
            return _call(cname, child, [arg(child.defaults.get(p, NO_DEFAULT)) for p in child.params])

        lines = []
        last_comment = None
        optional: tuple | None = None  # (condition, attributes set to None otherwise) of an open `if`

        def close() -> None:
            if optional is not None:
                lines.append("        else:")
                lines.extend(f"            self.{a} = None" for a in optional[1])

        for m in cls.members:
            if m.kind == "number":  # after the layers (below)
                continue
            cond = arg()[0] if m.cond is not None else None
            if optional is not None and cond != optional[0]:
                close()
                optional, last_comment = None, None
            if cond is not None and optional is None:  # the part's spec line, then its condition
                lines += [f"        # {m.comment}"] * bool(m.comment) + [f"        if {cond}:"]
                optional, last_comment = (cond, []), m.comment
            start = len(lines)
            if m.comment and m.comment != last_comment:  # one comment per spec line, above its layers
                lines.append(f"        # {m.comment}")
            last_comment = m.comment
            comment = ""
            if m.kind in ("attr", "flag"):  # an activation the block takes; a condition its forward reads
                expr = arg()[0]
            elif m.kind == "leaf":
                args = []
                for kw, default, _ in m.arg_specs:
                    text, show = arg(default)
                    if show:
                        args.append(text if kw is None else f"{kw}={text}")
                expr = f"{m.ctor}({', '.join(args)})"
            elif m.kind == "region":
                child = self._class(m.child)
                expr = call(child, names[child.id])
            else:
                parts, loop = [], None
                for form, cid in m.runs:
                    child = self._class(cid)
                    cname = names[cid]
                    if form == "range":
                        one = call(child, cname)
                        count, _ = arg()
                        if count != "0":  # no loop after a first item, in every instance
                            parts.append(one if count == "1" else f"*[{one} for _ in range({count})]")
                    else:
                        kind, rows = next(slots)
                        table = rows if kind == "expr" else (
                            "[\n" + "".join(f"{' ' * 16}{literal(r)},\n" for r in rows) + " " * 12 + "]")
                        if child.params:
                            params = ", ".join(child.params)
                            names_ = params if len(child.params) > 1 else f"({params},)"
                            one = _call(cname, child, [(p, True) for p in child.params])
                            parts.append(f"*[{one} for {names_} in {table}]")
                            if len(m.runs) == 1 and kind == "const" and m.attr.isidentifier() and \
                                    not {m.attr, "in_channels", *child.params} & set(cls.params):
                                loop = threaded_loop(m.attr, m.container, one, child.params, rows,
                                                     self._loop_index(child), literal)
                        else:
                            parts.append(f"*[{cname}() for _ in {table}]")
                # nn.Sequential takes its modules as arguments, nn.ModuleList as one list
                opening, closing = (f"{m.container}([", "])") if m.container == "nn.ModuleList" else \
                    (f"{m.container}(", ")")
                one_line = f"{opening}{', '.join(parts)}{closing}"
                expr = one_line if len(one_line) < 80 and "\n" not in one_line else (
                    f"{opening}\n" + "".join(f"{' ' * 12}{p},\n" for p in parts) + " " * 8 + closing)
            if m.kind == "seq" and loop is not None:  # a loop over the spec's rows (eject_loops.py)
                lines += [f"        {line}" for line in "\n".join(loop).split("\n")]
            elif m.attr.isidentifier():
                lines.append(f"        self.{m.attr} = {expr}{comment}")
            else:
                lines.append(f"        self.add_module({m.attr!r}, {expr}){comment}")
            if optional is not None:
                optional[1].append(m.attr)
                lines[start:] = ["\n".join("    " + x for x in line.split("\n")) for line in lines[start:]]
        close()
        numbers: dict[str, str] = {}  # the forward's numbers that differ: attribute -> its value
        taken = {m.attr for m in cls.members if m.kind != "number"}
        texts = [self._number(arg(), m.attr, taken, numbers) for m in cls.members if m.kind == "number"]
        lines += [f"        self.{a} = {text}" for a, text in numbers.items()]
        signature = ", ".join(["self"] + [f"{p}={literal(cls.defaults[p])}" if p in cls.defaults else p
                                          for p in cls.params])
        for name, text, span in reversed(cls.assignments):  # the block's own names, first
            lines[:0] = [f"        # {self._where(span)}", f"        {name} = {text}"]
        region = cls.instances[0][0]
        call = self.em.graph.calls.get(region)
        decl = call.decl if call is not None and is_block(cls.doc) else None
        where = self._where(decl.span).split(": ", 1)[0] if decl is not None else self._region_where(region)
        if len(signature) > 90:  # one argument a line, as a formatter would
            signature = "\n" + "".join(f"{' ' * 12}{a},\n" for a in signature.split(", ")) + " " * 4
        doc = f'    """{self._describe(cls, region)}{" (" + where + ")" if where else ""}."""\n\n'
        body = f"class {names[cls.id]}(nn.Module):\n{doc}    def __init__({signature}):\n        super().__init__()\n"
        body += "\n".join(lines) + ("\n" if lines else "")
        if cls.forward:
            forward = fill_numbers(cls.forward, texts)
            body += "\n" + "".join(f"    {line}" if line.strip() else line for line in forward.splitlines(True))
        return body



    @staticmethod
    def _number(slot: tuple[str, bool], hint: str, taken: set, numbers: dict) -> str:
        """A number of the forward's code: its literal, or the attribute the constructor keeps
        it in (`self.h = h`; named after its value's name, else the parameter it is passed as)."""
        text, _ = slot
        if text.lstrip("-").isdigit():
            return text
        name = next((a for a, t in numbers.items() if t == text), None)
        if name is None:
            name, k = text if text.isidentifier() and text not in taken else hint, 2
            while name in taken or name in numbers:
                name, k = f"{hint}{k}", k + 1
            numbers[name] = text
        return f"self.{name}"

    def _loop_index(self, cls: _Class) -> str | None:
        """The variable of a loop item's class that numbers the items (`i` of `for i, d in
        depths`), where the loop binds one."""
        call = self.em.graph.calls.get(cls.instances[0][0])
        loop = getattr(call.decl, "loop", None) if call is not None else None
        return loop_index(loop) if loop is not None else None


def _parts(cls: _Class) -> list[str]:
    """What a class's instances have that a variant may lack: its sub-scopes (`Shortcut`,
    `Se`), and `Skip` when its output adds its input."""
    out = ["".join(w[:1].upper() + w[1:] for w in m.attr.split("_")) for m in cls.members if m.kind == "region"]
    if cls.forward and re.search(r"^\s*\w+ = \w+ \+ x$", cls.forward, re.M):
        out.append("Skip")
    return out


def _call(cname: str, child: _Class, args: list[tuple[str, bool]]) -> str:
    """`Child(a, b, c=d)`: arguments with a default by keyword, left out where they equal it."""
    texts = [text if p not in child.defaults else f"{p}={text}"
             for p, (text, show) in zip(child.params, args) if show or p not in child.defaults]
    return f"{cname}({', '.join(texts)})"
