"""OTB-style one-pass evaluation, with the definitions of the got10k toolkit's OTB experiment.

* Boxes are ``x, y, w, h`` (0-based pixels); the prediction for frame 0 is replaced by the ground
  truth (the tracker is initialised there), and frame 0 counts like every other frame.
* IoU without ``+1`` on widths; centre = ``x + (w - 1) / 2`` (the toolkit's convention, kept so the
  numbers are comparable with published ones).
* Success curve: share of frames with ``IoU > theta`` for ``theta = linspace(0, 1, 21)``; success
  score (AUC) = mean of the 21 values.
* Precision curve: share of frames with centre error ``<= tau`` pixels, ``tau = 0, 1, ..., 50``;
  precision score = the value at 20 px.
* Frames where the target is absent (NaN ground truth) are left out. A present frame without a
  prediction (NaN, non-finite or non-positive size) counts as IoU 0 and an infinite centre error.
* Sequences weigh equally: the curves are averaged over sequences, the scores are read from the
  averaged curves. A sequence without any present frame has no curves and is left out.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

__all__ = [
    "IOU_THRESHOLDS",
    "CENTER_THRESHOLDS",
    "PRECISION_AT",
    "iou",
    "center_error",
    "success_curve",
    "precision_curve",
    "evaluate_sequence",
    "aggregate",
    "plot_success_precision",
]

IOU_THRESHOLDS = np.linspace(0.0, 1.0, 21)
CENTER_THRESHOLDS = np.arange(0, 51, dtype=np.float64)
PRECISION_AT = 20  # pixels


def _boxes(b) -> np.ndarray:
    a = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"boxes must be (T, 4) x,y,w,h; got shape {np.shape(b)}")
    return a


def iou(pred, gt) -> np.ndarray:
    """Row-wise IoU of (T, 4) x,y,w,h boxes, no +1 on widths; invalid predictions give 0."""
    p, g = _boxes(pred), _boxes(gt)
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} differ in shape")
    with np.errstate(invalid="ignore"):
        iw = np.minimum(p[:, 0] + p[:, 2], g[:, 0] + g[:, 2]) - np.maximum(p[:, 0], g[:, 0])
        ih = np.minimum(p[:, 1] + p[:, 3], g[:, 1] + g[:, 3]) - np.maximum(p[:, 1], g[:, 1])
        inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
        union = p[:, 2] * p[:, 3] + g[:, 2] * g[:, 3] - inter
        out = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    bad = ~np.isfinite(p).all(1) | (p[:, 2] <= 0) | (p[:, 3] <= 0) | ~np.isfinite(out)
    out[bad] = 0.0
    return np.clip(out, 0.0, 1.0)


def center_error(pred, gt) -> np.ndarray:
    """Row-wise Euclidean distance of the centres ``x + (w - 1) / 2``; invalid predictions give inf."""
    p, g = _boxes(pred), _boxes(gt)
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} differ in shape")
    cp = p[:, :2] + (p[:, 2:] - 1) / 2
    cg = g[:, :2] + (g[:, 2:] - 1) / 2
    with np.errstate(invalid="ignore"):
        err = np.sqrt(((cp - cg) ** 2).sum(1))
    bad = ~np.isfinite(p).all(1) | (p[:, 2] <= 0) | (p[:, 3] <= 0) | ~np.isfinite(err)
    err[bad] = np.inf
    return err


def success_curve(ious, thresholds=IOU_THRESHOLDS) -> np.ndarray:
    """Share of frames with IoU strictly above each threshold (empty input -> NaN curve)."""
    v = np.asarray(ious, dtype=np.float64).reshape(-1)
    thr = np.asarray(thresholds, dtype=np.float64)
    if v.size == 0:
        return np.full(thr.shape, np.nan)
    return (v[:, None] > thr[None, :]).mean(0)


def precision_curve(center_errors, thresholds=CENTER_THRESHOLDS) -> np.ndarray:
    """Share of frames with centre error at most each threshold in pixels (empty input -> NaN curve)."""
    v = np.asarray(center_errors, dtype=np.float64).reshape(-1)
    thr = np.asarray(thresholds, dtype=np.float64)
    if v.size == 0:
        return np.full(thr.shape, np.nan)
    return (v[:, None] <= thr[None, :]).mean(0)


def _scores(succ: np.ndarray, prec: np.ndarray) -> tuple[float, float]:
    return float(np.mean(succ)), float(prec[PRECISION_AT])


def evaluate_sequence(pred, gt) -> dict:
    """One sequence: ``pred`` and ``gt`` are (T, 4) x,y,w,h, ``gt`` rows NaN where the target is absent.

    Returns ``success_curve`` (21,), ``precision_curve`` (51,), ``success_score``, ``precision_score``,
    ``frames`` (frames evaluated = present frames) and per-frame ``ious`` / ``center_errors`` of
    those frames. ``pred`` is not modified.
    """
    p, g = _boxes(pred).copy(), _boxes(gt)
    if p.shape[0] != g.shape[0]:
        raise ValueError(f"{p.shape[0]} predictions for {g.shape[0]} ground-truth frames")
    if len(p):
        p[0] = g[0]  # the tracker was initialised with the ground truth there
    present = np.isfinite(g).all(1)
    ious = iou(p[present], g[present]) if present.any() else np.zeros(0)
    errs = center_error(p[present], g[present]) if present.any() else np.zeros(0)
    succ, prec = success_curve(ious), precision_curve(errs)
    s, pr = _scores(succ, prec) if present.any() else (float("nan"), float("nan"))
    return {
        "success_curve": succ,
        "precision_curve": prec,
        "success_score": s,
        "precision_score": pr,
        "frames": int(present.sum()),
        "ious": ious,
        "center_errors": errs,
    }


def aggregate(per_sequence: Mapping[str, dict] | Iterable[dict]) -> dict:
    """Average ``evaluate_sequence`` results with every sequence weighing the same.

    Accepts a dict ``name -> result`` or a list of results. Sequences with no evaluated frame are
    left out. Returns ``success_curve``, ``precision_curve``, ``success_score``, ``precision_score``,
    ``sequences`` (how many were averaged) and ``frames`` (their total).
    """
    items = list(per_sequence.values()) if isinstance(per_sequence, Mapping) else list(per_sequence)
    used = [r for r in items if r.get("frames", 1) > 0 and np.isfinite(r["success_curve"]).all()]
    if not used:
        raise ValueError("no sequence with evaluated frames to aggregate")
    succ = np.mean([np.asarray(r["success_curve"], dtype=np.float64) for r in used], 0)
    prec = np.mean([np.asarray(r["precision_curve"], dtype=np.float64) for r in used], 0)
    s, p = _scores(succ, prec)
    return {
        "success_curve": succ,
        "precision_curve": prec,
        "success_score": s,
        "precision_score": p,
        "sequences": len(used),
        "frames": int(sum(int(r.get("frames", 0)) for r in used)),
    }


def plot_success_precision(results: Mapping[str, dict], path: str | Path, title: str | None = None) -> Path:
    """Success and precision plots side by side, one line per method, legend sorted by score.

    ``results`` maps a method name to a dict with ``success_curve`` and ``precision_curve`` (e.g. the
    output of ``aggregate``). Written with the Agg backend through ``matplotlib.figure.Figure``, so
    no global pyplot state is touched. Returns the path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # past a handful of lines the legends go below the axes, where they cover no curve
    below = len(results) > 6
    fig = Figure(figsize=(11, 4.5 + (0.17 * len(results) if below else 0.0)))
    FigureCanvasAgg(fig)
    ax_s, ax_p = fig.subplots(1, 2)
    by_success = sorted(results.items(), key=lambda kv: -np.mean(kv[1]["success_curve"]))
    # the colour cycle has ten colours: past them the line style tells the methods apart
    style = {name: ("-", "--", ":", "-.")[i // 10 % 4] for i, name in enumerate(results)}
    colour = {name: f"C{i % 10}" for i, name in enumerate(results)}
    for name, r in by_success:
        succ = np.asarray(r["success_curve"], dtype=np.float64)
        ax_s.plot(np.linspace(0, 1, len(succ)), succ, ls=style[name], color=colour[name],
                  label=f"{name} [{np.mean(succ):.3f}]")
    by_precision = sorted(results.items(), key=lambda kv: -np.asarray(kv[1]["precision_curve"])[PRECISION_AT])
    for name, r in by_precision:
        prec = np.asarray(r["precision_curve"], dtype=np.float64)
        ax_p.plot(np.arange(len(prec)), prec, ls=style[name], color=colour[name],
                  label=f"{name} [{prec[PRECISION_AT]:.3f}]")
    ax_s.set(xlabel="overlap threshold", ylabel="success rate", xlim=(0, 1), ylim=(0, 1.02),
             title="Success plot (AUC)")
    ax_p.set(xlabel="location error threshold (px)", ylabel="precision", xlim=(0, 50), ylim=(0, 1.02),
             title=f"Precision plot (at {PRECISION_AT} px)")
    for ax in (ax_s, ax_p):
        ax.grid(True, alpha=0.3)
        if below:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=7)
        else:
            ax.legend(loc="lower left" if ax is ax_s else "lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight" if below else None)
    return path
