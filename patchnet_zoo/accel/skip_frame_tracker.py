"""Run an expensive single-object tracker on key frames only, and PatchNet in between.

```python
from patchnet_zoo.accel import accelerate

tracker = accelerate(my_tracker, key_frame_interval=4)   # any convention adapt_tracker knows
tracker.init(first_frame, [x, y, w, h])                    # RGB frames, x,y,w,h 0-based
for frame in frames:
    box = tracker.update(frame)
    print(box, tracker.last_was_key, tracker.last_confidence)
print(tracker.stats)   # frames, key_frames, effective_interval, base_seconds, inter_seconds, ...
```

The scheme (the paper's, see ``SkipFrameTracker``):

* **Key frames** run the base tracker (``init`` on the first frame, ``update`` after). The base
  tracker is *not* updated on the frames in between, which is what makes the saving real (its cost
  is paid on key frames only). Left alone it would search from where it last was, frames ago, so
  before each key-frame update it is moved to the inter-frame estimate: through its ``relocate``
  where it has one, else by shifting the frame it is shown (``relocate_base``).
* **Inter frames** run the inter-frame method. With ``inter="patchnet"`` PatchNet matches the
  *key-frame* template (the key frame cropped at the key-frame box, encoded once per key frame)
  against the current frame, with the search window centred on the current state (the last
  output box) moved on by ``motion_prior`` times the target's last displacement (a
  constant-velocity guess; the displacement is measured between inter frames only and is zero
  on the first inter frame after a key frame). The centre moves to the match; the size is damped,
  per axis,
  ``s = 1 - d + d * new / old`` (``d = size_damping``; 0.25 gives the original's
  ``0.75 + 0.25 * new / old``; ``None`` takes the regressed size as it is).
* **Online key-frame selection**: when the inter-frame confidence falls below ``conf_threshold``
  (0.8, the paper's value) the base tracker runs on this frame and it becomes the new key frame.
  A key frame is also forced when the number of frames since the last key frame reaches
  ``key_frame_interval``; with ``conf_threshold=None`` key frames come exactly every
  ``key_frame_interval`` frames.

Failures of the base tracker never stop the run. An exception, a reported loss of the target
(``ok == False`` after ``update``, as OpenCV's trackers report it), a non-finite box, a
non-positive width or height, or a box wholly outside the frame is logged (``logging``: a warning
once per kind and tracker, debug after), counted in ``stats["base_failures"]`` and listed in
``failures``. The wrapper then keeps the last good box (the last output) and the last good
key-frame template (so the inter-frame method keeps tracking from there), and at the next key
frame it re-initialises the base tracker with ``init(frame, last_good_box)`` instead of calling
``update`` (``stats["base_reinits"]``); that key frame's box is the last good box.
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np

from .frame_shift import FrameShift
from .tracker_adapters import SingleObjectTracker, accepts_keyword, adapt_tracker

__all__ = ["SkipFrameTracker", "accelerate", "INTER_METHODS", "PATCHNET_INTER_ARCH"]

logger = logging.getLogger(__name__)

#: the inter-frame methods that are PatchNet models, with the registry architecture each loads
PATCHNET_INTER_ARCH = {"patchnet": "patchnet", "patch-aggregation": "patchnet_patch_aggregation",
                       "patchnet-k4": "patchnet_k4", "patchnet-zero-mean": "patchnet_zero_mean",
                       "patchnet-k4-zero-mean": "patchnet_k4_zero_mean"}
INTER_METHODS = (*PATCHNET_INTER_ARCH, "hold", "kcf", "mosse")
_STAT_KEYS = ("frames", "key_frames", "inter_frames", "base_seconds", "inter_seconds",
              "forced_by_confidence", "base_failures", "base_reinits", "extra_searches")


def _frame_hw(image) -> tuple[int, int]:
    """(H, W) of an HxW[xC] array or a CxHxW / HxWxC tensor, without converting it."""
    shape = getattr(image, "shape", None)
    if shape is None:
        raise TypeError(f"expected an image array (HxWx3 RGB), got {type(image).__name__}")
    shape = tuple(shape)
    if hasattr(image, "detach") and len(shape) == 3 and shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
        return int(shape[1]), int(shape[2])
    if len(shape) < 2:
        raise ValueError(f"a frame is HxW or HxWxC; got shape {shape}")
    return int(shape[0]), int(shape[1])


def _box_problem(box, hw: tuple[int, int]) -> tuple[str, str] | None:
    """``(kind, detail)`` of what is wrong with a tracker's answer, or None when it is usable."""
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        return "bad output", f"{box!r} is not 4 numbers ({e})"
    if b.shape != (4,):
        return "bad output", f"{box!r} is not 4 numbers"
    if not np.isfinite(b).all():
        return "non-finite box", f"{b.tolist()} (NaN = the tracker reported a loss)"
    if b[2] <= 0 or b[3] <= 0:
        return "non-positive size", str(b.tolist())
    h, w = hw
    if b[0] + b[2] <= 0 or b[1] + b[3] <= 0 or b[0] >= w or b[1] >= h:
        return "outside the frame", f"{b.tolist()} in a {w}x{h} frame"
    return None


#: PatchNet's search extent between key frames, in response cells. The model's own 7 (the paper's
#: +-37.5 % of the box) loses fast targets for good: on the val split, skip-frame NanoTrack at a maximum
#: interval of 3 with the confidence fallback kept 91.3 % of its per-frame success with 7, 98.3 % with
#: 9 and 11, 97.6 % with 13 (effective intervals 2.68 / 2.57 / 2.52 / 2.51; ``benchmarks/tracking.py
#: --tables 3 --bases nanotrack --intervals 3 --response-size R``). 9 costs 1.3x the MACs of 7.
DEFAULT_RESPONSE_SIZE = 9

#: ``SkipFrameTracker(motion_prior=...)``: by default PatchNet's search window is centred on the last
#: box. A lead of 0.75 times the target's last displacement (the best of 0, 0.75 and 1 on the train
#: split) keeps fast targets in reach when there is no confidence fallback, but one lost target in
#: the val split costs the gated tracker's skip-frame row 3 points (docs/design.md, "A
#: constant-velocity prior").
DEFAULT_MOTION_PRIOR = 0.0


def check_relocate_base(relocate_base) -> None:
    """``relocate_base`` is exactly ``True``, ``False`` or ``"shift"`` (see ``SkipFrameTracker``)."""
    if not (isinstance(relocate_base, bool) or relocate_base == "shift"):
        raise ValueError(f"relocate_base must be True, False or 'shift', got {relocate_base!r}")


class SkipFrameTracker(SingleObjectTracker):
    """A base tracker on key frames, an inter-frame method (PatchNet by default) in between.

    Args:
        base: the expensive tracker; anything ``adapt_tracker`` accepts (a ``SingleObjectTracker``,
            an OpenCV / got10k / pysot / pytracking tracker, a callable, a name like ``"nanotrack"``).
        key_frame_interval: the most frames from one key frame to the next (1 = every frame).
        conf_threshold: an inter frame whose confidence is below this becomes a key frame (the
            paper's 0.8); ``None`` switches the fallback off. Confidence is PatchNet's peak ratio
            for ``patchnet`` / ``patch-aggregation``, the OpenCV tracker's success flag (1 or 0)
            for ``kcf`` / ``mosse``, and undefined (NaN, never falls back) for ``hold``.
        inter: ``"patchnet"``, ``"patch-aggregation"``, ``"patchnet-k4"`` (a ``PatchMatcher`` on the
            given ``matcher``, else on ``create_model(PATCHNET_INTER_ARCH[inter], pretrained=True)``,
            loaded on first ``init``; ``patchnet-k4`` is PatchNet with 4x4-pixel patches, half the
            cost; ``patchnet-zero-mean`` / ``patchnet-k4-zero-mean`` the same two with zero-mean
            patch correlations, docs/design.md "Zero-mean patches"), ``"hold"`` (repeat the box),
            ``"kcf"`` (KCF*) or ``"mosse"`` (an OpenCV tracker initialised and primed on each key
            frame, updated on inter frames).
        matcher: a ``PatchMatcher`` or a ``PatchNet`` for the PatchNet methods.
        size_damping: ``d`` in ``s = 1 - d + d * new / old`` on inter frames; ``None`` = undamped.
        response_size: PatchNet's search extent in response cells (odd). ``None``:
            ``DEFAULT_RESPONSE_SIZE`` (9, see there) for the model the tracker loads or a ``PatchNet``
            given as ``matcher``, while a ``PatchMatcher`` given as ``matcher`` is used as it is.
        min_size: smallest width/height (pixels) an inter-frame box may shrink to.
        motion_prior: the share of the target's last displacement (between the last two inter
            frames) by which PatchNet's search window is moved ahead of the last box; 0 centres
            it on the last box. See ``DEFAULT_MOTION_PRIOR``.
        rigid_centre: centre PatchNet's box on the best whole-template placement in the peak cell
            (``PatchMatcher(rigid_centre=True)``) for the matcher the tracker builds (from the model
            it loads or a ``PatchNet`` given as ``matcher``); a given ``PatchMatcher`` keeps its own.
            With ``inter="patchnet-k4-zero-mean"`` this is the cheap carrier for both of our
            tracking bars: with the fallback as it is, and with ``motion_prior=0.75`` on a fixed
            schedule (``conf_threshold=None``); it meets both with ``compiled=True`` (eager, it
            keeps 96.95 % on val, just below the 97 % bar); docs/design.md, "One cheap carrier for
            both tracking bars".
        compiled: compile PatchNet's matches (``PatchMatcher(compiled=True)``: each one-box match
            after its crop as one graph, the boxes the same to float rounding, in less time; needs
            a C++ compiler) for the matcher the tracker builds; a given ``PatchMatcher`` keeps its own.
            With ``inter="patchnet-zero-mean"`` it is what lifts the carrier over both of our
            tracking bars on the val and train splits; docs/design.md, "Every match compiled: one
            carrier for both tracking bars".
        relocate_base: before each key-frame update, hand a base tracker that has
            ``relocate(box)`` (``trackers.nanotrack.NanoTrack``, pysot-style trackers) the current
            inter-frame estimate, so it searches where the target is now instead of where it saw it
            frames ago; one whose ``relocate`` takes ``frames`` also hears how many frames have
            passed since it last ran (NanoTrack compounds its size smoothing over them). A base
            tracker without ``relocate`` (OpenCV's CSRT, KCF, MOSSE and ``TrackerNano``, got10k,
            pytracking and callable trackers: their search state is private) is shown the key frame
            shifted by whole pixels instead, so that the target, where the inter-frame estimate
            has it, appears where the tracker last saw it, and its answer is shifted back
            (``accel.frame_shift``; docs/design.md, "Relocating a tracker with private state").
            ``"shift"`` shifts the frame even for a tracker that has ``relocate``; ``False`` keeps
            the base tracker's own state.

    Attributes:
        last_was_key: whether the last ``init``/``update`` frame was a key frame.
        last_confidence: the inter-frame confidence computed on the last frame (on a key frame
            forced by confidence: the low value that forced it; NaN where none was computed).
        stats: per-video statistics, reset by ``init`` (see ``stats``).
        failures: ``(frame_index, kind, detail)`` of every base-tracker failure of this video.
    """

    def __init__(self, base, key_frame_interval: int = 4, conf_threshold: float | None = 0.8,
                 inter: str = "patchnet", matcher=None, size_damping: float | None = 0.25,
                 response_size: int | None = None, min_size: float = 2.0,
                 relocate_base: bool | str = True, motion_prior: float = DEFAULT_MOTION_PRIOR,
                 rigid_centre: bool = False, compiled: bool = False):
        if isinstance(key_frame_interval, bool) or int(key_frame_interval) != key_frame_interval \
                or key_frame_interval < 1:
            raise ValueError(f"key_frame_interval must be an integer >= 1, got {key_frame_interval!r}")
        inter = str(inter).strip().lower().replace("_", "-")
        if inter not in INTER_METHODS:
            raise ValueError(f"inter must be one of {INTER_METHODS}, got {inter!r}")
        if conf_threshold is not None and not math.isfinite(float(conf_threshold)):
            raise ValueError(f"conf_threshold must be a number or None, got {conf_threshold!r}")
        if size_damping is not None and not 0.0 <= float(size_damping) <= 1.0:
            raise ValueError(f"size_damping must be in [0, 1] or None, got {size_damping!r}")
        if not (math.isfinite(float(motion_prior)) and 0.0 <= float(motion_prior) <= 2.0):
            raise ValueError(f"motion_prior must be in [0, 2], got {motion_prior!r}")
        if matcher is not None and inter not in PATCHNET_INTER_ARCH:
            raise ValueError(f"a matcher is only used by the PatchNet methods, not by inter={inter!r}")
        if response_size is not None and (int(response_size) != response_size or response_size < 1
                                          or response_size % 2 == 0):
            raise ValueError(f"response_size must be an odd positive integer, got {response_size!r}")
        check_relocate_base(relocate_base)
        self.base = adapt_tracker(base)
        self._relocate = getattr(self.base, "relocate", None) if relocate_base is True else None
        # a tracker that cannot be told where to search is shown a shifted frame instead
        self._shift = FrameShift() if relocate_base is not False and self._relocate is None else None
        self._relocate_frames = self._relocate is not None and accepts_keyword(self._relocate, "frames")
        self.key_frame_interval = int(key_frame_interval)
        self.conf_threshold = None if conf_threshold is None else float(conf_threshold)
        self.inter = inter
        self.size_damping = None if size_damping is None else float(size_damping)
        self.response_size = None if response_size is None else int(response_size)
        self.min_size = float(min_size)
        self.motion_prior = float(motion_prior)
        if not isinstance(rigid_centre, bool):
            raise TypeError(f"rigid_centre must be True or False, got {rigid_centre!r}")
        self.rigid_centre = rigid_centre
        if not isinstance(compiled, bool):
            raise TypeError(f"compiled must be True or False, got {compiled!r}")
        self.compiled = compiled
        self._matcher_arg = matcher
        self._matcher = None
        self.name = f"{self.base.name}+{inter}@{self.key_frame_interval}"
        self.gflops_per_frame = None  # depends on the key-frame rate: see stats
        self._warned: set[str] = set()
        self._reset_state()
        self.reset_stats()

    # ---------------------------------------------------------------------------------- state
    def _reset_state(self) -> None:
        self._box: np.ndarray | None = None
        self._velocity = (0.0, 0.0)  # centre displacement between the last two inter frames
        self._templates = None
        self._inter_tracker: SingleObjectTracker | None = None
        self._inter_ready = False
        self._since_key = 0
        self._needs_reinit = False
        self._frame_index = -1
        self.last_was_key = False
        self.last_confidence = float("nan")
        self.failures: list[tuple[int, str, str]] = []

    def reset_stats(self) -> None:
        """Zero the statistics (``init`` does it for every new video)."""
        self._stats = {k: 0 for k in _STAT_KEYS}
        self._stats["base_seconds"] = 0.0
        self._stats["inter_seconds"] = 0.0

    @property
    def stats(self) -> dict:
        """``frames`` (init frame included), ``key_frames`` (frames the base tracker ran on, the
        init frame included), ``inter_frames``, ``effective_interval`` (frames / key_frames),
        ``base_seconds`` (time in the base tracker: its init/update, frame conversion included),
        ``inter_seconds`` (time in the inter-frame method: template encoding on key frames and
        matching on inter frames, also where the match then forced a key frame),
        ``forced_by_confidence`` (key frames forced by low confidence), ``base_failures``,
        ``base_reinits`` and ``extra_searches`` (PatchNet searches beyond one per inter frame:
        ``PatchMatcher(edge_follow=...)`` searching again past the window's edge)."""
        s = dict(self._stats)
        s["effective_interval"] = s["frames"] / s["key_frames"] if s["key_frames"] else float("nan")
        return s

    @property
    def confidence(self) -> float:
        """Alias of ``last_confidence`` (what ``track_video`` records)."""
        return self.last_confidence

    @property
    def box(self) -> np.ndarray | None:
        return None if self._box is None else self._box.copy()

    @property
    def matcher(self):
        """The ``PatchMatcher`` of the PatchNet methods (built, or loaded, on first use)."""
        if self.inter not in PATCHNET_INTER_ARCH:
            return None
        if self._matcher is None:
            from ..matching import PatchMatcher

            m = self._matcher_arg
            if m is None:
                from ..trackers.patchnet_tracker import load_pretrained_patchnet

                m = load_pretrained_patchnet(PATCHNET_INTER_ARCH[self.inter])
            if isinstance(m, PatchMatcher):
                m = m.with_response_size(self.response_size)
            else:
                m = PatchMatcher(m, response_size=self.response_size or DEFAULT_RESPONSE_SIZE,
                                 rigid_centre=self.rigid_centre, compiled=self.compiled)
            self._matcher = m
        return self._matcher

    # ------------------------------------------------------------------------------------ API
    def init(self, image, box) -> None:
        """Start a new video: ``box`` (x,y,w,h, 0-based) in ``image`` (RGB). Resets the statistics.

        Raises ``ValueError`` for a non-finite box, a non-positive size or a box wholly outside the
        frame. A base tracker that fails to initialise is reported and retried at the next key frame.
        """
        b = np.asarray(box, dtype=np.float64).reshape(-1)
        if b.shape != (4,):
            raise ValueError(f"init takes one box x,y,w,h; got shape {np.shape(box)}")
        hw = _frame_hw(image)
        problem = _box_problem(b, hw)
        if problem is not None:
            raise ValueError(f"invalid init box: {problem[0]}: {problem[1]}")
        if self.inter in PATCHNET_INTER_ARCH:
            self.matcher  # load the model now, so a missing model fails here and not mid-video
        self._reset_state()
        self.reset_stats()
        self._frame_index = 0
        self._stats["frames"] = 1
        self._stats["key_frames"] = 1
        t0 = time.perf_counter()
        try:
            self.base.init(image, b.copy())
        except Exception as e:  # noqa: BLE001 - any base-tracker error is reported, never raised
            self._stats["base_seconds"] += time.perf_counter() - t0
            self._fail("init raised", f"{type(e).__name__}: {e}")
        else:
            if self._shift is not None:
                self._shift.reset(b)
            self._stats["base_seconds"] += time.perf_counter() - t0
        self._box = b.copy()
        self._start_inter(image, b)
        self.last_was_key = True
        self.last_confidence = float("nan")

    def update(self, image) -> np.ndarray:
        """Track into ``image`` (RGB); returns the box (x,y,w,h float64)."""
        if self._box is None:
            raise RuntimeError("call init(image, box) before update(image)")
        hw = _frame_hw(image)
        self._frame_index += 1
        self._since_key += 1
        self._stats["frames"] += 1
        confidence = float("nan")
        if self._since_key < self.key_frame_interval:
            t0 = time.perf_counter()
            box, confidence = self._inter_step(image, hw)
            self._stats["inter_seconds"] += time.perf_counter() - t0
            low = (self.conf_threshold is not None and math.isfinite(confidence)
                   and confidence < self.conf_threshold)
            if not low:
                (x, y, w, h), (px, py, pw, ph) = box.tolist(), self._box.tolist()
                self._velocity = ((x + w / 2) - (px + pw / 2), (y + h / 2) - (py + ph / 2))
                self._box = box
                self._stats["inter_frames"] += 1
                self.last_was_key = False
                self.last_confidence = confidence
                return box.copy()
            self._stats["forced_by_confidence"] += 1
        self._key_frame(image, hw)
        self.last_was_key = True
        self.last_confidence = confidence
        return self._box.copy()

    # -------------------------------------------------------------------------------- key frames
    def _key_frame(self, image, hw: tuple[int, int]) -> None:
        elapsed = max(self._since_key, 1)  # frames since the base tracker last ran
        self._since_key = 0
        # a key-frame box corrects the estimate rather than following the motion
        self._velocity = (0.0, 0.0)
        self._stats["key_frames"] += 1
        t0 = time.perf_counter()
        if self._needs_reinit:
            try:
                self.base.init(image, self._box.copy())
                ok = True
            except Exception as e:  # noqa: BLE001
                ok = False
                err = f"{type(e).__name__}: {e}"
            self._stats["base_seconds"] += time.perf_counter() - t0
            if not ok:
                self._fail("init raised", err)
                return
            if self._shift is not None:
                self._shift.reset(self._box)
            self._needs_reinit = False
            self._stats["base_reinits"] += 1
            self._start_inter(image, self._box)
            return
        try:
            if self._relocate is not None:
                # search where the inter-frame method last saw the target, not where the base
                # tracker itself last saw it (frames ago); a tracker that can also hear how many
                # frames ago that was (``relocate(box, frames=k)``) is told
                if self._relocate_frames:
                    self._relocate(self._box.copy(), frames=elapsed)
                else:
                    self._relocate(self._box.copy())
            if self._shift is not None:
                # the same for a tracker with private state: the frame moves instead of the tracker
                out = self._shift.answer(self.base.update(self._shift.frame_for(image, self._box)))
            else:
                out = self.base.update(image)
            problem = _box_problem(out, hw)
            reported_ok = getattr(self.base, "ok", True)
            if problem is None and reported_ok is not None and not reported_ok:
                problem = ("target lost", f"the tracker reported a loss (box {np.asarray(out).tolist()})")
        except Exception as e:  # noqa: BLE001
            problem = ("update raised", f"{type(e).__name__}: {e}")
        self._stats["base_seconds"] += time.perf_counter() - t0
        if problem is not None:
            # keep the last good box and the last good template; re-init at the next key frame
            self._fail(*problem)
            return
        self._box = np.asarray(out, dtype=np.float64).reshape(4).copy()
        self._start_inter(image, self._box)

    def _fail(self, kind: str, detail: str) -> None:
        self._needs_reinit = True
        self._stats["base_failures"] += 1
        self.failures.append((self._frame_index, kind, detail))
        msg = ("base tracker %s failed on frame %d (%s: %s); keeping the last good box and "
               "re-initialising it at the next key frame")
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning(msg, self.base.name, self._frame_index, kind, detail)
        else:
            logger.debug(msg, self.base.name, self._frame_index, kind, detail)

    # ------------------------------------------------------------------------------ inter frames
    def _start_inter(self, image, box: np.ndarray) -> None:
        """Prepare the inter-frame method on a key frame (timed as inter-frame time)."""
        if self.key_frame_interval == 1 or self.inter == "hold":
            return
        t0 = time.perf_counter()
        try:
            if self.inter in PATCHNET_INTER_ARCH:
                import torch

                self._templates = self.matcher.encode(self._frame_tensor(image),
                                                      torch.as_tensor(box, dtype=torch.float32))
            else:
                if self._inter_tracker is None:
                    from ..trackers.opencv_trackers import create_opencv_tracker

                    self._inter_tracker = create_opencv_tracker(self.inter)
                self._inter_ready = False
                try:
                    self._inter_tracker.init(image, box)
                    self._inter_ready = True
                except Exception as e:  # noqa: BLE001 - OpenCV rejects e.g. tiny boxes: no inter answer
                    logger.debug("inter-frame tracker %s failed to start: %s", self.inter, e)
        finally:
            self._stats["inter_seconds"] += time.perf_counter() - t0

    def _inter_step(self, image, hw: tuple[int, int]) -> tuple[np.ndarray, float]:
        prev = self._box
        if self.inter == "hold":
            return prev.copy(), float("nan")
        if self.inter in PATCHNET_INTER_ARCH:
            x, y, w, h = prev.tolist()
            if self.motion_prior:
                x += self.motion_prior * self._velocity[0]
                y += self.motion_prior * self._velocity[1]
            new, confidence, searches = self.matcher.match_one(self._templates, self._frame_tensor(image),
                                                               (x, y, w, h))
            self._stats["extra_searches"] += searches - 1
        else:
            if not self._inter_ready:
                return prev.copy(), 0.0
            try:
                new = np.asarray(self._inter_tracker.update(image), dtype=np.float64).reshape(4).tolist()
            except Exception as e:  # noqa: BLE001 - an OpenCV error on an inter frame: no answer
                logger.debug("inter-frame tracker %s failed: %s", self.inter, e)
                return prev.copy(), 0.0
            confidence = 1.0 if getattr(self._inter_tracker, "ok", True) else 0.0
        if not (math.isfinite(confidence) and all(map(math.isfinite, new))) or new[2] <= 0 or new[3] <= 0:
            return prev.copy(), 0.0
        if confidence == 0.0:  # nothing found (e.g. a flat, textureless window): stay put
            return prev.copy(), 0.0
        return self._usable(self._damp(prev.tolist(), new), hw), confidence

    # Four numbers a frame: plain floats, not numpy (whose per-call cost is most of a step's
    # bookkeeping); the same float64 operations in the same order as the vector form.
    def _damp(self, old: list[float], new: list[float]) -> list[float]:
        """The centre of ``new`` with the size damped towards it: ``s = old * (1 - d + d * new / old)``."""
        if self.size_damping is None:
            return list(new)
        d = self.size_damping
        cx, cy = new[0] + new[2] / 2, new[1] + new[3] / 2
        w = old[2] * ((1.0 - d) + d * new[2] / old[2])
        h = old[3] * ((1.0 - d) + d * new[3] / old[3])
        return [cx - w / 2, cy - h / 2, w, h]

    def _usable(self, box: list[float], hw: tuple[int, int]) -> np.ndarray:
        """Centre clamped into the frame, size into [min_size, frame size], so the next search
        window always overlaps the frame (an inter-frame box never drifts wholly out of it)."""
        fh, fw = hw
        m = self.min_size
        w = min(max(box[2], m), max(fw, m))
        h = min(max(box[3], m), max(fh, m))
        cx = min(max(box[0] + box[2] / 2, 0.0), fw - 1e-3)
        cy = min(max(box[1] + box[3] / 2, 0.0), fh - 1e-3)
        return np.array([cx - w / 2, cy - h / 2, w, h])

    @staticmethod
    def _frame_tensor(image):
        """(3, H, W) uint8 for the matcher; float frames are rounded once (as PatchNetTracker does)."""
        import torch

        from ..geometry import to_frame_tensor

        frame = to_frame_tensor(image)
        if frame.dtype != torch.uint8:
            frame = frame.clamp(0, 255).round().to(torch.uint8)
        return frame

    def __repr__(self) -> str:
        return (f"SkipFrameTracker(base={self.base.name!r}, key_frame_interval={self.key_frame_interval}, "
                f"conf_threshold={self.conf_threshold}, inter={self.inter!r}, size_damping={self.size_damping})")


def accelerate(tracker, key_frame_interval: int = 4, **kwargs) -> SkipFrameTracker:
    """``SkipFrameTracker(adapt_tracker(tracker), key_frame_interval, **kwargs)``: run ``tracker``
    on key frames only and PatchNet (or ``inter``) in between, with the confidence fallback."""
    return SkipFrameTracker(adapt_tracker(tracker), key_frame_interval=key_frame_interval, **kwargs)
