"""Short-range matching benchmark (paper §5.3): carry a ground-truth box from frame t to t + gap.

Every method starts from the ground truth at frame t and is run once on frame t + gap; the carried
box misses when its IoU with the ground truth at t + gap is below 0.7 (IoU from
``geometry.box_iou``, no +1 on widths). Pairs are all t with the target present at t and t + gap,
pooled over the sequences of a split (every pair weighs the same).

Methods (keys of the result): the PatchNet variants ``patchnet``, ``patch-aggregation`` (no Fourier
reweighting, no box regression), ``no-fourier``, ``no-box-regression``, ``patchnet-k4`` (4x4-pixel
patches: its window is 59/32 = 1.84x the box at R = 7, against 119/64), ``patchnet-zero-mean`` and
``patchnet-k4-zero-mean`` (zero-mean patch correlations), and the baselines of
``patchnet_zoo.baselines``: ``ncc``, ``kcf`` (KCF with its failure gate off, primed), ``mosse``,
``hold``.

Search window (``response_size`` R, odd, default 7 = the paper's): every PatchNet variant runs as
``PatchMatcher(model, response_size=R)`` -- the weights do not depend on the search size, so R = 13
searches a window 167/64 = 2.61x the box (+-6 cells = +-75 % of the box) with the same weights -- and
``ncc`` searches exactly the same window (``search_scale = PatchNetGeometry(8, 8, R).search_scale``:
119/64 = 1.86x the box at R = 7). KCF*, MOSSE and hold keep their own search regions.

Reachability: ``reachable`` is the share of the evaluated pairs whose target centre at t + gap lies
within +-(R // 2) cells of the key box centre on both axes (a cell is 1/8 of the key box's side;
``round(|dc| / cell) <= R // 2``, rounded as in ``losses.search_targets``). A matcher that only looks
inside the window cannot find the other pairs' targets, so ``1 - reachable`` is (up to targets just
beyond the window's edge) a floor on the miss rate of PatchNet and NCC.

Timing (every figure is wall time on frames already decoded in memory):

* ``ms_per_match_b1``: per pair, one call of the method's own implementation. For PatchNet this is
  ``encode`` + ``match`` with one box: template and search crops, the forward pass and the decoding.
  For a baseline it is its ``match`` (for the OpenCV trackers: RGB->BGR conversion of the region they
  look at, ``init``, the priming ``update`` and the ``update`` on the current frame). The median over
  all pairs is reported (robust to other work on the machine); ``ms_per_match_b1_mean`` is the mean.
* ``ms_per_match_b16`` (PatchNet only): time per box when 16 boxes of one frame go through one
  ``encode`` + one ``match`` call. For one pair of each sequence (the middle one) the 16 boxes are
  the ground-truth box at t (box 0) and 15 copies of its size (each side jittered by up to +-20 %)
  with centres on a 4x4 grid spread over the frame, so the crops cover the whole frame as in a scene
  with many objects; the call is repeated 3 times; the median over all calls, divided by 16.
  Baselines do not batch: their cost per box is their ``ms_per_match_b1``.

Warm-up calls on the first pair are made before any timing. ``torch`` runs with 2 threads.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Sequence as TypingSequence

import numpy as np
import torch

from ..baselines import create_baseline
from ..data.readers import Sequence, default_data_root, read_sequences
from ..geometry import box_iou
from ..matching import PatchMatcher
from .machine import machine_info  # noqa: F401  (re-exported)
from ..models.patchnet import PatchNet, PatchNetGeometry
from ..registry import ARCHS

__all__ = [
    "MISS_IOU",
    "PAPER_RESPONSE_SIZE",
    "PATCHNET_VARIANTS",
    "BASELINE_METHODS",
    "EDGE_FOLLOW_METHODS",
    "DECODING_METHODS",
    "METHODS",
    "short_range_pairs",
    "search_window_scale",
    "reachable",
    "reachable_share",
    "load_models",
    "build_matchers",
    "untrained_models",
    "run_short_range",
    "machine_info",
]

MISS_IOU = 0.7
#: the paper's response size: +-3 cells = +-37.5 % of the box, a window 119/64 = 1.86x the box
PAPER_RESPONSE_SIZE = 7
#: response cells per box side (PatchNet's N = 8 patches per side)
CELLS_PER_BOX = 8

#: method key -> (registry name, PatchNet arguments): the paper's model, its three ablations (Table 5)
#: PatchNet with 4x4-pixel patches (the paper's patch-size axis, Figure 11) and PatchNet with zero-mean
#: patch correlations
PATCHNET_VARIANTS: "OrderedDict[str, tuple[str, dict]]" = OrderedDict(
    (key, (arch, dict(ARCHS[arch].defaults))) for key, arch in (
        ("patchnet", "patchnet"), ("patch-aggregation", "patchnet_patch_aggregation"),
        ("no-fourier", "patchnet_no_fourier"), ("no-box-regression", "patchnet_no_box_regression"),
        ("patchnet-k4", "patchnet_k4"), ("patchnet-zero-mean", "patchnet_zero_mean"),
        ("patchnet-k4-zero-mean", "patchnet_k4_zero_mean")))
BASELINE_METHODS = ("ncc", "kcf", "mosse", "hold")
#: PatchNet and NCC under one more rule: a peak on the window's edge gets one more search centred on
#: it (``PatchMatcher(edge_follow=1)``, ``NCCMatcher(edge_follow=1)``); every other windowed row
#: searches its window once.
EDGE_FOLLOW_METHODS = ("patchnet-edge-follow", "ncc-edge-follow")
#: PatchNet's weights and window with another decoding: the box centred on the best whole-template
#: placement in the peak cell (``PatchMatcher(rigid_centre=True)``)
DECODING_METHODS = ("patchnet-rigid-centre",)
METHODS = tuple(PATCHNET_VARIANTS) + BASELINE_METHODS + EDGE_FOLLOW_METHODS + DECODING_METHODS

B16_BOXES = 16
B16_REPEATS = 3
WARMUP_CALLS = 2


# ------------------------------------------------------------------------------------------- pairs
def short_range_pairs(sequences: TypingSequence[Sequence], gap: int = 10) -> list[tuple[Sequence, int]]:
    """Every ``(sequence, t)`` whose target is present (finite box) at both ``t`` and ``t + gap``."""
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    pairs = []
    for seq in sequences:
        n = min(seq.num_frames, len(seq.boxes))
        present = np.isfinite(seq.boxes[:n]).all(1) & (seq.boxes[:n, 2] > 0) & (seq.boxes[:n, 3] > 0)
        for t in range(max(0, n - gap)):
            if present[t] and present[t + gap]:
                pairs.append((seq, t))
    return pairs


def _subsample(pairs: list, max_pairs: int | None) -> list:
    """At most ``max_pairs`` pairs, evenly spread over the list (so every sequence is visited)."""
    if max_pairs is None or max_pairs >= len(pairs):
        return pairs
    if max_pairs <= 0:
        raise ValueError(f"max_pairs must be positive, got {max_pairs}")
    idx = np.unique(np.linspace(0, len(pairs) - 1, max_pairs).round().astype(int))
    return [pairs[i] for i in idx]


# ---------------------------------------------------------------------------------- search window
def _check_response_size(response_size) -> int:
    if isinstance(response_size, bool) or int(response_size) != response_size:
        raise ValueError(f"response_size must be an odd positive integer, got {response_size!r}")
    r = int(response_size)
    if r < 1 or r % 2 == 0:
        raise ValueError(f"response_size must be an odd positive integer, got {response_size!r}")
    return r


def search_window_scale(response_size: int = PAPER_RESPONSE_SIZE) -> float:
    """Search window side / box side of PatchNet (K = 8, N = 8) with an R x R response: 119/64 at 7,
    167/64 at 13. PatchNet and ``ncc`` both search this window in the benchmark."""
    return PatchNetGeometry(8, 8, _check_response_size(response_size)).search_scale


def reachable(key_boxes, target_boxes, response_size: int = PAPER_RESPONSE_SIZE) -> np.ndarray:
    """Per pair: does the target centre lie within +-(R // 2) response cells of the key box centre?

    ``key_boxes``, ``target_boxes``: (B, 4) x,y,w,h. A cell is 1/8 of the key box's side; the
    displacement is rounded to whole cells as in ``losses.search_targets`` (half to even), and both
    axes must satisfy ``round(|dc| / cell) <= R // 2``.
    """
    r = _check_response_size(response_size)
    key = np.asarray(key_boxes, dtype=np.float64).reshape(-1, 4)
    tgt = np.asarray(target_boxes, dtype=np.float64).reshape(-1, 4)
    if key.shape != tgt.shape:
        raise ValueError(f"{len(key)} key boxes but {len(tgt)} target boxes")
    cell = key[:, 2:] / CELLS_PER_BOX
    dc = (tgt[:, :2] + tgt[:, 2:] / 2) - (key[:, :2] + key[:, 2:] / 2)
    return (np.round(np.abs(dc) / cell) <= r // 2).all(1)


def reachable_share(pairs: TypingSequence[tuple[Sequence, int]], gap: int,
                    response_size: int = PAPER_RESPONSE_SIZE) -> float:
    """Share of the ``(sequence, t)`` pairs whose target at ``t + gap`` is ``reachable`` from ``t``."""
    if not pairs:
        raise ValueError("no pairs")
    key = np.stack([np.asarray(seq.boxes[t], dtype=np.float64) for seq, t in pairs])
    tgt = np.stack([np.asarray(seq.boxes[t + gap], dtype=np.float64) for seq, t in pairs])
    return float(np.mean(reachable(key, tgt, response_size)))


# ------------------------------------------------------------------------------------------ models
def untrained_models(methods: TypingSequence[str] | None = None, seed: int = 0) -> dict[str, PatchNet]:
    """Freshly initialised PatchNet variants: for checking that the pipeline runs, not for results."""
    torch.manual_seed(seed)
    keys = [m for m in (methods or PATCHNET_VARIANTS) if m in PATCHNET_VARIANTS]
    return {k: PatchNet(**PATCHNET_VARIANTS[k][1]) for k in keys}


def load_models(methods: TypingSequence[str], models: Mapping | None = None,
                weights_dir: str | Path | None = None, response_size: int | None = PAPER_RESPONSE_SIZE,
                ) -> tuple[dict[str, PatchMatcher], dict[str, str]]:
    """A ``PatchMatcher`` for every PatchNet variant in ``methods``, and a label of where it came from.

    ``models`` may map a method key (``"no-fourier"``) or its registry name
    (``"patchnet_no_fourier"``) to a ``PatchNet``, a ``PatchMatcher`` or the path of a safetensors
    file. Variants not given are loaded with ``registry.create_model(name, pretrained=True)``
    (records looked up in ``weights_dir`` when given).

    Every matcher searches a ``response_size`` x ``response_size`` response (same weights; a given
    ``PatchMatcher`` is rebuilt around its model). ``None`` keeps each model's own response size.
    """
    if response_size is not None:
        response_size = _check_response_size(response_size)
    models = dict(models or {})
    out, labels = {}, {}

    def wrap(model) -> PatchMatcher:
        return PatchMatcher(model, response_size=response_size, edge_follow=0)

    for key in methods:
        if key not in PATCHNET_VARIANTS:
            continue
        reg_name, _ = PATCHNET_VARIANTS[key]
        given = models.get(key, models.get(reg_name))
        if isinstance(given, PatchMatcher):
            out[key] = given.with_response_size(response_size)
            labels[key] = "given by the caller"
        elif isinstance(given, torch.nn.Module):
            out[key], labels[key] = wrap(given), "given by the caller"
        elif given is not None:  # a weights file
            from ..registry import create_model

            out[key] = wrap(create_model(reg_name, weights_path=given, weights_dir=weights_dir))
            labels[key] = f"{reg_name} from {Path(given).name}"
        else:
            try:
                from ..registry import create_model, get_weights

                model = create_model(reg_name, pretrained=True, weights_dir=weights_dir)
                try:
                    labels[key] = get_weights(reg_name, weights_dir).name
                except Exception:
                    labels[key] = reg_name
            except ImportError as e:
                raise RuntimeError(f"cannot load {key!r}: the model registry is unavailable ({e}); "
                                   "pass models={...}") from e
            except (FileNotFoundError, ValueError) as e:
                raise FileNotFoundError(
                    f"no trained weights for {key!r} ({reg_name}): {str(e).rstrip('.')}. Pass models={{...}} or a weights "
                    f"dir, or leave the method out.") from e
            out[key] = wrap(model)
    return out, labels


def build_matchers(methods: TypingSequence[str], models: Mapping | None = None,
                   weights_dir: str | Path | None = None, response_size: int = PAPER_RESPONSE_SIZE,
                   ) -> tuple[dict[str, PatchMatcher], dict[str, str], dict]:
    """Everything ``run_short_range`` runs: ``(patchnet_matchers, weight_labels, baselines)``.

    PatchNet variants come from ``load_models`` with a ``response_size`` x ``response_size``
    response; ``ncc`` searches the same window (``search_window_scale(response_size)``); ``kcf``,
    ``mosse`` and ``hold`` are built with their defaults (their own search regions).
    """
    response_size = _check_response_size(response_size)
    matchers, labels = load_models(methods, models, weights_dir, response_size=response_size)
    for key, option in (("patchnet-edge-follow", {"edge_follow": 1}), ("patchnet-rigid-centre", {"rigid_centre": True})):
        if key in methods:  # PatchNet's weights and window, one decoding option changed
            plain, plain_labels = ((matchers, labels) if "patchnet" in matchers
                                   else load_models(["patchnet"], models, weights_dir, response_size=response_size))
            matchers[key] = plain["patchnet"].replace(**option)
            labels[key] = plain_labels["patchnet"]
    baselines = {}
    for m in methods:
        if m in ("ncc", "ncc-edge-follow"):
            baselines[m] = create_baseline("ncc", search_scale=search_window_scale(response_size),
                                           edge_follow=int(m == "ncc-edge-follow"))
        elif m in BASELINE_METHODS:
            baselines[m] = create_baseline(m)
    return matchers, labels, baselines


# ------------------------------------------------------------------------------------------ timing
def _b16_boxes(gt_box: np.ndarray, frame_hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The ground-truth box plus 15 boxes of its size (+-20 % per side) spread on a 4x4 grid."""
    h, w = frame_hw
    g = (np.arange(4) + 0.5) / 4
    cx, cy = np.meshgrid(g * w, g * h)
    centres = np.stack([cx.ravel(), cy.ravel()], 1)[:B16_BOXES]
    sizes = gt_box[2:] * rng.uniform(0.8, 1.2, size=(B16_BOXES, 2))
    boxes = np.concatenate([centres - sizes / 2, sizes], 1)
    boxes[0] = gt_box
    return boxes


def _median_ms(seconds: list[float]) -> float | None:
    return float(np.median(seconds) * 1000.0) if seconds else None


def _mean_ms(seconds: list[float]) -> float | None:
    return float(np.mean(seconds) * 1000.0) if seconds else None


# ------------------------------------------------------------------------------------------- run
def _frames(seq: Sequence, cache: dict, i: int) -> np.ndarray:
    if i not in cache:
        cache[i] = seq.frame(i)
    return cache[i]


def run_short_range(
    data_root: str | Path | None = None,
    split: str | None = "val",
    gap: int = 10,
    methods: TypingSequence[str] | None = None,
    max_pairs: int | None = None,
    models: Mapping | None = None,
    progress: bool = True,
    weights_dir: str | Path | None = None,
    sequences: TypingSequence[Sequence] | None = None,
    seed: int = 0,
    response_size: int = PAPER_RESPONSE_SIZE,
) -> dict:
    """Run the short-range benchmark and return a JSON-ready dict::

        {"gap": 10, "pairs": N, "split": "val", "response_size": 7, "search_scale": 1.859,
         "reachable": 0.394,
         "methods": {"patchnet": {"miss_rate", "mean_iou", "ms_per_match_b1", "ms_per_match_b16",
                                  "ms_per_match_b1_mean", "matches", "weights"}, ...,
                     "kcf": {..., "ms_per_match_b16": None, "fallbacks": k}, ...},
         "timing": {...}, "machine": {...}}

    Args:
        data_root: data folder (default ``readers.default_data_root()``).
        split: split name or file (``None``: every sequence below the root).
        gap: frames between the key frame and the matched frame.
        methods: subset of ``METHODS`` (default all), in the order given.
        max_pairs: evaluate at most this many pairs, evenly spread over all pairs.
        models: PatchNet variants to use instead of the registry's trained weights (see
            ``load_models``); ``untrained_models()`` gives fresh ones for smoke tests.
        progress: show a tqdm progress bar.
        weights_dir: where the registry looks for weight records.
        sequences: evaluate these sequences instead of reading ``data_root``/``split``.
        seed: seed of the b16 box jitter.
        response_size: PatchNet's response size R (odd; 7 = the paper's window, 1.86x the box; 13 =
            2.61x the box, same weights). ``ncc`` searches the same window. ``search_scale`` in the
            result is that window's side / box side, ``reachable`` the share of pairs whose target
            centre at t + gap lies within it (see the module docstring).
    """
    response_size = _check_response_size(response_size)
    methods = list(METHODS if methods is None else methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
    if not methods:
        raise ValueError("no methods to run")
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        from .._runtime import tune_cpu_allocator
    except ImportError:
        tune_cpu_allocator = None
    if tune_cpu_allocator is not None:
        tune_cpu_allocator()
    try:
        return _run(data_root, split, gap, methods, max_pairs, models, progress, weights_dir, sequences, seed,
                    response_size)
    finally:
        torch.set_num_threads(prev_threads)


def _run(data_root, split, gap, methods, max_pairs, models, progress, weights_dir, sequences, seed,
         response_size) -> dict:
    from tqdm.auto import tqdm

    split_label = None if sequences is not None or split is None else Path(str(split)).name
    if sequences is None:
        sequences = read_sequences(data_root if data_root is not None else default_data_root(), split)
    pairs = _subsample(short_range_pairs(sequences, gap), max_pairs)
    if not pairs:
        raise ValueError(f"no pairs with the target present at t and t+{gap}")
    matchers, weight_labels, baselines = build_matchers(methods, models, weights_dir, response_size)

    def run_one(m: str, key_frame, key_box, frame) -> np.ndarray:
        if m in matchers:
            return matchers[m](key_frame, key_box[None], frame).boxes[0].numpy()
        return baselines[m].match(key_frame, key_box, frame)

    # group the pairs by sequence, keeping their order, so each sequence's frames are decoded once
    grouped: "OrderedDict[int, tuple[Sequence, list[int]]]" = OrderedDict()
    for seq, t in pairs:
        grouped.setdefault(id(seq), (seq, []))[1].append(t)

    preds = {m: [] for m in methods}
    gts = []
    times = {m: [] for m in methods}
    times_b16 = {m: [] for m in methods if m in matchers}
    rng = np.random.default_rng(seed)
    warmed = False
    bar = tqdm(total=len(pairs), desc=f"short-range gap {gap}, {response_size}x{response_size}",
               disable=not progress, unit="pair")
    try:
        for seq, ts in grouped.values():
            cache: dict[int, np.ndarray] = {}
            bar.set_postfix_str(seq.name)
            for t in ts:
                key_frame, frame = _frames(seq, cache, t), _frames(seq, cache, t + gap)
                key_box = np.asarray(seq.boxes[t], dtype=np.float64)
                if not warmed:
                    for m in methods:
                        for _ in range(WARMUP_CALLS):
                            run_one(m, key_frame, key_box, frame)
                    for b in baselines.values():
                        b.fallbacks = 0
                    warmed = True
                # interleaved, so background load hits every method alike, and the first place
                # (the one right after a frame was decoded, with cold caches) rotates among them
                shift = len(gts) % len(methods)
                for m in methods[shift:] + methods[:shift]:
                    t0 = time.perf_counter()
                    box = run_one(m, key_frame, key_box, frame)
                    times[m].append(time.perf_counter() - t0)
                    preds[m].append(np.asarray(box, dtype=np.float64))
                gts.append(seq.boxes[t + gap])
                bar.update(1)
            if times_b16:  # batched timing on this sequence's middle pair
                t = ts[len(ts) // 2]
                key_frame, frame = _frames(seq, cache, t), _frames(seq, cache, t + gap)
                boxes = _b16_boxes(np.asarray(seq.boxes[t], dtype=np.float64), key_frame.shape[:2], rng)
                for _ in range(B16_REPEATS):
                    for m in times_b16:
                        mt = matchers[m]
                        t0 = time.perf_counter()
                        mt.match(mt.encode(key_frame, boxes), frame)
                        times_b16[m].append((time.perf_counter() - t0) / len(boxes))
            cache.clear()
    finally:
        bar.close()

    gt = np.asarray(gts, dtype=np.float64)
    results = OrderedDict()
    for m in methods:
        ious = box_iou(np.stack(preds[m]), gt).numpy()
        r = {
            "miss_rate": float(np.mean(ious < MISS_IOU)),
            "mean_iou": float(np.mean(ious)),
            "ms_per_match_b1": _median_ms(times[m]),
            "ms_per_match_b16": _median_ms(times_b16[m]) if m in times_b16 else None,
            "ms_per_match_b1_mean": _mean_ms(times[m]),
            "matches": len(ious),
        }
        if m in matchers:
            r["weights"] = weight_labels[m]
        else:
            r["fallbacks"] = int(baselines[m].fallbacks)
        results[m] = r
    return {
        "gap": gap,
        "pairs": len(pairs),
        "split": split_label,  # None when the caller passed its own sequences
        "sequences": len(grouped),
        "miss_iou": MISS_IOU,
        "response_size": response_size,
        "search_scale": search_window_scale(response_size),  # PatchNet's and ncc's window / box
        "reachable": reachable_share(pairs, gap, response_size),
        "methods": dict(results),
        "timing": {
            "statistic": "median wall time per match; frames decoded in memory beforehand",
            "b1": "one box per call: encode + match for PatchNet (crops and decoding included), "
                  "the method's own match() for baselines",
            "b16": f"{B16_BOXES} boxes of one frame in one encode + one match call, per box: the gt box "
                   f"and {B16_BOXES - 1} boxes of its size (+-20 %) on a 4x4 grid over the frame, middle "
                   f"pair of each sequence, {B16_REPEATS} repeats",
            "warmup_calls": WARMUP_CALLS,
            "torch_threads": torch.get_num_threads(),
        },
        "machine": machine_info(),
    }
