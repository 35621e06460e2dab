"""Process-wide runtime settings for CPU inference and training.

``tune_cpu_allocator()`` raises glibc's mmap and trim thresholds. By default glibc serves every
allocation above a (dynamic) threshold with a fresh ``mmap`` and returns it to the kernel on
``free``; PyTorch's CPU allocator frees and re-allocates the same large buffers on every call, so
each PatchNet match page-faults its correlation volumes in anew. With the thresholds raised those
buffers are reused from the heap (`benchmarks/match_speed.py --default-allocator` shows the difference).
The cost is that freed memory stays in the process instead of going back to the OS.

The ``patchnet-zoo`` command line calls it before it does any work. Library users may call it
once at start-up themselves::

    from patchnet_zoo._runtime import tune_cpu_allocator
    tune_cpu_allocator()

It is a safe no-op where the C library is not glibc (macOS, Windows, musl).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys

__all__ = ["tune_cpu_allocator", "set_threads"]

# glibc <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30
# older glibc refuses mmap thresholds above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit)
_FALLBACK_MMAP_THRESHOLD = 32 << 20

_applied: dict[str, int] | None = None


def _glibc():
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def tune_cpu_allocator(threshold: int = _THRESHOLD) -> dict[str, int]:
    """Keep large CPU buffers in the heap between calls (glibc only; idempotent).

    Returns the thresholds that were set, ``{}`` where nothing could be set (not glibc)."""
    global _applied
    if _applied is not None:
        return dict(_applied)
    mallopt = _glibc()
    applied: dict[str, int] = {}
    if mallopt is not None:
        for value in (threshold, min(threshold, _FALLBACK_MMAP_THRESHOLD)):
            if mallopt(M_MMAP_THRESHOLD, value) == 1:
                applied["mmap_threshold"] = value
                break
        if mallopt(M_TRIM_THRESHOLD, threshold) == 1:
            applied["trim_threshold"] = threshold
    _applied = applied
    return dict(applied)


def set_threads(n: int | None) -> int:
    """Set PyTorch's intra-op thread count (``None`` or ``<= 0`` leaves it); returns the previous one."""
    import torch

    previous = torch.get_num_threads()
    if n is not None and n > 0:
        torch.set_num_threads(int(n))
    return previous
