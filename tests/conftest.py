import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.arch"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Specs whose numeric tests (forward passes with real weights, in float32 and float64) cost
# more than a few seconds each on a 2-core machine. Their blocks are covered numerically by
# the smaller variants of the same family; they get the structural checks (meta device).
HEAVY_PARAMS = 40_000_000
HEAVY_FLOPS = 12_000_000_000
# Light by size but slow in float64 (depthwise convs, hundreds of concats): covered
# numerically by densenet121 and shufflenet_v2_x0_5.
SLOW_NUMERICS = {"densenet169", "densenet201", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"}


@lru_cache(maxsize=None)
def spec_cost(path: Path) -> tuple[int, int]:
    """(parameters, FLOPs) of a spec, from the front end (no torch)."""
    from archdsl.compiler import compile_spec

    compiled = compile_spec(path)
    return compiled.params, compiled.totals.flops


def is_heavy(path: Path) -> bool:
    params, flops = spec_cost(path)
    return params > HEAVY_PARAMS or flops > HEAVY_FLOPS or path.stem in SLOW_NUMERICS


def light_specs() -> list[Path]:
    """The shipped specs cheap enough for numeric tests at full size."""
    return [p for p in SPECS if not is_heavy(p)]


@pytest.fixture(autouse=True)
def _torch_threads():
    # keep the suite predictable on the 2-core CI machine
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        pass
