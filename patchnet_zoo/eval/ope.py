"""One-pass evaluation (OPE) of single-object trackers, OTB style, with speed and cost.

```python
from patchnet_zoo.data.readers import read_sequences
from patchnet_zoo.eval.ope import build_tracker_factory, run_ope

factory = build_tracker_factory("nanotrack", key_frame_interval=4, inter="patchnet", conf_threshold=0.8)
result = run_ope(factory, read_sequences(split="val"))
print(result["success"], result["precision"], result["fps"], result["effective_interval"])
```

Protocol (the metrics are those of ``eval.otb``, i.e. the got10k toolkit's OTB experiment):

* one fresh tracker per sequence (``tracker_factory()``), initialised on frame 0 with the ground
  truth; one prediction for every later frame; the prediction for frame 0 is the ground truth;
* success score = mean of the success curve over 21 IoU thresholds ``linspace(0, 1, 21)`` (IoU
  strictly above the threshold, so a perfect tracker scores 20/21, not 1); precision = share of
  frames with a centre error of at most 20 px; frames where the target is absent are left out;
  every sequence weighs the same (curves averaged over sequences, scores read from the averages);
* a sequence whose target is absent in frame 0 starts at its first frame with the target present
  (the earlier frames are absent, so they are left out anyway).

Timing: every frame of a sequence is decoded into memory *before* the clock starts, so the
figures are the tracker's own work: ``init`` plus every ``update`` (for a skip-frame tracker that
includes the base tracker on key frames, the inter-frame method on the others, and everything the
tracker does in between). ``fps`` = all tracked frames / all tracking seconds (sequences pooled),
``per_sequence[name]["fps"]`` the same per sequence. ``run_ope_many`` runs several configurations
interleaved (every configuration on one decoded sequence before the next), so that changes in the
machine's load hit them alike and their speed ratios stay meaningful. One short untimed warm-up
run on the first frames of the first sequence precedes the timing, so one-off costs (loading an
ONNX net, the first allocation of buffers) are not charged to the first sequence.

A tracker whose ``update`` raises has no answer for that frame: the frame counts as a miss (as
a NaN box does), the run goes on, and ``per_sequence[name]`` notes ``update_errors`` with the first
message (``init`` errors are raised).

Key frames: a tracker with ``last_was_key`` (``accel.SkipFrameTracker``) reports after every update
whether its base tracker ran on that frame; the ``init`` frame is a key frame. A plain tracker runs
on every frame, so all its frames are key frames (effective interval 1). ``effective_interval`` =
tracked frames / key frames (pooled over the sequences). When the tracker has a ``stats`` dict
(``SkipFrameTracker.stats``), its base and inter-frame seconds, forced key frames and base failures
are summed into ``result["skip_frame"]``.

Cost (``gflops_per_frame``), in the papers' "FLOPs" convention: **G multiply-accumulates (GMACs)
per frame, 1 MAC = 2 FLOPs** -- the unit of the base trackers' ``gflops_per_frame`` (NanoTrack v2:
0.0783 GMACs per update, counted from its ONNX graphs) and of PatchNet's 57.7 M MACs per match. Only
where the cost is known: the base tracker's cost per call times the share of frames on which it ran,
plus the inter-frame method's cost per call times the share of frames on which *it* ran (propagated
frames plus the frames where a low confidence forced a key frame after the match). PatchNet's cost
per match is ``eval.flops.count_patchnet_flops(model)["macs"]`` (dense-counted, as in the paper);
``hold`` costs 0. KCF, CSRT and MOSSE have no count, so a run that uses them reports
``gflops_per_frame = None``. The parts of the sum are in ``result["gflops"]``.
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..accel.skip_frame_tracker import (
    DEFAULT_MOTION_PRIOR, DEFAULT_RESPONSE_SIZE, INTER_METHODS, PATCHNET_INTER_ARCH, check_relocate_base,
)
from ..registry import ARCHS
from .otb import CENTER_THRESHOLDS, IOU_THRESHOLDS, PRECISION_AT, aggregate, evaluate_sequence

__all__ = [
    "INTER_METHODS",
    "PATCHNET_INTER",
    "TrackerFactory",
    "build_tracker_factory",
    "run_ope",
    "run_ope_many",
    "decode_frames",
    "patchnet_macs",
    "curves_for_plot",
    "summary_line",
]

#: the inter-frame methods that are PatchNet models: registry architecture and its ``PatchNet`` arguments
PATCHNET_INTER = {inter: (arch, dict(ARCHS[arch].defaults)) for inter, arch in PATCHNET_INTER_ARCH.items()}
#: inter-frame methods whose cost per call is known (GMACs): hold costs nothing
_FREE_INTER = {"hold": 0.0}
WARMUP_FRAMES = 3
UNIT = "G multiply-accumulates per frame (the papers' 'FLOPs'; 1 MAC = 2 FLOPs)"


# ------------------------------------------------------------------------------------- factories
class TrackerFactory:
    """A callable that makes one fresh tracker per sequence, and says what it makes (``config``)."""

    def __init__(self, make: Callable[[], Any], config: dict):
        self._make = make
        self.config = dict(config)

    def __call__(self):
        return self._make()

    @property
    def name(self) -> str:
        c = self.config
        if not c.get("key_frame_interval"):
            return str(c["tracker"])
        conf = c.get("conf_threshold")
        conf_txt = f", conf {conf:g}" if conf and c.get("inter") != "hold" else ""
        return f"{c['tracker']} / {c['inter']} (N={c['key_frame_interval']}{conf_txt})"

    def __repr__(self) -> str:
        return f"TrackerFactory({self.config})"


def _patchnet_matcher(inter: str, matcher=None, weights=None, untrained: bool = False,
                      response_size: int | None = None, seed: int = 0):
    """A ``PatchMatcher`` for ``inter`` (shared by every tracker of a run: it holds no state), and a
    label of where its weights come from."""
    import torch

    from ..matching import PatchMatcher
    from ..models.patchnet import PatchNet

    reg_name, kwargs = PATCHNET_INTER[inter]
    if matcher is not None:
        if isinstance(matcher, PatchMatcher):
            return matcher.with_response_size(response_size), "given by the caller"
        if isinstance(matcher, torch.nn.Module):
            return PatchMatcher(matcher, response_size=response_size), "given by the caller"
        raise TypeError(f"matcher must be a PatchMatcher or a PatchNet, got {type(matcher).__name__}")
    if untrained:
        torch.manual_seed(seed)
        return PatchMatcher(PatchNet(**kwargs), response_size=response_size), "untrained (fresh initialisation)"
    from .short_range import load_models

    models = {inter: str(weights)} if weights is not None else None
    matchers, labels = load_models([inter], models, response_size=response_size)
    return matchers[inter], labels[inter]


def build_tracker_factory(
    spec: str,
    key_frame_interval: int | None = None,
    inter: str = "patchnet",
    conf_threshold: float | None = 0.8,
    matcher=None,
    weights=None,
    untrained: bool = False,
    size_damping: float = 0.25,
    response_size: int | None = DEFAULT_RESPONSE_SIZE,
    motion_prior: float = DEFAULT_MOTION_PRIOR,
    decoding: Mapping[str, Any] | None = None,
    relocate_base: bool | str = True,
) -> TrackerFactory:
    """A factory of fresh trackers for ``run_ope``.

    Args:
        spec: the base tracker, anything ``trackers.opencv_trackers.make_base_tracker`` accepts
            (``nanotrack``, ``csrt``, ``kcf``, ``mosse``, ``patchnet``, ...).
        key_frame_interval: ``None`` runs the base tracker on every frame; ``N`` wraps it in an
            ``accel.SkipFrameTracker`` that runs it at least every N frames and ``inter`` between.
        inter: the inter-frame method (``INTER_METHODS``).
        conf_threshold: inter-frame confidence below which the current frame becomes a key frame
            at once (the paper's fallback, 0.8); ``None`` or 0 switches the fallback off (key frames
            exactly every N frames). PatchNet reports its peak ratio, KCF and MOSSE their success
            flag (1 or 0: a reported loss forces a key frame), hold nothing (never falls back).
        matcher / weights / untrained: the PatchNet for ``inter`` -- a ``PatchMatcher`` or
            ``PatchNet``, a local safetensors file, or a freshly initialised model (for checking
            the pipeline only); by default the packaged pretrained weights. Loaded once here and
            shared by every tracker of the run.
        size_damping, response_size, motion_prior: passed to ``SkipFrameTracker``
            (``response_size=None``: the model's own 7x7 response; default
            ``accel.skip_frame_tracker.DEFAULT_RESPONSE_SIZE``).
        decoding: ``PatchMatcher`` options for the inter-frame PatchNet (``select_alpha``,
            ``centre_gain``, ``edge_follow``); default: the matcher's own (the paper's decoding).
        relocate_base: passed to ``SkipFrameTracker`` (``True``: the base tracker's own
            ``relocate``, else a shifted frame; ``"shift"``; ``False``: none).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"tracker spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if key_frame_interval is not None:
        if isinstance(key_frame_interval, bool) or int(key_frame_interval) != key_frame_interval \
                or key_frame_interval < 1:
            raise ValueError(f"key frame interval must be an integer >= 1, got {key_frame_interval!r}")
        key_frame_interval = int(key_frame_interval)
    if inter not in INTER_METHODS:
        raise ValueError(f"unknown inter-frame method {inter!r}; choose from {', '.join(INTER_METHODS)}")
    if conf_threshold is not None and not (0.0 <= float(conf_threshold) <= 1.0):
        raise ValueError(f"confidence threshold must be in [0, 1], got {conf_threshold}")
    from ..trackers.opencv_trackers import make_base_tracker

    make_base_tracker(spec)  # an unknown spec or missing weights fail here, before any work
    config: dict[str, Any] = {"tracker": spec, "key_frame_interval": key_frame_interval}
    if key_frame_interval is None:
        return TrackerFactory(lambda: make_base_tracker(spec), config)

    from ..accel.skip_frame_tracker import SkipFrameTracker

    conf = float(conf_threshold) if conf_threshold else None  # None: key frames exactly every N
    shared = None
    if inter in PATCHNET_INTER:
        shared, label = _patchnet_matcher(inter, matcher, weights, untrained, response_size)
        config["weights"] = label
        if decoding:
            shared = shared.replace(**decoding)
            config["decoding"] = dict(decoding)
    check_relocate_base(relocate_base)  # fail before any tracker is made
    config.update(inter=inter, conf_threshold=conf, size_damping=float(size_damping),
                  response_size=response_size, motion_prior=float(motion_prior))
    if relocate_base is not True:
        config["relocate_base"] = relocate_base

    def make():
        kwargs = dict(key_frame_interval=key_frame_interval, conf_threshold=conf, inter=inter,
                      size_damping=size_damping, motion_prior=motion_prior, relocate_base=relocate_base)
        if shared is not None:
            kwargs["matcher"] = shared  # built with response_size (None: the model's own) and used as is
        else:
            kwargs["response_size"] = response_size
        return SkipFrameTracker(make_base_tracker(spec), **kwargs)

    return TrackerFactory(make, config)


# ------------------------------------------------------------------------------------------- cost
_MACS_CACHE: dict[tuple, int] = {}


def patchnet_macs(model) -> int:
    """Dense-counted multiply-accumulates of one match of ``model`` (a ``PatchNet``), cached."""
    from .flops import count_patchnet_flops

    g = model.geometry
    key = (g.patch_size, g.patches_per_side, g.response_size, bool(model.fourier), bool(model.box_regression))
    if key not in _MACS_CACHE:
        _MACS_CACHE[key] = int(count_patchnet_flops(model)["macs"])
    return _MACS_CACHE[key]


def _find_patchnet(tracker):
    """The PatchNet a skip-frame tracker matches with, if it exposes one."""
    from ..models.patchnet import PatchNet

    for attr in ("matcher", "_matcher", "inter_matcher", "_inter_matcher", "model", "_model"):
        obj = getattr(tracker, attr, None)
        if isinstance(obj, PatchNet):
            return obj
        inner = getattr(obj, "model", None)
        if isinstance(inner, PatchNet):
            return inner
    return None


def _base_of(tracker):
    for attr in ("base", "_base", "base_tracker"):
        obj = getattr(tracker, attr, None)
        if obj is not None:
            return obj
    return None


def _inter_gmacs(tracker, inter: str | None) -> float | None:
    """Cost of one inter-frame step in GMACs, ``None`` where unknown."""
    if inter in _FREE_INTER:
        return _FREE_INTER[inter]
    if inter in PATCHNET_INTER:
        model = _find_patchnet(tracker)
        if model is None:  # count a fresh model of the same kind (the count does not depend on weights)
            from ..models.patchnet import PatchNet

            model = PatchNet(**PATCHNET_INTER[inter][1])
            rs = getattr(tracker, "response_size", None)
            if rs:
                model = model.with_response_size(int(rs))
        return patchnet_macs(model) / 1e9
    return None


# ------------------------------------------------------------------------------------------- run
def decode_frames(seq, max_frames: int | None = None) -> list[np.ndarray]:
    """Every frame of ``seq`` (a ``data.readers.Sequence``) in memory, at most ``max_frames``."""
    n = len(seq) if max_frames is None else min(len(seq), int(max_frames))
    return [seq.frame(i) for i in range(n)]


def _is_skip_frame(tracker) -> bool:
    return hasattr(tracker, "last_was_key")


def _confidence(tracker) -> float:
    for attr in ("last_confidence", "confidence"):
        v = getattr(tracker, attr, None)
        if v is not None:
            try:
                return float(v)
            except (TypeError, ValueError):
                return float("nan")
    return float("nan")


def _track_sequence(tracker, frames: list, gt: np.ndarray) -> dict:
    """init + updates on decoded ``frames``; predictions, key flags, confidences and seconds."""
    n = len(frames)
    present = np.isfinite(gt).all(1)
    if not present.any():
        raise ValueError("the target is absent in every frame")
    start = int(np.argmax(present))
    pred = np.full((n, 4), np.nan)
    keys = np.zeros(n, dtype=bool)
    confs = np.full(n, np.nan)
    perf = time.perf_counter
    t0 = perf()
    tracker.init(frames[start], gt[start].copy())
    skip = _is_skip_frame(tracker)
    errors: list[str] = []
    for i in range(start + 1, n):
        try:
            box = tracker.update(frames[i])
        except Exception as e:  # noqa: BLE001 - a tracker that raises has no answer for this frame
            errors.append(f"frame {i}: {type(e).__name__}: {e}")
            box = None
        pred[i] = np.asarray(box, dtype=np.float64).reshape(4) if box is not None else np.nan
        keys[i] = bool(tracker.last_was_key) if skip else True
        confs[i] = _confidence(tracker)
    seconds = perf() - t0
    keys[start] = True
    confs[start] = 1.0
    pred[start] = gt[start]
    return {"pred": pred, "keys": keys, "confidences": confs, "seconds": seconds, "start": start,
            "errors": errors}


def warm_up_tracker(tracker_factory, frame, box, later_frames) -> float:
    """Seconds of one untimed run of a fresh tracker: ``init(frame, box)``, then an update on each
    of ``later_frames`` (stopping at the first that raises: the timed run reports it), so that
    one-time costs (loading models, compiling a compiled match, first-call allocations) stay out of
    the timing that follows."""
    t0 = time.perf_counter()
    tracker = tracker_factory()
    tracker.init(frame, np.array(box, dtype=np.float64))
    for later in later_frames:
        try:
            tracker.update(later)
        except Exception:  # noqa: BLE001 - the timed run reports it
            break
    return time.perf_counter() - t0


def _warmup(tracker_factory, frames: list, gt: np.ndarray) -> None:
    present = np.isfinite(gt).all(1)
    if not present.any():
        return
    start = int(np.argmax(present))
    warm_up_tracker(tracker_factory, frames[start], gt[start], frames[start + 1: start + 1 + WARMUP_FRAMES])


_STAT_KEYS = ("base_seconds", "inter_seconds", "forced_by_confidence", "base_failures", "extra_searches")


class _Accumulator:
    """Per-sequence results of one tracker configuration, and their aggregate (``result``)."""

    def __init__(self, tracker_factory, max_frames: int | None, keep_predictions: bool):
        self.factory = tracker_factory
        self.max_frames = max_frames
        self.keep_predictions = keep_predictions
        self.per_sequence: dict[str, dict] = {}
        self.evals: dict[str, dict] = {}
        self.predictions: dict[str, dict] = {}
        self.stats_sum: dict[str, float] = {k: 0 for k in _STAT_KEYS}
        self.reported = {"frames": 0, "key_frames": 0}
        self.saw_stats = self.skip = False
        config = getattr(tracker_factory, "config", None)
        self.inter = config.get("inter") if isinstance(config, dict) else None
        self.base_gflops: float | None = None  # mean GMACs per base call, weighted by key frames
        self._base_gmacs_sum = 0.0  # per-sequence cost x key frames: trackers whose cost varies
        self._base_gmacs_calls = 0  # (the gated tracker) weigh every sequence, not the last one
        self.inter_gmacs: float | None = None
        self.cost_known = True
        self.frames = self.keys = self.inter_calls = 0
        self.seconds = 0.0

    def add(self, name: str, tracker, run: dict, gt: np.ndarray, n: int) -> None:
        tracked = n - run["start"]
        keys = int(run["keys"].sum())
        ev = evaluate_sequence(run["pred"], gt)
        self.evals[name] = ev
        seq_skip = _is_skip_frame(tracker)
        self.skip = self.skip or seq_skip
        stats = getattr(tracker, "stats", None) if seq_skip else None
        forced = extra = 0
        if isinstance(stats, dict):
            self.saw_stats = True
            for key in _STAT_KEYS:
                v = stats.get(key)
                if v is not None:
                    self.stats_sum[key] += v
            forced = int(stats.get("forced_by_confidence") or 0)
            extra = int(stats.get("extra_searches") or 0)
            for key in self.reported:
                self.reported[key] += int(stats.get(key) or 0)
        # cost: the base tracker ran on the key frames, the inter method on the propagated frames
        # and on the key frames a low confidence forced after the match
        base = _base_of(tracker) if seq_skip else tracker
        bg = getattr(base, "gflops_per_frame", None) if base is not None else None
        if bg is None:
            self.cost_known = False
        else:
            self._base_gmacs_sum += float(bg) * keys
            self._base_gmacs_calls += keys
            self.base_gflops = self._base_gmacs_sum / self._base_gmacs_calls
        if seq_skip:
            seq_inter = getattr(tracker, "inter", self.inter)
            self.inter = seq_inter if isinstance(seq_inter, str) else self.inter
            ig = _inter_gmacs(tracker, self.inter)
            if ig is None:
                self.cost_known = False
            else:
                self.inter_gmacs = ig
            # a search past the window's edge (PatchMatcher(edge_follow=...)) is counted as one more
            # call: an upper bound, since it reuses the encoded template
            self.inter_calls += (tracked - keys) + forced + extra
        entry = {
            "success": ev["success_score"],
            "precision": ev["precision_score"],
            "fps": tracked / run["seconds"] if run["seconds"] > 0 else float("inf"),
            "frames": tracked,
            "evaluated_frames": ev["frames"],
            "key_frames": keys,
            "effective_interval": tracked / keys,
            "seconds": run["seconds"],
        }
        if seq_skip and forced:
            entry["forced_by_confidence"] = forced
        if run["errors"]:
            entry["update_errors"] = len(run["errors"])
            entry["first_error"] = run["errors"][0][:300]
            warnings.warn(f"{name}: update raised on {len(run['errors'])} frame(s), scored as misses; first: "
                          f"{run['errors'][0][:300]}", stacklevel=3)
        self.per_sequence[name] = entry
        if self.keep_predictions:
            self.predictions[name] = {"boxes": run["pred"], "key_frames": run["keys"],
                                      "confidences": run["confidences"]}
        self.frames += tracked
        self.keys += keys
        self.seconds += run["seconds"]

    def result(self) -> dict:
        agg = aggregate(self.evals)
        result: dict[str, Any] = {
            "success": agg["success_score"],
            "precision": agg["precision_score"],
            "fps": self.frames / self.seconds if self.seconds > 0 else float("inf"),
            "effective_interval": self.frames / self.keys,
            "gflops_per_frame": None,
            "frames": self.frames,
            "evaluated_frames": agg["frames"],
            "key_frames": self.keys,
            "sequences": len(self.per_sequence),
            "seconds": self.seconds,
            "max_frames": self.max_frames,
        }
        if hasattr(self.factory, "config"):
            result["tracker"] = getattr(self.factory, "name", None)
            result["config"] = dict(self.factory.config)

        gflops: dict[str, Any] = {"unit": UNIT}
        if self.base_gflops is not None:
            gflops["base_per_call"] = self.base_gflops
            gflops["base_calls"] = self.keys
        if self.skip:
            gflops["inter"] = self.inter
            gflops["inter_calls"] = self.inter_calls
            if self.inter_gmacs is not None:
                gflops["inter_per_call"] = self.inter_gmacs
        if self.cost_known and self.base_gflops is not None:
            total = self.base_gflops * self.keys
            if self.skip and self.inter_gmacs is not None:
                total += self.inter_gmacs * self.inter_calls
            result["gflops_per_frame"] = total / self.frames
            gflops["per_frame_base_only"] = self.base_gflops
            gflops["reduction"] = self.base_gflops / result["gflops_per_frame"] if result["gflops_per_frame"] else None
        elif self.base_gflops is None:
            gflops["note"] = "the base tracker does not report its cost"
        else:
            gflops["note"] = f"the cost of the inter-frame method {self.inter!r} is not known"
        result["gflops"] = gflops

        if self.skip:
            sf: dict[str, Any] = {}
            if self.saw_stats:
                sf = {k: (float(v) if k.endswith("seconds") else int(v)) for k, v in self.stats_sum.items()}
                sf["tracker_reported_frames"] = self.reported["frames"]
                sf["tracker_reported_key_frames"] = self.reported["key_frames"]
                sf["other_seconds"] = self.seconds - sf["base_seconds"] - sf["inter_seconds"]
            sf["inter_calls"] = self.inter_calls
            result["skip_frame"] = sf
        else:
            result["skip_frame"] = None
        result["per_sequence"] = self.per_sequence
        result["curves"] = {
            "success": agg["success_curve"].tolist(),
            "precision": agg["precision_curve"].tolist(),
            "iou_thresholds": IOU_THRESHOLDS.tolist(),
            "center_thresholds": CENTER_THRESHOLDS.tolist(),
            "precision_at": PRECISION_AT,
        }
        if self.keep_predictions:
            result["predictions"] = self.predictions
        return result


def run_ope_many(
    tracker_factories: Mapping[str, Callable[[], Any]],
    sequences: Iterable,
    progress: bool = True,
    max_frames: int | None = None,
    warmup: bool = True,
    keep_predictions: bool = False,
    on_sequence: Callable[[str, str, dict], None] | None = None,
    alternate_order: bool = True,
    timing_repeats: int = 1,
) -> dict[str, dict]:
    """``run_ope`` for several tracker configurations at once, **interleaved**: each sequence is
    decoded once and every configuration tracks it before the next sequence is decoded.

    Slow drifts of the machine's speed (other work starting or stopping) then hit every
    configuration alike, which keeps the speed ratios between them meaningful, and each sequence is
    decoded once instead of once per configuration. With ``alternate_order`` every other sequence
    runs the configurations in reverse order, so a drift within one sequence's block favours no
    configuration either. With ``timing_repeats`` R > 1 every configuration tracks every sequence R
    times (the rounds interleaved the same way) and the fastest run counts, results and statistics
    included: a run that other work on the machine slowed down is set aside rather than averaged in
    (the trackers are deterministic, so the accuracy is the same whichever run counts).
    Returns ``{key: run_ope-style result}`` in the
    order of ``tracker_factories``. ``on_sequence(key, sequence_name, per_sequence_entry)`` is
    called after every tracked sequence (e.g. to log progress).
    """
    from tqdm.auto import tqdm

    factories = dict(tracker_factories)
    if not factories:
        raise ValueError("no tracker configurations to evaluate")
    seqs = list(sequences)
    if not seqs:
        raise ValueError("no sequences to evaluate")
    if max_frames is not None and max_frames < 2:
        raise ValueError(f"max_frames must be at least 2, got {max_frames}")
    if isinstance(timing_repeats, bool) or int(timing_repeats) != timing_repeats or timing_repeats < 1:
        raise ValueError(f"timing_repeats must be an integer >= 1, got {timing_repeats!r}")
    lengths = [len(s) if max_frames is None else min(len(s), max_frames) for s in seqs]
    accs = {k: _Accumulator(f, max_frames, keep_predictions) for k, f in factories.items()}
    desc = getattr(next(iter(factories.values())), "name", "tracking") if len(factories) == 1 \
        else f"{len(factories)} trackers"
    bar = tqdm(total=sum(lengths) * len(factories) * timing_repeats, desc=str(desc), unit="frame",
               disable=not progress, leave=False)
    try:
        for k, (seq, n) in enumerate(zip(seqs, lengths)):
            frames = decode_frames(seq, n)  # decoding stays outside the timing
            gt = np.asarray(seq.boxes, dtype=np.float64)[:n]
            name = str(seq.name)
            fastest: dict[str, tuple] = {}  # key -> (tracker, run) of its fastest round
            for round_ in range(timing_repeats):
                order = list(factories.items())
                if alternate_order and (k + round_) % 2 == 1:
                    order.reverse()
                if round_ == 0:
                    first_order = [key for key, _ in order]
                for key, factory in order:
                    if warmup and k == 0 and round_ == 0:
                        _warmup(factory, frames, gt)
                    tracker = factory()
                    run = _track_sequence(tracker, frames, gt)
                    if key in fastest and not np.array_equal(run["pred"], fastest[key][1]["pred"], equal_nan=True):
                        warnings.warn(f"{key} tracked {name} differently in two timing rounds: the "
                                      "accuracy reported is that of its fastest round", stacklevel=2)
                    if key not in fastest or run["seconds"] < fastest[key][1]["seconds"]:
                        fastest[key] = (tracker, run)
                    del tracker
                    bar.update(n)
            for key in first_order:
                acc = accs[key]
                tracker, run = fastest.pop(key)
                seq_name = name if name not in acc.per_sequence else f"{name}#{k}"  # same-named targets
                acc.add(seq_name, tracker, run, gt, n)
                if on_sequence is not None:
                    on_sequence(key, seq_name, acc.per_sequence[seq_name])
            del frames
    finally:
        bar.close()
    return {k: a.result() for k, a in accs.items()}


def run_ope(
    tracker_factory: Callable[[], Any],
    sequences: Iterable,
    progress: bool = True,
    max_frames: int | None = None,
    warmup: bool = True,
    keep_predictions: bool = False,
) -> dict:
    """Run one fresh tracker per sequence and score it (module doc: protocol, timing, cost).

    Args:
        tracker_factory: ``() -> tracker`` with ``init(image_rgb, box_xywh)`` and
            ``update(image_rgb) -> box``; e.g. ``build_tracker_factory(...)``.
        sequences: ``data.readers.Sequence`` objects (``read_sequences(root, split)``).
        progress: a tqdm bar over the frames.
        max_frames: track only the first ``max_frames`` frames of each sequence (quick checks).
        warmup: one untimed short run before the timing starts.
        keep_predictions: also return ``predictions`` {name: {"boxes", "key_frames", "confidences"}}
            (numpy arrays; not JSON-ready).

    Returns:
        a JSON-ready dict: ``success``, ``precision``, ``fps``, ``effective_interval``,
        ``gflops_per_frame`` (GMACs, ``None`` where unknown), ``frames`` (tracked), ``evaluated_frames``
        (target present), ``key_frames``, ``sequences``, ``seconds``, ``per_sequence`` {name:
        {success, precision, fps, frames, effective_interval, key_frames, seconds}}, ``curves``
        {success, precision, iou_thresholds, center_thresholds}, ``gflops`` (the parts of the cost),
        ``skip_frame`` (summed ``SkipFrameTracker.stats``; ``None`` for a plain tracker) and
        ``tracker`` / ``config`` when the factory says what it makes.
    """
    return run_ope_many({"run": tracker_factory}, sequences, progress=progress, max_frames=max_frames,
                        warmup=warmup, keep_predictions=keep_predictions)["run"]


def curves_for_plot(result: dict) -> dict:
    """``{"success_curve", "precision_curve"}`` of a ``run_ope`` result (or its JSON), for
    ``eval.otb.plot_success_precision``."""
    c = result["curves"]
    return {"success_curve": np.asarray(c["success"]), "precision_curve": np.asarray(c["precision"])}


def summary_line(result: dict) -> str:
    """One line: success, precision, fps, effective interval (and GMACs per frame when known)."""
    parts = [f"success {result['success']:.3f}", f"precision {result['precision']:.3f}",
             f"{result['fps']:.1f} fps", f"effective interval {result['effective_interval']:.2f}"]
    g = result.get("gflops_per_frame")
    if g is not None and math.isfinite(g):
        parts.append(f"{g:.4f} GMACs/frame")
    return ", ".join(parts)

