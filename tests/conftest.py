import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.arch"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _torch_threads():
    # keep the suite predictable on the 2-core CI machine
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        pass
