"""The command line, run as a user would: a separate process, its exit code and output."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, SPECS


def archdsl(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "archdsl", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_check_every_shipped_spec_without_importing_torch():
    code = ("import sys; from archdsl.cli import main; rc = main(['check', *sys.argv[1:]]); "
            "assert 'torch' not in sys.modules, 'check imported torch'; sys.exit(rc)")
    r = archdsl(*[str(p) for p in SPECS], code=code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": ok (") == len(SPECS)


def test_build_resnet50_prints_the_summary():
    r = archdsl("build", "specs/resnet50.arch")
    assert r.returncode == 0, r.stderr
    assert "25,557,032" in r.stdout and "[1000]" in r.stdout


def test_build_json():
    r = archdsl("build", "specs/mobilevit_s.arch", "--json")
    summary = json.loads(r.stdout)
    assert {"model", "params", "input_shape", "output_shape"} <= set(summary)
    assert (summary["params"], summary["input_shape"], summary["output_shape"]) == (5_578_632, [3, 256, 256], [1000])


def test_build_set_rebinds_family_parameters():
    r = archdsl("build", "specs/resnet18.arch", "--json", "--set", "classes=10", "--set", "depths=[1, 1, 1, 1]")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["output_shape"] == [10]


def test_broken_spec_reports_position_without_traceback():
    r = archdsl("check", "examples/broken_residual.arch")
    assert r.returncode == 1
    assert "examples/broken_residual.arch:9:5: error: residual branch ends with 128 channels but the " \
           "shortcut carries 256" in r.stderr
    assert "hint:" in r.stderr and "Traceback" not in r.stderr


def test_exit_codes():
    assert archdsl("check").returncode == 2  # no spec: a wrong command line
    assert archdsl("frobnicate").returncode == 2
    assert archdsl("check", "no/such/file.arch").returncode == 1
    r = archdsl("build", "specs/resnet18.arch", "--set", "clases=10")
    assert r.returncode == 1 and "did you mean 'classes'?" in r.stderr


def test_summary_without_importing_torch():
    code = ("import sys, json; from archdsl.cli import main; rc = main(['summary', '--json', *sys.argv[1:]]); "
            "assert 'torch' not in sys.modules, 'summary imported torch'; sys.exit(rc)")
    r = archdsl("specs/levit_128s.arch", code=code)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    # LeViT-128S: 0.609 GFLOPs at 224 (shared/reference/models.md, FlopCounterMode, HF)
    assert round(summary["flops"] / 1e9, 3) == 0.609 and summary["receptive_field"]["whole"]
    assert {"layer", "output", "params", "flops", "rf_size", "rf_stride"} <= set(summary["layers"][0])


def test_a_missing_dependency_is_named_not_an_internal_error(tmp_path):
    """lark is imported on the first parse (parsed files are cached): an install without it
    says which package to install, with no traceback."""
    blocker = ("import sys, importlib.abc\n"
               "class Block(importlib.abc.MetaPathFinder):\n"
               "    def find_spec(self, name, path, target=None):\n"
               "        if name == 'lark' or name.startswith('lark.'): raise ModuleNotFoundError(\"No module named 'lark'\", name='lark')\n"
               "sys.meta_path.insert(0, Block())\n"
               "from archdsl.cli import main\n"
               "sys.exit(main(['check', 'specs/resnet18.arch']))\n")
    r = subprocess.run([sys.executable, "-c", blocker], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "ARCHDSL_CACHE_DIR": ""})  # no cache: a parse is needed
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("error: archdsl needs the Python package 'lark', which is not installed\nhint: ")
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
