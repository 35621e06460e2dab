"""``VideoAccelerator``: key-frame acceleration around a LightningModule's detector or tracker.

```python
trainer = Trainer(callbacks=[VideoAccelerator(key_frame_interval=5)])
trainer.test(VideoDetectionModule(detector), datamodule=VideoDataModule(kind="mot", split=None))
```

A callback cannot skip ``test_step`` / ``predict_step`` and cannot ``self.log`` from predict
hooks, so it works around the module's model instead of inside the loop:

* ``on_test_start`` / ``on_predict_start`` replace ``pl_module.<attr>`` with a wrapper that runs
  the model on key frames only and PatchNet in between: ``SkipFrameDetector`` for a detector
  (anything ``adapt_detector`` accepts), ``SkipFrameTracker`` for a single-object tracker
  (anything ``adapt_tracker`` accepts). The module keeps calling ``self.detector(frame)`` or
  ``self.tracker.init / update``, unaware.
* ``on_test_end`` / ``on_predict_end``, ``on_exception`` and ``teardown`` put the original object
  back: the same object (``is``), at the same place among the module's children.
* **One batch = one video.** The wrapper carries boxes from frame to frame, so it is reset at the
  start of every batch, and every batch must be one video (``VideoDataModule`` makes it so). A
  batch that holds several videos, or whose per-frame video ids change, raises
  ``VideoBoundaryError`` before the model sees a frame; so does a module that pushes more frames
  through the wrapper than the batch's video has.
* **Statistics** are kept per video and per process and gathered from every DDP process at the
  end (``torch.distributed.all_gather_object``; gloo on CPU, NCCL on GPU): ``callback.stats``
  holds every video's record and the totals on every process. Process 0 prints a short table and
  writes ``stats_path`` (JSON) when given. In ``trainer.test`` the totals are also logged
  (``accel/key_frame_ratio``, ...), since logging is allowed there; ``predict`` cannot log.
"""
from __future__ import annotations

import inspect
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

__all__ = ["VideoAccelerator", "VideoBoundaryError", "POLICIES", "KINDS"]

logger = logging.getLogger(__name__)

POLICIES = ("fixed", "adaptive")
KINDS = ("detector", "tracker")
_AUTO_ATTRS = ("detector", "tracker")
_SUMMED = ("frames", "key_frames", "model_s", "propagation_s")
_EXTRAS = ("boxes_propagated", "boxes_dropped", "forced_by_confidence", "forced_by_scene_change", "base_failures")


class VideoBoundaryError(RuntimeError):
    """A batch that is not exactly one video: stateful acceleration would mix two videos' frames."""


# ---------------------------------------------------------------------------------- batches
def _as_id(v) -> str:
    if isinstance(v, torch.Tensor):
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    return str(v)


def _uniform_id(ids, where: str) -> str:
    ids = [_as_id(v) for v in (ids.reshape(-1).tolist() if isinstance(ids, (torch.Tensor, np.ndarray)) else ids)]
    if not ids:
        raise VideoBoundaryError(f"{where} is empty")
    for i in range(1, len(ids)):
        if ids[i] != ids[0]:
            raise VideoBoundaryError(
                f"the video id changes mid-batch at position {i} of {where} ({ids[i - 1]!r} -> {ids[i]!r}); "
                "a batch must be one video (use VideoDataModule, or batch the frames of one video only)")
    return ids[0]


def video_of_batch(batch) -> tuple[str, str, int | None] | None:
    """``(video_id, clip_id, frames)`` of a batch that is one video, ``None`` when the batch does
    not say; raises ``VideoBoundaryError`` when it holds more than one video."""
    if hasattr(batch, "video_id") and hasattr(batch, "clip_id"):  # a VideoClip
        return str(batch.video_id), str(batch.clip_id), len(batch)
    if isinstance(batch, (list, tuple)) and batch and all(hasattr(b, "clip_id") for b in batch):
        if len(batch) != 1:
            raise VideoBoundaryError(f"a batch holds {len(batch)} videos ({[b.clip_id for b in batch]}); "
                                     "stateful acceleration needs one video per batch (batch_size=1)")
        return video_of_batch(batch[0])
    if isinstance(batch, Mapping):
        key = next((k for k in ("video_id", "video", "sequence") if k in batch), None)
        if key is None:
            return None
        ids = batch[key]
        vid = _as_id(ids) if isinstance(ids, (str, int, np.integer)) or (
            isinstance(ids, torch.Tensor) and ids.ndim == 0) else _uniform_id(ids, f"batch[{key!r}]")
        clip = batch.get("clip_id", vid)
        clip = clip if isinstance(clip, str) else _uniform_id(clip, "batch['clip_id']")
        frames = batch.get("frames")
        n = len(frames) if frames is not None and hasattr(frames, "__len__") else None
        return vid, clip, n
    return None


# ----------------------------------------------------------------------------------- swapping
def _swap(module, attr: str, new) -> list[str] | None:
    """Set ``module.<attr> = new``. A registered child ``nn.Module`` replaced by a plain object
    leaves ``_modules`` (``nn.Module.__setattr__`` would refuse it); returns the children's order
    then, so ``_unswap`` can put the child back exactly where it was."""
    mods = getattr(module, "_modules", None)
    if isinstance(mods, dict) and attr in mods and not isinstance(new, torch.nn.Module):
        order = list(mods)
        mods.pop(attr)
        object.__setattr__(module, attr, new)
        return order
    setattr(module, attr, new)
    return None


def _unswap(module, attr: str, original, order: list[str] | None) -> None:
    if order is None:
        setattr(module, attr, original)
        return
    if attr in module.__dict__:
        object.__delattr__(module, attr)
    mods = module._modules
    current = dict(mods)
    items = [(k, original if k == attr else current[k]) for k in order if k == attr or k in current]
    items += [(k, v) for k, v in current.items() if k not in order]
    mods.clear()
    mods.update(items)


# ------------------------------------------------------------------------------------ callback
class VideoAccelerator(Callback):
    """Run the module's detector (or tracker) on key frames only, PatchNet in between, for
    ``trainer.test`` and ``trainer.predict``.

    Args:
        key_frame_interval: the most frames from one key frame to the next (1 = every frame).
        policy: ``"fixed"`` (a key frame exactly every ``key_frame_interval`` frames) or
            ``"adaptive"`` (also when PatchNet's confidence falls below ``conf_threshold``).
        attr: the module attribute holding the model; ``None`` = ``detector``, else ``tracker``.
        kind: ``"detector"`` or ``"tracker"``; ``None`` = from the attribute's name, else from the
            object (``init`` + ``update`` / ``track`` = a tracker, another callable = a detector).
        inter: the inter-frame method (``"patchnet"``; see ``SkipFrameDetector`` / ``SkipFrameTracker``).
        conf_threshold: the adaptive policy's confidence threshold (``None``: the wrapper's default,
            0.8 for ``SkipFrameTracker`` as in the paper).
        matcher: a ``PatchMatcher`` or ``PatchNet`` for the inter-frame method (default: the
            wrapper's own: ``SkipFrameDetector``'s default carrier for a detector, the pretrained
            PatchNet of ``inter`` for a tracker).
        stats_path: write the gathered statistics here (JSON, process 0) at the end of each run.
        verbose: print the summary table on process 0.
        **wrapper_kwargs: passed on to ``SkipFrameDetector`` / ``SkipFrameTracker``.

    Attributes:
        stats: after a run, ``{"stage", "kind", "world_size", "totals", "per_rank", "videos"}``,
            the same on every process (see ``summarize``).
        wrapper: the installed wrapper while a run is in progress, else ``None``.
    """

    def __init__(self, key_frame_interval: int = 5, policy: str = "fixed", attr: str | None = None,
                 kind: str | None = None, inter: str = "patchnet", conf_threshold: float | None = None,
                 matcher=None, stats_path: str | Path | None = None, verbose: bool = True, **wrapper_kwargs):
        if isinstance(key_frame_interval, bool) or int(key_frame_interval) != key_frame_interval \
                or key_frame_interval < 1:
            raise ValueError(f"key_frame_interval must be an integer >= 1, got {key_frame_interval!r}")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
        if conf_threshold is not None and not math.isfinite(float(conf_threshold)):
            raise ValueError(f"conf_threshold must be a finite number or None, got {conf_threshold!r}")
        self.key_frame_interval = int(key_frame_interval)
        self.policy = policy
        self.attr = attr
        self.kind = kind
        self.inter = inter
        self.conf_threshold = None if conf_threshold is None else float(conf_threshold)
        self.matcher = matcher
        self.stats_path = Path(stats_path) if stats_path is not None else None
        self.verbose = bool(verbose)
        self.wrapper_kwargs = dict(wrapper_kwargs)
        if self.wrapper_kwargs.get("lookahead"):
            raise ValueError("lookahead=True answers a frame only after the next key frame, but the module calls "
                             "its detector frame by frame; run SkipFrameDetector(...).process(frames) instead")
        self.stats: dict | None = None
        self.wrapper = None
        self._installed: dict | None = None
        self._videos: list[dict] = []
        self._current: dict | None = None
        self._warned_unknown = False

    # ------------------------------------------------------------------------------ install
    def _resolve_attr(self, pl_module) -> str:
        if self.attr is not None:
            if getattr(pl_module, self.attr, None) is None:
                raise AttributeError(f"VideoAccelerator(attr={self.attr!r}): {type(pl_module).__name__} has no "
                                     f"{self.attr!r} (or it is None)")
            return self.attr
        for a in _AUTO_ATTRS:
            if getattr(pl_module, a, None) is not None:
                return a
        raise AttributeError(f"VideoAccelerator found neither .detector nor .tracker on {type(pl_module).__name__}; "
                             "pass attr='<name of the attribute holding the model>'")

    def _resolve_kind(self, attr: str, obj) -> str:
        if self.kind is not None:
            return self.kind
        if attr in KINDS:
            return attr
        if callable(getattr(obj, "initialize", None)) or (
                callable(getattr(obj, "init", None)) and (callable(getattr(obj, "update", None))
                                                          or callable(getattr(obj, "track", None)))):
            return "tracker"
        if callable(obj):
            return "detector"
        raise TypeError(f"cannot tell whether {type(obj).__name__} is a detector or a tracker; pass kind=")

    def build_wrapper(self, obj, kind: str):
        """The accelerating wrapper around ``obj`` (``kind`` = ``"detector"`` or ``"tracker"``)."""
        if kind == "tracker":
            from ..accel.skip_frame_tracker import SkipFrameTracker

            if isinstance(obj, SkipFrameTracker):
                raise ValueError("the module's tracker is already a SkipFrameTracker; give VideoAccelerator the base tracker")
            kwargs: dict[str, Any] = dict(key_frame_interval=self.key_frame_interval, inter=self.inter,
                                          matcher=self.matcher)
            if self.policy == "fixed":
                kwargs["conf_threshold"] = None  # no confidence fallback: key frames every N frames
            elif self.conf_threshold is not None:
                kwargs["conf_threshold"] = self.conf_threshold
            kwargs.update(self.wrapper_kwargs)
            return SkipFrameTracker(obj, **kwargs)
        from ..accel.skip_frame_detector import SkipFrameDetector

        if isinstance(obj, SkipFrameDetector):
            raise ValueError("the module's detector is already a SkipFrameDetector; give VideoAccelerator the base detector")
        kwargs: dict[str, Any] = dict(key_frame_interval=self.key_frame_interval, policy=self.policy,
                                      inter=self.inter, matcher=self.matcher)
        if self.conf_threshold is not None and "conf_threshold" in inspect.signature(SkipFrameDetector).parameters:
            kwargs["conf_threshold"] = self.conf_threshold
        kwargs.update(self.wrapper_kwargs)
        return SkipFrameDetector(obj, **kwargs)

    def _install(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._installed is not None:
            self._restore()  # a previous run that ended without its end hook
        attr = self._resolve_attr(pl_module)
        original = getattr(pl_module, attr)
        kind = self._resolve_kind(attr, original)
        wrapper = self.build_wrapper(original, kind)
        order = _swap(pl_module, attr, wrapper)
        self._installed = {"module": pl_module, "attr": attr, "original": original, "order": order,
                           "kind": kind, "stage": stage}
        self.wrapper = wrapper
        self._videos = []
        self._current = None
        self.stats = None

    def _restore(self) -> None:
        inst, self._installed = self._installed, None
        self.wrapper = None
        self._current = None
        if inst is not None:
            _unswap(inst["module"], inst["attr"], inst["original"], inst["order"])

    @property
    def installed(self) -> bool:
        return self._installed is not None

    # -------------------------------------------------------------------------------- videos
    def _reset_wrapper(self) -> None:
        w = self.wrapper
        if hasattr(w, "reset"):  # SkipFrameDetector
            w.reset()
        else:  # SkipFrameTracker: forget the box and templates; update() before init() now raises
            w._reset_state()
        w.reset_stats()

    def _begin_video(self, batch, batch_idx: int) -> None:
        if self._installed is None:
            return
        ident = video_of_batch(batch)
        if ident is None:
            if not self._warned_unknown:
                self._warned_unknown = True
                logger.warning("VideoAccelerator cannot tell which video a batch belongs to (no video_id); "
                               "every batch is treated as one whole video. Use VideoDataModule, or give "
                               "batches a 'video_id'.")
            ident = (f"batch{batch_idx}", f"batch{batch_idx}", None)
        self._reset_wrapper()
        self._current = {"video_id": ident[0], "clip_id": ident[1], "clip_frames": ident[2]}

    def _end_video(self, trainer: pl.Trainer) -> None:
        if self._installed is None or self._current is None:
            return
        cur, self._current = self._current, None
        s = dict(self.wrapper.stats)
        rec = {
            "video_id": cur["video_id"],
            "clip_id": cur["clip_id"],
            "rank": int(trainer.global_rank),
            "clip_frames": cur["clip_frames"],
            "frames": int(s.get("frames", 0)),
            "key_frames": int(s.get("key_frames", 0)),
            "model_s": float(s.get("detector_s", s.get("base_seconds", 0.0))),
            "propagation_s": float(s.get("propagation_s", s.get("inter_seconds", 0.0))),
        }
        rec["key_frame_ratio"] = rec["key_frames"] / rec["frames"] if rec["frames"] else float("nan")
        for k in _EXTRAS:
            if k in s:
                rec[k] = int(s[k])
        if cur["clip_frames"] is not None and rec["frames"] > cur["clip_frames"]:
            raise VideoBoundaryError(
                f"{rec['frames']} frames went through the accelerated {self._installed['kind']} in the batch of "
                f"{cur['clip_id']!r}, which has {cur['clip_frames']}: frames of another video were mixed in")
        self._videos.append(rec)

    # ------------------------------------------------------------------------------- statistics
    def _gather(self, trainer: pl.Trainer) -> dict:
        local = list(self._videos)
        world = int(getattr(trainer, "world_size", 1))
        dist = torch.distributed
        if world > 1 and dist.is_available() and dist.is_initialized():
            parts: list = [None] * dist.get_world_size()
            dist.all_gather_object(parts, local)
            everything = [r for p in parts for r in p]
        else:
            everything = local
        inst = self._installed or {}
        self.stats = self.summarize(everything, world_size=world, stage=inst.get("stage"), kind=inst.get("kind"))
        self.stats["settings"] = {"key_frame_interval": self.key_frame_interval, "policy": self.policy,
                                  "inter": self.inter,
                                  "conf_threshold": self.conf_threshold}
        return self.stats

    @staticmethod
    def summarize(videos: list[dict], world_size: int = 1, stage: str | None = None, kind: str | None = None) -> dict:
        """Totals over per-video records: ``frames``, ``key_frames``, ``key_frame_ratio``,
        ``model_s`` (time in the detector / base tracker), ``propagation_s`` (time in PatchNet),
        their per-frame means, and the same per process."""
        videos = sorted(videos, key=lambda r: (r["video_id"], r["clip_id"]))

        def total(rows: list[dict]) -> dict:
            t: dict[str, Any] = {"videos": len(rows)}
            for k in _SUMMED:
                t[k] = sum(r[k] for r in rows)
            t["frames"], t["key_frames"] = int(t["frames"]), int(t["key_frames"])
            for k in _EXTRAS:
                if any(k in r for r in rows):
                    t[k] = int(sum(r.get(k, 0) for r in rows))
            inter = t["frames"] - t["key_frames"]
            t["key_frame_ratio"] = t["key_frames"] / t["frames"] if t["frames"] else float("nan")
            t["model_ms_per_key_frame"] = 1e3 * t["model_s"] / t["key_frames"] if t["key_frames"] else float("nan")
            t["propagation_ms_per_frame"] = 1e3 * t["propagation_s"] / t["frames"] if t["frames"] else float("nan")
            t["inter_frames"] = inter
            return t

        per_rank = []
        for r in range(world_size):
            row = total([v for v in videos if v["rank"] == r])
            row["rank"] = r
            per_rank.append(row)
        return {"stage": stage, "kind": kind, "world_size": world_size, "totals": total(videos),
                "per_rank": per_rank, "videos": videos}

    def format_table(self, max_rows: int = 20) -> str:
        """The summary printed at the end of a run."""
        s = self.stats
        if not s:
            return "VideoAccelerator: no statistics yet"
        t = s["totals"]
        model = "detector" if s["kind"] == "detector" else "tracker"
        lines = [
            f"VideoAccelerator ({s['stage']}, {s['kind']}, key_frame_interval={self.key_frame_interval}, "
            f"policy={self.policy}): {t['videos']} videos on {s['world_size']} process(es), {t['frames']} frames, "
            f"{t['key_frames']} key frames (ratio {t['key_frame_ratio']:.3f})",
            f"  {model} {t['model_s']:.3f} s ({t['model_ms_per_key_frame']:.2f} ms per key frame), "
            f"propagation {t['propagation_s']:.3f} s ({t['propagation_ms_per_frame']:.2f} ms per frame)",
            f"  {'video':<40} {'rank':>4} {'frames':>6} {'key':>5} {'ratio':>6} {model + ' s':>11} {'prop. s':>8}",
        ]
        for r in s["videos"][:max_rows]:
            lines.append(f"  {r['clip_id'][-40:]:<40} {r['rank']:>4} {r['frames']:>6} {r['key_frames']:>5} "
                         f"{r['key_frame_ratio']:>6.3f} {r['model_s']:>11.3f} {r['propagation_s']:>8.3f}")
        if len(s["videos"]) > max_rows:
            lines.append(f"  ... {len(s['videos']) - max_rows} more videos (stats_path= writes them all)")
        return "\n".join(lines)

    def _report(self, trainer: pl.Trainer) -> None:
        if not trainer.is_global_zero or self.stats is None:
            return
        if self.verbose:
            print(self.format_table(), flush=True)
        if self.stats_path is not None:
            self.stats_path.parent.mkdir(parents=True, exist_ok=True)
            self.stats_path.write_text(json.dumps(_jsonable(self.stats), indent=2) + "\n")

    def _log(self, pl_module: pl.LightningModule) -> None:
        t = self.stats["totals"]
        for k in ("key_frame_ratio", "frames", "key_frames", "model_s", "propagation_s"):
            v = float(t[k])
            if math.isfinite(v):
                # identical on every process after the gather: the mean changes nothing
                pl_module.log(f"accel/{k}", v, sync_dist=True, reduce_fx="mean")

    # ---------------------------------------------------------------------------------- hooks
    def on_test_start(self, trainer, pl_module) -> None:
        self._install(trainer, pl_module, "test")

    def on_predict_start(self, trainer, pl_module) -> None:
        self._install(trainer, pl_module, "predict")

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._begin_video(batch, batch_idx)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._begin_video(batch, batch_idx)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._end_video(trainer)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._end_video(trainer)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if self._installed is not None:
            self._gather(trainer)
            self._log(pl_module)

    def on_test_end(self, trainer, pl_module) -> None:
        try:
            if self._installed is not None and self.stats is None:
                self._gather(trainer)
            self._report(trainer)
        finally:
            self._restore()

    def on_predict_end(self, trainer, pl_module) -> None:
        try:
            if self._installed is not None:
                self._gather(trainer)
            self._report(trainer)
        finally:
            self._restore()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore()  # never a collective here: the other processes may be elsewhere

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._restore()

    def state_dict(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return (f"VideoAccelerator(key_frame_interval={self.key_frame_interval}, policy={self.policy!r}, "
                f"attr={self.attr!r}, kind={self.kind!r}, inter={self.inter!r})")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj
