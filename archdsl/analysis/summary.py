"""The layer table of `archdsl summary`: per scope, collapsed to a depth, with totals."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .cost import node_costs

if TYPE_CHECKING:
    from ..compiler import CompiledSpec


@dataclass
class Row:
    layer: str
    op: str
    output: list[int]
    params: int
    flops: int
    rf_size: int
    rf_stride: int
    rf_whole: bool = False

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def summary_rows(compiled: "CompiledSpec", depth: int = 4) -> list[Row]:
    """One row per scope prefix of `depth` components (deeper nodes fold into their group),
    in execution order. A row's output and receptive field are those of its last node."""
    graph = compiled.graph
    costs = node_costs(graph)
    rows: dict[str, Row] = {}
    for node in graph:
        if node.op == "input":
            continue
        parts = node.scope.split(".")
        key = ".".join(parts[:depth])
        rf = compiled.rf[node.id]
        row = rows.get(key)
        if row is None:
            kind = node.op if len(parts) <= depth else graph.scopes.get(key, "scope").replace("block ", "")
            row = rows[key] = Row(key, kind, [], 0, 0, 0, 0)
        row.output = list(node.shape.dims)
        row.params += costs[node.id].params
        row.flops += costs[node.id].flops
        row.rf_size, row.rf_stride, row.rf_whole = max(rf.size), max(rf.jump), rf.whole
    return list(rows.values())


def summary_dict(compiled: "CompiledSpec", depth: int = 4) -> dict:
    t = compiled.totals
    return {
        "model": compiled.name,
        "input_shape": compiled.input_shape,
        "output_shape": compiled.output_shape,
        "layers": [r.as_dict() for r in summary_rows(compiled, depth)],
        "params": t.params,
        "flops": t.flops,
        "macs": t.macs,
        "other_flops": t.other_flops,
        "peak_activation_bytes": t.peak_activation_bytes,
        "receptive_field": compiled.final_rf.as_dict(),
    }


def summary_table(compiled: "CompiledSpec", depth: int = 4) -> str:
    from .cost import human

    rows = summary_rows(compiled, depth)
    header = ("layer", "op", "output", "params", "FLOPs", "RF", "stride")
    body = [(r.layer, r.op, "[" + ", ".join(map(str, r.output)) + "]", f"{r.params:,}", human(r.flops),
             "all" if r.rf_whole else str(r.rf_size), "-" if r.rf_whole else str(r.rf_stride)) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    right = {3, 4, 5, 6}

    def fmt(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    t = compiled.totals
    rf = compiled.final_rf
    rule = "-" * len(fmt(header))
    lines = [f"{compiled.name}: input {compiled.input_shape} -> output {compiled.output_shape}", rule,
             fmt(header), rule, *(fmt(b) for b in body), rule,
             f"parameters             {t.params:,}",
             f"FLOPs                  {t.flops:,} ({human(t.flops)}; conv, linear, attention; 2 per MAC)",
             f"other ops              {human(t.other_flops)} (norms, activations, pooling, merges)",
             f"peak activations       {human(t.peak_activation_bytes, 'B')} (fp32, batch 1)",
             "receptive field        " + ("the whole input" if rf.whole else
                                          f"{max(rf.size)} px, stride {max(rf.jump)}, centre offset {rf.start[0]:g}")]
    return "\n".join(lines)
