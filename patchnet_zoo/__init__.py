"""patchnet_zoo: PatchNet (a tiny template matcher) that accelerates video detection and tracking.

Importing the package is cheap: models, Lightning and OpenCV load on first use.

    >>> from patchnet_zoo import create_model, list_models
    >>> list_models("patchnet*")
    ['patchnet', 'patchnet_no_box_regression', 'patchnet_no_fourier', 'patchnet_patch_aggregation']
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "list_models", "create_model", "PatchNet", "accelerate"]

_LAZY = {
    "list_models": ("patchnet_zoo.registry", "list_models"),
    "create_model": ("patchnet_zoo.registry", "create_model"),
    "PatchNet": ("patchnet_zoo.models.patchnet", "PatchNet"),
    "accelerate": ("patchnet_zoo.accel", "accelerate"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'patchnet_zoo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
