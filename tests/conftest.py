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


@lru_cache(maxsize=None)
def family_representatives() -> frozenset[str]:
    """The cheapest light spec of each family (by FLOPs): where the costly numeric checks
    (float64, several passes of the same blocks) run once per family."""
    from archdsl.compiler import compile_spec

    best: dict[str, tuple[int, str]] = {}
    for p in light_specs():
        family = compile_spec(p).graph.family or p.stem
        cost = (spec_cost(p)[1], p.stem)
        best[family] = min(best.get(family, cost), cost)
    return frozenset(name for _, name in best.values())


@pytest.fixture(autouse=True)
def _torch_threads():
    # keep the suite predictable on the 2-core CI machine
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        pass


# The quick developer subset (`python -m pytest -m quick`, under 3 minutes on 2 cores) must
# touch every layer. Helpers mark one representative test of their area in its file; these
# are marked here so that the layers stay covered whoever edits those files: parse and
# check (the whole bad-spec corpus, in process), the fuzzers (at few examples, below), the
# analyses, emit (resnet18's runtime shapes), the passes, the FX emitter and the command line.
QUICK = (
    "test_bad_specs.py::test_bad_spec[", "test_bad_specs.py::test_the_corpus_is_complete",
    "test_fuzz.py::", "test_analysis.py::test_expect_on_analyses",
    "test_analysis.py::test_misaligned_shortcut_is_a_warning_at_the_merge",
    "test_emit.py::test_runtime_shapes_equal_static_shapes[resnet18]", "test_emit.py::test_module_tree_mirrors_the_spec",
    "test_passes.py::test_optimized_equals_plain_on_every_spec[resnet18]", "test_fx.py::test_fx_nodes_are_the_ir_scopes",
    "test_cli.py::test_check_every_shipped_spec_without_importing_torch", "test_cli.py::test_exit_codes",
    "test_templates.py::test_the_template_is_keyed_on_arguments_and_input_shape",
    "test_templates.py::test_a_limit_crossed_in_a_copy_is_reported_where_elaboration_reports_it",
)
QUICK_FUZZ_EXAMPLES = "8"


def pytest_configure(config):
    if "quick" in (config.getoption("markexpr", "") or "") and "not quick" not in config.getoption("markexpr"):
        import os

        os.environ.setdefault("ARCHDSL_FUZZ_EXAMPLES", QUICK_FUZZ_EXAMPLES)  # read by test_fuzz at import


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(pattern in item.nodeid for pattern in QUICK):
            item.add_marker(pytest.mark.quick)
