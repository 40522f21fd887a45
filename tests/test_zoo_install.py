"""The zoo ships inside the package: a wheel installed outside the checkout builds models by
name and lists them (the README's promise after a plain, non-editable `pip install .`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import archdsl
from archdsl.errors import ArchDSLError
from archdsl.zoo import SPECS_DIR, zoo_names
from conftest import ROOT


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    """archdsl built as a wheel and installed (no deps) into a folder of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp / "dist"), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp / "dist").glob("archdsl-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return tmp


def _run(tmp, *args):
    # the wheel's copy first on the path, run from a folder with no specs/ in it
    env = {**os.environ, "PYTHONPATH": str(tmp / "site")}
    return subprocess.run([sys.executable, *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


def test_wheel_builds_and_lists_the_zoo_by_name(installed_wheel):
    r = _run(installed_wheel, "-c", "import archdsl, json; print(json.dumps([archdsl.__file__, "
             "sum(p.numel() for p in archdsl.build('resnet50', device='meta').parameters())]))")
    assert r.returncode == 0, r.stderr
    where, params = json.loads(r.stdout)
    assert where.startswith(str(installed_wheel / "site")), where  # not the checkout
    assert params == 25_557_032
    r = _run(installed_wheel, "-m", "archdsl", "build", "resnet50")
    assert r.returncode == 0 and "25,557,032" in r.stdout, r.stderr
    r = _run(installed_wheel, "-m", "archdsl", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(m["name"] for m in json.loads(r.stdout)) == zoo_names()


def test_specs_folder_of_the_checkout_is_the_packaged_zoo():
    assert (ROOT / "specs").resolve() == SPECS_DIR
    assert len(zoo_names()) >= 6


@pytest.mark.quick
def test_names_paths_and_text_are_told_apart(tmp_path):
    assert archdsl.compile_spec("resnet18").params == archdsl.compile_spec(ROOT / "specs" / "resnet18.arch").params
    with pytest.raises(ArchDSLError, match="no spec file or zoo model 'resnt18'") as e:
        archdsl.compile_spec("resnt18")
    assert "resnet18" in e.value.hint
    with pytest.raises(ArchDSLError, match="no spec file 'missing.arch'"):
        archdsl.compile_spec("missing.arch")
    with pytest.raises(ArchDSLError, match="folder"):
        archdsl.compile_spec(str(tmp_path))
    with pytest.raises(ArchDSLError, match="no spec file or zoo model named") as e:
        archdsl.compile_spec("model m { input [3, 8, 8] }")
    assert "text=" in e.value.hint
    with pytest.raises(TypeError):
        archdsl.compile_spec(None)
    assert archdsl.compile_spec(text="model m {\n input [3, 8, 8]\n relu\n}").output_shape == [3, 8, 8]


def test_list_models_filters_by_pattern():
    names = [m.name for m in archdsl.list_models("resnet*")]
    assert names and all(n.startswith("resnet") for n in names)
    info = {m.name: m for m in archdsl.list_models("resnet50")}["resnet50"]
    assert info.params == 25_557_032 and info.resolution == [3, 224, 224] and "ResNet-50" in info.reference
