"""Where a benchmark ran: recorded with every result, since timings mean little without it."""
from __future__ import annotations

import os
import platform

from .._runtime import openmp_defaults

__all__ = ["machine_info"]

#: environment settings of torch's OpenMP threads that change timings (recorded where set)
OPENMP_SETTINGS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def machine_info() -> dict:
    """CPU count and model, Python, torch (its thread count, and its OpenMP settings where the
    environment sets them, naming those the package set itself), OpenCV (and its thread count)."""
    import torch

    info = {"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    openmp = {k: os.environ[k] for k in OPENMP_SETTINGS if os.environ.get(k)}
    if openmp:
        info["openmp_env"] = openmp
        by_package = [k for k in openmp_defaults() if k in openmp]
        if by_package:  # set by the package, not by the user: a rerun sets them again
            info["openmp_defaults"] = by_package
    try:
        import cv2

        info["opencv"] = cv2.__version__
        info["opencv_threads"] = cv2.getNumThreads()
    except ImportError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info
