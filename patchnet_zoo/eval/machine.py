"""Where a benchmark ran: recorded with every result, since timings mean little without it."""
from __future__ import annotations

import os
import platform

__all__ = ["machine_info"]


def machine_info() -> dict:
    """CPU count and model, Python, torch (and its thread count), OpenCV (and its thread count)."""
    import torch

    info = {"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
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
