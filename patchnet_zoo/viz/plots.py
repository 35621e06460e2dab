"""Small matplotlib plots, written straight to image files.

Figures are built with ``matplotlib.figure.Figure`` on the Agg canvas: no pyplot, no global backend
change, no display needed. Every function returns the path it wrote. NaN values (frames where the
target is absent) are left as gaps.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["plot_iou_over_time", "plot_speed_accuracy", "plot_curves"]  # OTB success/precision plots: eval.otb


def _figure(width: float = 7.0, height: float = 3.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _series(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError(f"{name} is empty")
    return v


def plot_iou_over_time(
    ious,
    confidences=None,
    path="iou_over_time.png",
    key_frames: Sequence[int] | None = None,
    confidence_threshold: float | None = None,
    title: str | None = None,
) -> Path:
    """IoU with the ground truth (and the tracker's confidence) against the frame index.

    Args:
        ious: one IoU per frame (NaN where the target is absent: a gap).
        confidences: one confidence per frame, same length, or ``None``.
        key_frames: frame indices to mark (e.g. where a base model ran).
        confidence_threshold: draw this level (e.g. the 0.8 key-frame threshold).
    """
    iou = _series(ious, "ious")
    x = np.arange(len(iou))
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    mean = float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
    ax.plot(x, iou, color="tab:blue", lw=1.5, label=f"IoU (mean {mean:.3f})")
    if confidences is not None:
        conf = _series(confidences, "confidences")
        if len(conf) != len(iou):
            raise ValueError(f"{len(iou)} IoU values but {len(conf)} confidences")
        ax.plot(x, conf, color="tab:orange", lw=1.0, alpha=0.85, label="confidence")
    if confidence_threshold is not None:
        ax.axhline(confidence_threshold, color="tab:orange", ls=":", lw=1, label=f"threshold {confidence_threshold:g}")
    if key_frames is not None and len(key_frames):
        ax.vlines(np.asarray(key_frames), 0, 1.05, color="tab:green", lw=0.6, alpha=0.5, label="key frames")
    ax.set_xlim(0, max(len(iou) - 1, 1))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("frame")
    ax.set_ylabel("IoU / confidence" if confidences is not None else "IoU")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_speed_accuracy(points: Mapping[str, tuple[float, float]], path="speed_accuracy.png",
                        xlabel: str = "frames per second", ylabel: str = "success AUC",
                        title: str | None = None) -> Path:
    """Scatter of ``{name: (speed, accuracy)}``, each point labelled; speed on a log axis."""
    if not points:
        raise ValueError("no points to plot")
    fig = _figure(5, 4)
    ax = fig.add_subplot(1, 1, 1)
    for name, (speed, acc) in points.items():
        ax.scatter([speed], [acc], s=30)
        ax.annotate(str(name), (speed, acc), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if all(float(s) > 0 for s, _ in points.values()):
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], path="curves.png",
                xlabel: str = "", ylabel: str = "", title: str | None = None,
                dashed: Sequence[str] = (), levels: Mapping[str, float] | None = None) -> Path:
    """Lines of ``{name: (xs, ys)}`` with markers; names in ``dashed`` drawn dashed (bounds, not
    methods); ``levels`` ``{name: y}`` drawn as labelled horizontal lines (methods with one value)."""
    if not curves:
        raise ValueError("no curves to plot")
    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    for name, (xs, ys) in curves.items():
        xs, ys = _series(xs, f"{name} x"), _series(ys, f"{name} y")
        if xs.shape != ys.shape:
            raise ValueError(f"{name}: {xs.size} x values but {ys.size} y values")
        style = dict(ls="--", color="0.5") if name in dashed else dict(marker="o", ms=3)
        ax.plot(xs, ys, label=str(name), **style)
    for name, y in (levels or {}).items():
        ax.axhline(float(y), ls=":", lw=1, color="0.3")
        ax.annotate(str(name), (1.0, float(y)), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                    textcoords="offset points", ha="right", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)
