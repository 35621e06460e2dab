"""argparse value types shared by the command-line modules: one wording for every bad value."""
from __future__ import annotations

import argparse

__all__ = ["positive_int", "unit_float", "float_in"]


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {v}")
    return v


def float_in(low: float, high: float):
    """An argparse type for a finite number in ``[low, high]``."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in [{low:g}, {high:g}], got {text!r}") from None
        if not low <= v <= high:  # also rejects NaN
            raise argparse.ArgumentTypeError(f"expected a number in [{low:g}, {high:g}], got {v}")
        return v

    parse.__name__ = f"number in [{low:g}, {high:g}]"
    return parse


unit_float = float_in(0.0, 1.0)
