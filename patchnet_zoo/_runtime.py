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

``cap_openmp_spinning()`` sets ``GOMP_SPINCOUNT=10000`` for torch's OpenMP threads, unless the
environment already sets it. After each parallel region libgomp's idle threads spin for 300,000
rounds by default before they sleep; on a machine with few cores that spinning holds a core that
other libraries' threads (OpenCV, ONNX Runtime) want next, which made two-core skip-frame tracking
far slower than one torch thread (docs/design.md, "Two cores"). Capped, PatchNet's own two-thread
matches take as long as before. libgomp reads the setting when torch loads, so it must run before
``import torch``: the command line and the benchmarks call it first thing; in a script of your own,
call it before importing torch, or set the variable in the environment.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

__all__ = ["tune_cpu_allocator", "set_threads", "cap_openmp_spinning", "openmp_defaults"]

#: idle spins of torch's OpenMP threads after a parallel region, where the environment sets none
OPENMP_SPINS = 10000
_openmp_defaults: dict[str, str] = {}

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


def cap_openmp_spinning(spins: int = OPENMP_SPINS) -> bool:
    """Set ``GOMP_SPINCOUNT`` to ``spins`` where the environment sets none and torch is not loaded
    yet (libgomp reads it once, as torch loads). Returns whether it was set here."""
    if "GOMP_SPINCOUNT" in os.environ or "torch" in sys.modules:
        return False
    os.environ["GOMP_SPINCOUNT"] = _openmp_defaults["GOMP_SPINCOUNT"] = str(int(spins))
    return True


def openmp_defaults() -> dict[str, str]:
    """The OpenMP settings that ``cap_openmp_spinning`` put in this process's environment."""
    return dict(_openmp_defaults)
