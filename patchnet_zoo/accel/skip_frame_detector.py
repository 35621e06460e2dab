"""Run an expensive detector on key frames only, and carry every box through the frames between.

```python
from patchnet_zoo.accel import accelerate_detector

det = accelerate_detector("fastestdet", key_frame_interval=5)   # any detector adapt_detector knows
det.reset()                                   # at the start of every video
for frame in frames:                          # RGB HxWx3 uint8
    d = det(frame)                            # Detections: xyxy, scores, class_ids, from_key_frame
print(det.stats)   # frames, key_frames, key_frame_ratio, detector_s, propagation_s, boxes_propagated
```

The scheme (the paper's §5.1, after Detect or Track):

* **Key frames** run the detector. Its boxes are returned as they are (``from_key_frame=True``),
  and with ``inter="patchnet"`` every box is encoded as a PatchNet template, all in one call.
* **Inter frames** carry each key-frame box to the current frame, keeping its class and score
  (``from_key_frame=False``). PatchNet matches each box's template with its search window
  centred on the box's estimate in the *previous* frame (a window fixed on the key-frame box cannot
  follow a box that moved more than +-37.5 % of its size before the next key frame), all boxes of a
  frame in one batched ``PatchMatcher.match`` call. By default (``DEFAULT_CARRIER`` and the
  defaults below) that is the K4 PatchNet, a box whose peak lies on the window's edge is searched
  once more around it, and a confidently matched box blends its template a quarter of the way
  towards its look in this frame; ``template_update=0, edge_follow=0`` with
  ``matcher=create_model("patchnet", pretrained=True)`` is the paper's carrier. ``hold`` repeats
  the key-frame boxes; ``kcf`` and ``mosse`` run one OpenCV tracker per box, initialised and
  primed on the key frame.
* **Frame boundary**: ``boundary="clip"`` clips the returned boxes to the frame and drops a box once
  nothing of it is left inside; ``boundary="drop"`` drops a box as soon as its centre leaves the
  frame (the paper's "unless they exceed the frame boundary") and clips the others. A dropped box
  stays dropped until the next key frame.
* **Key-frame policy**: ``"fixed"`` -- the detector on every ``key_frame_interval``-th frame.
  ``"adaptive"`` -- at most every ``key_frame_interval`` frames, and sooner when the scene changes
  (mean absolute difference of small grey thumbnails of the key frame and this frame above
  ``scene_change``, checked before any propagation) or when the share of propagated boxes whose
  PatchNet confidence is below ``conf_threshold`` exceeds ``max_low_share`` (the propagation of
  this frame is then discarded and the detector runs on it).
* **Look-ahead** (``lookahead=True``, for video files and other offline work): ``process`` holds
  the frames after a key frame until the next key frame has run, then gives every frame the boxes
  of the *nearer* key frame: the first half of the gap is carried forwards as above, the second
  half backwards from the next key frame (a tie goes to the earlier one). The detector runs on the
  same key frames and, with the fixed policy, no frame is carried twice, so the cost is the same
  while no box is carried further than half the interval. The price is latency: a frame comes out
  once the next key frame (or the end of the video) has been read. With the adaptive policy every
  frame is still carried forwards first (the policy needs its confidence), and the second half is
  carried again, backwards, once the next key frame is known.

* **Track ids** (``track_ids=True``): a carried box keeps the id of the key-frame detection it came
  from, and a key frame's detections take the ids of the carried boxes they overlap
  (``accel.track_ids.KeyFrameIdentities``), carried into the key frame first. With look-ahead the
  ids are settled where the two carries meet: in the first frame carried backwards, against the
  forward boxes carried into it as well.

The detection package never imports OpenCV at module level, and neither does this module; the
OpenCV trackers load when ``inter`` is ``kcf`` / ``mosse``.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ..detection.adapters import adapt_detector
from ..detection.detections import Detections
from .track_ids import KeyFrameIdentities

__all__ = ["SkipFrameDetector", "accelerate_detector", "DETECTION_INTER_METHODS", "POLICIES", "BOUNDARY_MODES",
           "DEFAULT_CARRIER", "DEFAULT_EDGE_FOLLOW", "DEFAULT_TEMPLATE_UPDATE", "DEFAULT_UPDATE_MIN_CONFIDENCE"]

logger = logging.getLogger(__name__)

DETECTION_INTER_METHODS = ("patchnet", "hold", "kcf", "mosse")
POLICIES = ("fixed", "adaptive")
BOUNDARY_MODES = ("clip", "drop")
_THUMB_WIDTH = 64

#: The PatchNet that carries boxes when no ``matcher`` is given, and how it is run: the K4 model
#: (4x4-pixel patches, about half the paper's cost per box), one more search for a peak on the
#: window's edge, and confident matches blending their template towards the current frame. Chosen
#: on the MOT sequences of the detection benchmark, where it beats the paper's carrier (K = 8, the
#: key-frame template, one search) and KCF at N = 3, 5 and 8 (docs/design.md, "The default carrier").
DEFAULT_CARRIER = "patchnet_k4"
DEFAULT_EDGE_FOLLOW = 1
DEFAULT_TEMPLATE_UPDATE = 0.25
DEFAULT_UPDATE_MIN_CONFIDENCE = 0.6


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    """A small grey float32 image (about 64 px wide, strided) for the scene-change test."""
    step = max(1, frame.shape[1] // _THUMB_WIDTH)
    small = frame[::step, ::step].astype(np.float32)
    return small.mean(2) if small.ndim == 3 else small


class SkipFrameDetector:
    """A detector on key frames, PatchNet (or ``hold`` / ``kcf`` / ``mosse``) in between.

    Args:
        detector: anything ``detection.adapt_detector`` accepts (a ``Detector``, an effdet bench, a
            torchvision model, an ONNX model, a spec string such as ``"fastestdet"``, a callable).
        key_frame_interval: frames from one key frame to the next (``"adaptive"``: the most).
        policy: ``"fixed"`` or ``"adaptive"`` (see the module docstring).
        inter: ``"patchnet"``, ``"hold"``, ``"kcf"`` (KCF with its failure gate off, primed) or ``"mosse"``.
        matcher: a ``PatchMatcher`` (used as it is, but for ``response_size``) or a ``PatchNet``
            (default: the pretrained ``DEFAULT_CARRIER``, loaded on first use).
        response_size: PatchNet's search extent in response cells (odd; default the model's 7 = the
            paper's window, 1.86x the box).
        boundary: ``"clip"`` or ``"drop"``.
        size_damping: PatchNet's size update per frame, ``s = 1 - d + d * new / old`` per axis
            (``None`` takes the regressed size as it is).
        conf_threshold, max_low_share, scene_change: the adaptive policy's triggers
            (``scene_change`` is a mean absolute grey difference in 0-255 units; ``None`` = off).
        min_size: smallest width/height (pixels) a propagated box may shrink to.
        edge_follow: more searches for a box whose score peak lies on the edge of its window
            (``PatchMatcher(edge_follow=...)``), for a ``matcher`` given as a ``PatchNet`` or left to
            the default; a given ``PatchMatcher`` keeps its own.
        template_update: online template update rate ``u`` (PatchNet only): after an inter frame, every
            box matched with confidence >= ``update_min_confidence`` gets the template
            ``(1 - u) * template + u * encode(frame, new box)`` (``PatchMatcher.blend``); 0 keeps the
            key-frame template, as the paper does. Templates are linear correlation filters, so the
            blend is a running average of what the box looked like. It helps where people turn and
            walk (TUD-Campus), and costs one batched encode per inter frame (docs/results/detection.md).
            ``None``: ``DEFAULT_TEMPLATE_UPDATE`` for PatchNet, 0 for the other methods.
        update_min_confidence: the confidence a match needs to update its template.
        lookahead: carry each frame's boxes from the nearer key frame, the later half of every gap
            backwards (see the module docstring); only ``process`` can do this, since a frame's
            answer waits for the next key frame, so calling the detector frame by frame raises.
        track_ids: give every box a track id (``Detections.track_ids``): a carried box keeps the id
            of the key-frame detection it came from, and a key frame's detections take the ids of
            the carried boxes they overlap (``accel.track_ids.KeyFrameIdentities``; ``True`` = its
            defaults, or pass one configured). ``False``: every id is -1.

    Attributes:
        last_was_key: whether the last frame was a key frame (frame-by-frame calls).
        last_confidence: per returned box, the inter-frame confidence (NaN on key frames and for hold;
            frame-by-frame calls).
        key_frame_indices: the 0-based indices of this video's key frames so far (also with
            look-ahead, where a frame's answer comes out after the frame was read).
    """

    def __init__(self, detector, key_frame_interval: int = 5, policy: str = "fixed", inter: str = "patchnet",
                 matcher=None, response_size: int | None = None, boundary: str = "clip",
                 size_damping: float | None = 0.25, conf_threshold: float = 0.5, max_low_share: float = 0.5,
                 scene_change: float | None = 30.0, min_size: float = 2.0,
                 edge_follow: int = DEFAULT_EDGE_FOLLOW, template_update: float | None = None,
                 update_min_confidence: float = DEFAULT_UPDATE_MIN_CONFIDENCE, lookahead: bool = False,
                 track_ids=False):
        if isinstance(key_frame_interval, bool) or int(key_frame_interval) != key_frame_interval \
                or key_frame_interval < 1:
            raise ValueError(f"key_frame_interval must be an integer >= 1, got {key_frame_interval!r}")
        policy = str(policy).strip().lower()
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        inter = str(inter).strip().lower().replace("_", "-")
        if inter in ("kcf*", "kcf-star"):
            inter = "kcf"
        if inter not in DETECTION_INTER_METHODS:
            raise ValueError(f"inter must be one of {DETECTION_INTER_METHODS}, got {inter!r}")
        if boundary not in BOUNDARY_MODES:
            raise ValueError(f"boundary must be one of {BOUNDARY_MODES}, got {boundary!r}")
        if matcher is not None and inter != "patchnet":
            raise ValueError(f"a matcher is only used by inter='patchnet', not by inter={inter!r}")
        if response_size is not None and (int(response_size) != response_size or response_size < 1
                                          or response_size % 2 == 0):
            raise ValueError(f"response_size must be an odd positive integer, got {response_size!r}")
        if size_damping is not None and not 0.0 <= float(size_damping) <= 1.0:
            raise ValueError(f"size_damping must be in [0, 1] or None, got {size_damping!r}")
        if not 0.0 <= float(max_low_share) <= 1.0:
            raise ValueError(f"max_low_share must be in [0, 1], got {max_low_share!r}")
        if template_update is None:
            template_update = DEFAULT_TEMPLATE_UPDATE if inter == "patchnet" else 0.0
        if not 0.0 <= float(template_update) <= 1.0:
            raise ValueError(f"template_update must be in [0, 1], got {template_update!r}")
        if template_update and inter != "patchnet":
            raise ValueError(f"template_update is PatchNet's, not inter={inter!r}'s")
        self.detector = adapt_detector(detector)
        self.key_frame_interval = int(key_frame_interval)
        self.policy = policy
        self.inter = inter
        self.response_size = None if response_size is None else int(response_size)
        self.boundary = boundary
        self.size_damping = None if size_damping is None else float(size_damping)
        self.conf_threshold = float(conf_threshold)
        self.max_low_share = float(max_low_share)
        self.scene_change = None if scene_change is None else float(scene_change)
        self.min_size = float(min_size)
        if isinstance(edge_follow, bool) or not isinstance(edge_follow, int) or edge_follow < 0:
            raise ValueError(f"edge_follow must be an integer >= 0, got {edge_follow!r}")
        self.edge_follow = edge_follow
        self.template_update = float(template_update)
        self.update_min_confidence = float(update_min_confidence)
        if not isinstance(lookahead, bool):
            raise TypeError(f"lookahead must be True or False, got {lookahead!r}")
        self.lookahead = lookahead
        if isinstance(track_ids, KeyFrameIdentities):
            self.identities = track_ids
        elif isinstance(track_ids, bool):
            self.identities = KeyFrameIdentities() if track_ids else None
        else:
            raise TypeError(f"track_ids must be True, False or a KeyFrameIdentities, got {track_ids!r}")
        self._matcher_arg = matcher
        self._matcher = None
        self.name = f"{getattr(self.detector, 'name', 'detector')}+{inter}@{self.key_frame_interval}" + (
            "a" if policy == "adaptive" else "") + ("+lookahead" if lookahead else "")
        self.reset()

    # ---------------------------------------------------------------------------------- state
    def reset(self) -> None:
        """Forget every box, template and tracker, and zero the statistics: call it at the start of
        each video (the next frame is a key frame)."""
        self._key: Detections | None = None  # the key-frame detections still carried
        if self.identities is not None:
            self.identities.reset()
        self._id_state = None  # the identities before the last key frame's association (look-ahead)
        self._est_frame = -1  # the frame (count of frames seen) the carried estimates are for
        self._forward = None  # look-ahead: the forward carry when the key frame ran (see _meet)
        self._est: np.ndarray | None = None  # (N, 4) float64 x,y,w,h, unclipped estimates
        self._templates = None
        self._trackers: list = []
        self._thumb: np.ndarray | None = None
        self._since_key = 0
        self._hw: tuple[int, int] | None = None
        self.last_was_key = False
        self.last_confidence = np.zeros(0, np.float32)
        self.key_frame_indices: list[int] = []
        self.reset_stats()

    def reset_stats(self) -> None:
        """Zero the statistics only (the boxes being carried are kept)."""
        self._stats = {"frames": 0, "key_frames": 0, "detector_s": 0.0, "propagation_s": 0.0,
                       "boxes_propagated": 0, "boxes_dropped": 0, "forced_by_confidence": 0,
                       "forced_by_scene_change": 0}

    @property
    def stats(self) -> dict:
        """``frames``, ``key_frames``, ``key_frame_ratio`` (key frames / frames), ``detector_s``
        (seconds in the detector), ``propagation_s`` (seconds carrying boxes: template encoding or
        tracker set-up on key frames, matching on inter frames), ``boxes_propagated`` (box-frames
        carried), ``boxes_dropped`` (boxes that left the frame), ``forced_by_confidence`` and
        ``forced_by_scene_change`` (early key frames of the adaptive policy)."""
        s = dict(self._stats)
        s["key_frame_ratio"] = s["key_frames"] / s["frames"] if s["frames"] else float("nan")
        return s

    @property
    def gflops_per_frame(self) -> float | None:
        """The detector's cost per key frame (the per-frame average depends on the key-frame rate)."""
        return getattr(self.detector, "gflops_per_frame", None)

    @property
    def matcher(self):
        """The ``PatchMatcher`` of ``inter="patchnet"`` (built, or loaded, on first use)."""
        if self.inter != "patchnet":
            return None
        if self._matcher is None:
            from ..matching import PatchMatcher

            m = self._matcher_arg
            if m is None:
                from ..trackers.patchnet_tracker import load_pretrained_patchnet

                m = load_pretrained_patchnet(DEFAULT_CARRIER)
            if isinstance(m, PatchMatcher):
                m = m.with_response_size(self.response_size)
            else:
                m = PatchMatcher(m, min_size=self.min_size, response_size=self.response_size,
                                 edge_follow=self.edge_follow)
            self._matcher = m
        return self._matcher

    # ------------------------------------------------------------------------------------ API
    def __call__(self, frame) -> Detections:
        """Detections of ``frame`` (RGB HxWx3 uint8): the detector's on a key frame, carried otherwise."""
        if self.lookahead:
            raise RuntimeError("lookahead=True gives a frame the boxes of the next key frame, which is not read yet: "
                               "use process(frames), or lookahead=False to call the detector frame by frame")
        return self._step(self._accept(frame))

    def process(self, frames, progress: bool = False, total: int | None = None, desc: str = "detecting"):
        """Yield ``Detections`` for each frame of an iterable, in order (``reset()`` first: one video).
        With ``lookahead`` the frames after a key frame come out once the next key frame has run."""
        from tqdm.auto import tqdm

        self.reset()
        frames = tqdm(frames, total=total, desc=desc, unit="frame", disable=not progress, leave=False)
        if self.lookahead:
            yield from self._process_lookahead(frames)
            return
        for frame in frames:
            yield self(frame)

    def _accept(self, frame) -> np.ndarray:
        """Check one frame of the video and count it."""
        from ..detection.adapters import check_frame

        frame = check_frame(frame)
        hw = frame.shape[:2]
        if self._hw is not None and hw != self._hw:
            raise ValueError(f"frame size changed from {self._hw} to {hw} within a video; call reset() "
                             "between videos")
        self._hw = hw
        self._stats["frames"] += 1
        return frame

    def _step(self, frame: np.ndarray) -> Detections:
        """One frame, carried forwards: a key frame when due, else the carried boxes (the adaptive
        policy may turn it into a key frame)."""
        first = self._key is None
        self._since_key += 1
        if first or self._since_key >= self.key_frame_interval:
            return self._key_frame(frame)
        thumb = None
        if self.policy == "adaptive" and self.scene_change is not None:
            thumb = _thumbnail(frame)
            if self._thumb is not None and float(np.abs(thumb - self._thumb).mean()) > self.scene_change:
                self._stats["forced_by_scene_change"] += 1
                return self._key_frame(frame, thumb)
        out = self._inter_frame(frame)
        if self.policy == "adaptive" and len(self.last_confidence):
            low = float(np.mean(self.last_confidence < self.conf_threshold))
            if low > self.max_low_share:
                self._stats["forced_by_confidence"] += 1
                return self._key_frame(frame, thumb)
        return out

    def _process_lookahead(self, frames):
        """``process`` with look-ahead: hold the frames of a gap until its closing key frame has run."""
        pending: list[list] = []  # [frame, Detections or None (not carried yet)] since the last key frame
        half = self.key_frame_interval // 2  # fixed policy: frames carried forwards in a full gap
        for frame in frames:
            frame = self._accept(frame)
            due = self._key is None or self._since_key + 1 >= self.key_frame_interval
            if self.policy == "fixed" and not due:
                self._since_key += 1
                # the second half of the gap waits for the next key frame, uncarried
                pending.append([frame, self._inter_frame(frame) if len(pending) < half else None])
                continue
            out = self._step(frame)
            if not self.last_was_key:  # adaptive policy: carried forwards, may be carried again
                pending.append([frame, out])
                continue
            relabel = self._carry_back(frame, pending)
            if relabel is not None:
                out = relabel(out)
            yield from (d for _, d in pending)
            pending = []
            yield out
        # the video ended before the next key frame: the rest is carried forwards (from where the
        # forward carry stopped, so each frame still follows its predecessor)
        for slot in pending:
            if slot[1] is None:
                slot[1] = self._inter_frame(slot[0])
            yield slot[1]

    def _carry_back(self, key_frame: np.ndarray, pending: list[list]):
        """Carry the key frame just run backwards over the later half of the gap before it (the
        frames nearer to it than to the previous key frame), replacing their answers; then restore
        the state that carries its boxes forwards. With track ids, returns the function that gives
        the key frame's detections their final ids (see ``_meet``), else ``None``."""
        gap = len(pending) + 1  # frames from the previous key frame to this one
        later = [slot for i, slot in enumerate(pending) if gap - 1 - i < i + 1]
        if not later:
            return None
        last_was_key, last_confidence = self.last_was_key, self.last_confidence
        saved = (self._key, self._est, self._templates)
        for slot in reversed(later):
            slot[1] = self._inter_frame(slot[0])
        self._key, self._est, self._templates = saved
        if self.inter in ("kcf", "mosse") and len(self._key):  # they learn as they go: start afresh
            t0 = time.perf_counter()
            self._start_inter(key_frame)
            self._stats["propagation_s"] += time.perf_counter() - t0
        self.last_was_key, self.last_confidence = last_was_key, last_confidence
        earlier = pending[: len(pending) - len(later)]
        if self.identities is None or self._id_state is None or not earlier:
            return None
        return self._meet(earlier[-1][1], later)

    def _meet(self, forward: Detections, later: list[list]):
        """Associate where the two carries meet. The key frame's ids were first given against the
        forward carry as it stood half a gap before; done again in the first frame carried
        backwards, the association sees the boxes where they are: the forward boxes carried into
        that frame too (fixed policy), and where they were one frame before (as on a key frame
        without look-ahead: the larger overlap counts). Relabels the backward-carried frames and
        the carried state."""
        key = self._key
        first = later[0][1]
        # each key-frame box where it is in the first backward-carried frame, else where it was detected
        at_meeting = np.array([first.boxes[first.track_ids == t][0] if (first.track_ids == t).any() else b
                               for b, t in zip(key.boxes, key.track_ids)], np.float32).reshape(-1, 4)
        carried, before = forward, None
        if self._forward is not None and len(self._forward[0]):
            carried, before = self._forward_into(later[0][0]), forward
        self.identities.restore(self._id_state)
        final = self.identities.assign(Detections(at_meeting, key.scores, key.class_ids, False), carried, before)
        mapping = dict(zip(key.track_ids.tolist(), final.track_ids.tolist()))

        def relabel(d: Detections) -> Detections:
            return d.with_track_ids([mapping.get(t, t) for t in d.track_ids.tolist()])

        for slot in later:
            slot[1] = relabel(slot[1])
        self._key = relabel(self._key)
        return relabel

    def _forward_into(self, frame: np.ndarray) -> Detections:
        """The forward carry saved before the key frame ran, carried one frame further (into
        ``frame``); the key frame's state is put back afterwards."""
        state = (self._key, self._est, self._templates, self._trackers, self.last_was_key,
                 self.last_confidence, self._est_frame)
        self._key, self._est, self._templates, self._trackers = self._forward
        try:
            self._inter_frame(frame)
            return self._carried()
        finally:
            (self._key, self._est, self._templates, self._trackers, self.last_was_key,
             self.last_confidence, self._est_frame) = state
            self._forward = None

    # -------------------------------------------------------------------------------- key frames
    def _key_frame(self, frame: np.ndarray, thumb: np.ndarray | None = None) -> Detections:
        self._since_key = 0
        self.key_frame_indices.append(self._stats["frames"] - 1)
        self._stats["key_frames"] += 1
        t0 = time.perf_counter()
        det = self.detector(frame)
        self._stats["detector_s"] += time.perf_counter() - t0
        if not isinstance(det, Detections):
            raise TypeError(f"the detector returned {type(det).__name__}, expected Detections (wrap it with "
                            "adapt_detector)")
        det = det.with_key_frame(True)
        if self.identities is not None:
            self._id_state = self.identities.state() if self.lookahead else None
            # look-ahead, fixed policy: the forward carry stands at the last frame carried forwards,
            # where _meet takes it one frame further
            self._forward = (self._key, self._est, self._templates, self._trackers) \
                if self.lookahead and self.policy == "fixed" and self._key is not None else None
            det = self.identities.assign(det, *self._carried_to(frame))
        self._key = det
        self._est = det.xywh.astype(np.float64)
        if self.policy == "adaptive" and self.scene_change is not None:
            self._thumb = thumb if thumb is not None else _thumbnail(frame)
        self.last_was_key = True
        self.last_confidence = np.full(len(det), np.nan, np.float32)
        if self.key_frame_interval > 1 and len(det):
            self.matcher  # load the model outside the clock (once)
            t0 = time.perf_counter()
            self._start_inter(frame)
            self._stats["propagation_s"] += time.perf_counter() - t0
        return det

    def _start_inter(self, frame: np.ndarray) -> None:
        if self.inter == "patchnet":
            import torch

            from ..geometry import to_frame_tensor

            boxes = torch.as_tensor(self._est, dtype=torch.float32)
            self._templates = self.matcher.encode(to_frame_tensor(frame), boxes)
        elif self.inter in ("kcf", "mosse"):
            from ..trackers.opencv_trackers import create_opencv_tracker

            bgr = np.ascontiguousarray(frame[..., ::-1])  # converted once for all boxes
            self._trackers = []
            for box in self._est:
                # the adapter is told its tracker wants "rgb" so it passes our BGR frame through as is
                t = create_opencv_tracker(self.inter, channel_order="rgb")
                try:
                    t.init(bgr, box)
                except Exception as e:  # noqa: BLE001 - OpenCV rejects e.g. boxes mostly outside: hold it
                    logger.debug("%s could not start on box %s: %s", self.inter, box.tolist(), e)
                    t = None
                self._trackers.append(t)

    # ------------------------------------------------------------------------------ inter frames
    def _inter_frame(self, frame: np.ndarray) -> Detections:
        self.last_was_key = False
        self._est_frame = self._stats["frames"]  # the frame the estimates are now for
        n = len(self._key)
        if n == 0:
            self.last_confidence = np.zeros(0, np.float32)
            return Detections.empty()
        t0 = time.perf_counter()
        prev = self._est
        if self.inter == "patchnet":
            new, conf = self._match(frame, prev)
        elif self.inter == "hold":
            new, conf = prev.copy(), np.full(n, np.nan, np.float32)
        else:
            new, conf = self._track(frame, prev)
        self._est = new
        keep = self._inside(new)
        if not keep.all():
            self._drop(~keep)
            conf = conf[keep]
        self._stats["propagation_s"] += time.perf_counter() - t0
        self._stats["boxes_propagated"] += len(self._key)
        out = self._carried()  # returned boxes always lie in the frame
        self.last_confidence = conf.astype(np.float32)
        return out

    def _carried_to(self, frame: np.ndarray) -> tuple[Detections | None, Detections | None]:
        """``(now, before)``: the carried boxes for a key frame's association, carried into that
        frame first, and where they were in the frame before (``None`` when no step was taken: the
        adaptive policy already carried them into this frame before it forced the key frame, or
        look-ahead will settle the ids where the carries meet)."""
        if self._key is None or not len(self._key) or self.key_frame_interval == 1 or self.lookahead \
                or self._est_frame == self._stats["frames"]:
            return self._carried(), None
        before = self._carried()
        self._inter_frame(frame)
        return self._carried(), before

    def _carried(self) -> Detections | None:
        """The carried boxes at their latest estimates, clipped to the frame, with their ids."""
        if self._key is None:
            return None
        out = Detections.from_xywh(self._est, self._key.scores, self._key.class_ids, False, self._key.track_ids)
        return out.clip(self._hw, min_size=1.0)

    def _match(self, frame: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from ..geometry import to_frame_tensor

        f = to_frame_tensor(frame)
        result = self.matcher.match(self._templates, f, torch.as_tensor(prev, dtype=torch.float32))
        new = result.boxes.double().numpy()
        conf = result.confidence.float().numpy().copy()
        bad = ~np.isfinite(new).all(1) | (new[:, 2] <= 0) | (new[:, 3] <= 0) | (conf <= 0)
        if self.size_damping is not None:
            centre = new[:, :2] + new[:, 2:] / 2
            size = prev[:, 2:] * ((1.0 - self.size_damping) + self.size_damping * new[:, 2:] / prev[:, 2:])
            new = np.concatenate([centre - size / 2, size], 1)
        new[bad] = prev[bad]  # nothing found (e.g. a window outside the frame): stay put
        new[:, 2:] = np.maximum(new[:, 2:], self.min_size)
        if self.template_update > 0:
            self._update_templates(f, new, ~bad & (conf >= self.update_min_confidence))
        return new, conf

    def _update_templates(self, f, boxes: np.ndarray, update: np.ndarray) -> None:
        """Blend the templates of the ``update`` boxes towards their look in this frame (``f``: the
        (3, H, W) frame tensor the match used)."""
        if update.any():
            rows = np.flatnonzero(update)
            self._templates = self.matcher.blend(self._templates, f, boxes[rows].astype(np.float32), rows,
                                                 self.template_update)

    def _track(self, frame: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bgr = np.ascontiguousarray(frame[..., ::-1])
        new = prev.copy()
        conf = np.zeros(len(prev), np.float32)
        for i, t in enumerate(self._trackers):
            if t is None:
                continue
            try:
                b = np.asarray(t.update(bgr), dtype=np.float64).reshape(4)
            except Exception as e:  # noqa: BLE001 - an OpenCV error on one box: that box holds
                logger.debug("%s failed on box %d: %s", self.inter, i, e)
                continue
            if np.isfinite(b).all() and b[2] > 0 and b[3] > 0:
                new[i] = b
                conf[i] = 1.0 if getattr(t, "ok", True) else 0.0
        return new, conf

    def _inside(self, est: np.ndarray) -> np.ndarray:
        """Which carried boxes stay: ``drop`` -- centre inside the frame; ``clip`` -- at least one
        pixel of width and height inside."""
        h, w = self._hw
        if self.boundary == "drop":
            cx, cy = est[:, 0] + est[:, 2] / 2, est[:, 1] + est[:, 3] / 2
            return (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        x1, y1 = np.maximum(est[:, 0], 0), np.maximum(est[:, 1], 0)
        x2, y2 = np.minimum(est[:, 0] + est[:, 2], w), np.minimum(est[:, 1] + est[:, 3], h)
        return ((x2 - x1) >= 1.0) & ((y2 - y1) >= 1.0)

    def _drop(self, gone: np.ndarray) -> None:
        keep = ~gone
        self._stats["boxes_dropped"] += int(gone.sum())
        self._key = self._key[keep]
        self._est = self._est[keep]
        if self._templates is not None and self.inter == "patchnet":
            import torch

            self._templates = self._templates.select(torch.as_tensor(keep))
        if self._trackers:
            self._trackers = [t for t, k in zip(self._trackers, keep) if k]

    def __repr__(self) -> str:
        return (f"SkipFrameDetector(detector={getattr(self.detector, 'name', '?')!r}, key_frame_interval="
                f"{self.key_frame_interval}, policy={self.policy!r}, inter={self.inter!r}, boundary={self.boundary!r}, "
                f"template_update={self.template_update})")


def accelerate_detector(detector, key_frame_interval: int = 5, **kwargs) -> SkipFrameDetector:
    """``SkipFrameDetector(adapt_detector(detector), key_frame_interval, **kwargs)``: run ``detector``
    on key frames only and carry its boxes with PatchNet (or ``inter``) in between."""
    return SkipFrameDetector(detector, key_frame_interval=key_frame_interval, **kwargs)
