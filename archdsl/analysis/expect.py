"""`expect` statements: facts the spec's author pinned down, checked against the analyses."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ArchExpectError, ArchNameError, did_you_mean
from ..elaborate.values import describe

if TYPE_CHECKING:
    from ..compiler import CompiledSpec

_CMP = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _subjects(compiled: "CompiledSpec"):
    return {
        "params": lambda: compiled.params,
        "output": lambda: compiled.output_shape,
        "input": lambda: compiled.input_shape,
        "flops": lambda: compiled.totals.flops,
        "macs": lambda: compiled.totals.macs,
        "rf": lambda: max(compiled.final_rf.size),
        "stride": lambda: max(compiled.final_rf.jump),
        "memory": lambda: compiled.totals.peak_activation_bytes,
    }


def check_expectations(compiled: "CompiledSpec") -> None:
    subjects = _subjects(compiled)
    for exp in compiled.expects:
        stmt = exp.stmt
        if stmt.subject not in subjects:
            raise ArchNameError(f"cannot expect '{stmt.subject}'", stmt.subject_span,
                                did_you_mean(stmt.subject, subjects) or "known: " + ", ".join(subjects))
        actual = subjects[stmt.subject]()
        expected = exp.value
        if isinstance(actual, list) != isinstance(expected, list) or (
                isinstance(actual, list) and stmt.op not in ("==", "!=")):
            raise ArchExpectError(f"expect {stmt.subject} {stmt.op} {describe(expected)}: cannot compare "
                                  f"{describe(actual)} that way", stmt.span)
        if not _CMP[stmt.op](actual, expected):
            shown = f"{actual:,}" if isinstance(actual, int) else describe(actual)
            raise ArchExpectError(f"expectation failed: {stmt.subject} is {shown}, "
                                  f"not {stmt.op} {describe(expected) if isinstance(expected, list) else f'{expected:,}'}",
                                  stmt.span, "fix the spec, or update the expectation if the change is intended")
