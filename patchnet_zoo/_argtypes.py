"""argparse value types shared by the command-line modules: one wording for every bad value."""
from __future__ import annotations

import argparse

__all__ = ["int_at_least", "positive_int", "non_negative_int", "unit_float", "float_in"]


def int_at_least(low: int):
    """An argparse type for a whole number >= ``low``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"expected a number >= {low}, got {v}")
        return v

    parse.__name__ = f"whole number >= {low}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


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
