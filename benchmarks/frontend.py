"""How long `archdsl check` takes on every shipped spec: parse, elaborate, check shapes
and receptive fields, count parameters and FLOPs (issue 3: under one second in all).

    python benchmarks/frontend.py [--repeat 5]

Runs in one process without torch (asserted), after one warm-up pass (the grammar is
built once per process), and prints per-spec medians and the total against the budget.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archdsl.compiler import compile_spec  # noqa: E402

BUDGET_S = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    specs = sorted((ROOT / "specs").glob("*.arch"))
    start = time.perf_counter()
    for spec in specs:  # warm-up, and the cold figure a CLI user sees (grammar built once)
        compile_spec(spec).totals
    cold = time.perf_counter() - start
    times = {spec.stem: [] for spec in specs}
    for _ in range(args.repeat):
        for spec in specs:
            t = time.perf_counter()
            compiled = compile_spec(spec)
            compiled.totals  # FLOPs and memory too, as `archdsl summary` computes them
            times[spec.stem].append(time.perf_counter() - t)
    assert "torch" not in sys.modules, "the front end imported torch"
    print(f"{'spec':<16} {'median ms':>10}")
    for name, ts in times.items():
        print(f"{name:<16} {statistics.median(ts) * 1e3:>10.1f}")
    warm = sum(statistics.median(ts) for ts in times.values())
    print(f"\nall {len(specs)} specs: {warm * 1e3:.0f} ms warm, {cold * 1e3:.0f} ms cold (first pass, grammar "
          f"included); budget {BUDGET_S * 1e3:.0f} ms: {BUDGET_S / cold:.2f}x headroom cold")


if __name__ == "__main__":
    main()
