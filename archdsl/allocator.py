"""Keep freed activation memory in the process instead of handing it back to the OS.

With glibc's malloc as configured by default, tensors above its mmap threshold (at most 32
MiB) are mapped fresh on every allocation and unmapped on free, and the heap is trimmed
when its free top grows; a forward pass then pays a page fault for every 4 KiB page of its
large activations on every call (measured here: MobileNetV2 at batch 8 spends 140k minor
faults per forward under HF, 1.3x-2x of the time). `tune_allocator()` sets what the
environment variables `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>` set, from inside
the process: large blocks come from the heap and freed memory stays there for the next
forward. The cost: the process keeps its peak memory (its RSS does not shrink after a
large forward). It changes the whole process, so archdsl never calls it on its own.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2 ** 31 - 1


def tune_allocator() -> bool:
    """Make glibc malloc keep large freed blocks (no mmap per tensor, no heap trimming).
    Returns whether it applied: False where the C library is not glibc (macOS, musl, Windows),
    which have their own behaviour and are left alone."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
