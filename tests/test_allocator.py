"""archdsl.tune_allocator: large tensors stop costing page faults on every allocation."""
from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

# 64 MiB tensors made and freed in a loop; count the minor page faults of the loop
_PROBE = textwrap.dedent("""
    import resource, sys, torch, archdsl
    applied = archdsl.tune_allocator() if sys.argv[1] == "tuned" else None
    for _ in range(8):  # until the heap has grown to its steady size (how soon depends on what ran before)
        torch.ones(16 * 2 ** 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.ones(16 * 2 ** 20)
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True,
                         env={"PATH": "", "OMP_NUM_THREADS": "1"}).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_tuned_allocator_keeps_large_blocks():
    applied, tuned = _faults("tuned")
    _, default = _faults("default")
    assert applied == "True"
    # default: each of the 10 tensors is mapped fresh (16k pages of 4 KiB each); tuned: the
    # heap keeps the block, so at most two tensors' pages fault in (when the heap regrows;
    # how often it still does depends on what the process allocated before)
    assert default > 10 * 16384 * 0.9, default
    assert tuned <= 2.2 * 16384, (tuned, default)
