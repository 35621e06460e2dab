"""Evaluation: OTB-style metrics (``otb``) and the short-range matching benchmark (``short_range``)."""
from .otb import aggregate, evaluate_sequence, plot_success_precision, precision_curve, success_curve
from .short_range import METHODS, run_short_range, short_range_pairs

__all__ = [
    "success_curve",
    "precision_curve",
    "evaluate_sequence",
    "aggregate",
    "plot_success_precision",
    "short_range_pairs",
    "run_short_range",
    "METHODS",
]
