"""How long `archdsl viz` takes on every shipped spec, in every format (issue 9: under one
second of its own time per spec and format; a benchmark, not a test).

    python benchmarks/viz.py [--depth 2] [--formats .svg,.html] [SPEC_NAME_GLOB ...]

One process without torch (asserted). Per spec: compile (the front end, as `check`), then
each format rendered from that compiled spec (graphviz's `dot` included, run as a
subprocess; for .html, the page's pieces of every drawing, laid out later in the browser)
and written atomically into a temporary folder. Prints milliseconds per spec
and format, the worst against the budget, and which specs exceed it.
"""
from __future__ import annotations

import argparse
import fnmatch
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archdsl.compiler import compile_spec  # noqa: E402
from archdsl.diagram import FORMATS, drawing, render, write  # noqa: E402

BUDGET_S = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", default=["*"], help="spec names to run (globs; default all)")
    parser.add_argument("--depth", default="2", help="drawing depth (default 2, the command's default; 'all')")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated suffixes")
    args = parser.parse_args()
    depth = None if args.depth == "all" else int(args.depth)
    formats = args.formats.split(",")
    specs = [s for s in sorted((ROOT / "specs").glob("*.arch"))
             if any(fnmatch.fnmatch(s.stem, p) for p in args.patterns)]
    compile_spec(specs[0])  # warm-up: the grammar is built once per process
    print(f"{'spec':<28} {'compile':>8} " + " ".join(f"{f:>8}" for f in formats) + "   (ms)")
    over, worst = [], (0.0, "")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            t = time.perf_counter()
            facts, opened = drawing(compile_spec(spec), depth=depth)
            row = [time.perf_counter() - t]
            for suffix in formats:
                t = time.perf_counter()
                write(Path(tmp) / f"{spec.stem}{suffix}", render(facts, opened, suffix))
                row.append(time.perf_counter() - t)
                if row[-1] > worst[0]:
                    worst = (row[-1], f"{spec.stem}{suffix}")
                if row[0] + row[-1] > BUDGET_S:
                    over.append(f"{spec.stem}{suffix} ({(row[0] + row[-1]) * 1e3:.0f} ms)")
            print(f"{spec.stem:<28} " + " ".join(f"{x * 1e3:>8.0f}" for x in row))
    assert "torch" not in sys.modules, "viz imported torch"
    print(f"\n{len(specs)} specs x {len(formats)} formats; slowest render {worst[1]} {worst[0] * 1e3:.0f} ms; "
          f"budget {BUDGET_S * 1e3:.0f} ms per spec and format (compile + render)")
    print("over budget: " + (", ".join(over) if over else "none"))


if __name__ == "__main__":
    main()
