"""Which specs the emitter tests run, and at what size, so that their cost stays flat as the
zoo grows: resnet18 and the fewest small specs that together run every (op, input layout)
lowering any shipped spec uses, at 64 px where the family takes a `resolution`."""
from __future__ import annotations

import re

from torch import nn

import archdsl
from archdsl.compiler import compile_spec
from archdsl.errors import ArchDSLError
from conftest import SPECS
from reference import randomize


def family_and_params(path) -> tuple[str, int]:
    """The family a spec instantiates (its file name if none) and its `expect params` figure."""
    text = path.read_text()
    fam = re.search(r"^model\s+\w+\s*=\s*(\w+)\s*\(", text, re.M)
    params = re.search(r"expect\s+params\s*==\s*([\d_]+)", text)
    return (fam.group(1) if fam else path.stem), (int(params.group(1).replace("_", "")) if params else 1 << 62)


def lowerings(spec) -> set:
    """The (op, input layouts) pairs a spec's graph uses: what decides which emitter code runs."""
    g = compile_spec(spec).graph
    return {(n.op, tuple(s.layout for s in g.in_shapes(n.id))) for n in g if n.op != "input"}


def representatives() -> list:
    """resnet18, then (smallest first, by the declared parameter count) each spec that uses a
    lowering none of the chosen ones runs, until every lowering of the zoo is run by one of
    them. The emitter's code paths are the lowerings: the other specs are the same code with
    other numbers, checked on the meta device."""
    used = {path: lowerings(path) for path in SPECS}
    reps = [p for p in SPECS if p.stem == "resnet18"]
    covered = set().union(*(used[p] for p in reps))
    for path in sorted(SPECS, key=lambda p: family_and_params(p)[1]):
        if used[path] - covered:
            reps.append(path)
            covered |= used[path]
    return sorted(reps)


REPS = representatives()
REP_IDS = [p.stem for p in REPS]


def small_model(spec, resolution: int = 64) -> nn.Module:
    """The spec at `resolution` px (or 1.5x, 2x) where the family takes one (else its own size), with random
    weights and batch-norm statistics (so that wrong outputs show), in eval mode."""
    for size in (resolution, resolution * 3 // 2, resolution * 2):  # the smallest the family takes
        try:
            model = archdsl.build(spec, resolution=size)
            break
        except ArchDSLError:
            continue
    else:
        model = archdsl.build(spec)
    randomize(model)
    return model.eval()
