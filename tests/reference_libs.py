"""torchvision and timm as test references, from `.refpkgs/` (never the venv).

They have no CPU build here, but their model code runs: the test command installs them with
`pip install --no-deps --target .refpkgs torchvision==0.28.0 timm==1.0.31`, and only the tests
put that folder on `sys.path`, after stubbing the compiled operators torchvision cannot load.
Installed into the venv, a torchvision whose ops fail to load would break `import
transformers` models in every process (the benchmarks and the README's commands included).
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

REFPKGS = Path(__file__).resolve().parent.parent / ".refpkgs"


def _on_path() -> None:
    if not REFPKGS.is_dir():
        pytest.skip(f"{REFPKGS} is missing: run the README's test command, which installs torchvision and timm there")
    if str(REFPKGS) not in sys.path:
        sys.path.append(str(REFPKGS))
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))


def torchvision_models():
    """`torchvision.models`, or skip the test."""
    _on_path()
    import torchvision.models

    return torchvision.models


def timm_module():
    """`timm`, or skip the test."""
    _on_path()
    import timm

    return timm
