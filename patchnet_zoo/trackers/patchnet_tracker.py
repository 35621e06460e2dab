"""PatchNet on its own as a short-term single-object tracker (got10k convention).

```python
tracker = PatchNetTracker()              # loads the pretrained PatchNet on first use
tracker.init(first_frame, [x, y, w, h])  # RGB frame, 0-based x,y,w,h box
for frame in frames:
    box = tracker.update(frame)          # numpy float64 array of 4, x,y,w,h
    print(box, tracker.confidence)       # 1.0 = one dominant peak
```

What one ``update`` does:

1. the search window is centred on the previous box (``search_update="previous"``) or on a
   constant-velocity prediction (``"velocity"``) and is 119/64 times its size (the paper default);
2. PatchNet matches the current template(s) in it (one batched forward for all templates; one
   template goes through ``PatchMatcher.match_one``, the same numbers without the batch bookkeeping);
3. the centre moves to the match; the size is damped, per axis, as in the original skip-frame
   tracker: ``s = 1 - d + d * new / old`` with ``d = size_damping`` (0.25: ``0.75 + 0.25 * new/old``);
4. the box is kept usable (see *Bad input* below) and stored as the new state.

Template update (``template_update``):

* ``"init"`` -- the template from the ``init`` frame only. Never drifts onto background, but an
  object that turns or deforms is lost once it no longer looks like the first frame.
* ``"confident"`` -- re-encode the template from the latest frame whose confidence reached
  ``update_threshold``. Follows appearance change, but one confident match on background is then
  learned and never left again.
* ``"both"`` (default) -- keep the init template *and* the latest confident one and match both in
  the same batched forward (1.5-2x the time of one template on CPU); the match with the higher
  confidence wins. The init template anchors the tracker to what the user selected and the
  recent one follows the appearance; the recent template is only replaced from a confident frame
  (``update_threshold = 0.8``, the key-frame threshold of the skip-frame scheme). Mean IoU over
  the first 60 frames of the 9 validation clips: init 0.42 / confident 0.30 / both 0.47 with a
  fresh PatchNet, 0.47 / 0.35 / 0.50 with an early training checkpoint -- hence the default.

Bad input (what happens, by design):

* ``init`` rejects NaN/inf boxes, zero or negative width/height and boxes wholly outside the frame
  with a ``ValueError`` that shows the box. A box partly outside the frame is fine: the part
  outside is filled with the model's mean colour.
* Frames may be uint8 or float (0-1 or 0-255), HxW / HxWx1 grayscale, RGB, RGBA (alpha dropped),
  numpy or torch, with any strides. Float frames are rounded to uint8 once, on entry, so a float
  frame and its uint8 version give exactly the same box.
  Frames are RGB: convert OpenCV's BGR before passing them in.
* The frame size may change between frames: the box is kept in the pixel coordinates of each new
  frame (no rescaling -- the tracker cannot know how the frames relate), then kept usable.
* "Usable": after every update the box centre is clamped into the current frame and its width and
  height into ``[min_size, frame size]``, so the next search window always overlaps the frame.
  A track that runs out of the frame therefore stops at the border instead of leaving it. A
  non-finite prediction (never expected) keeps the previous box with confidence 0.
* A search window with no texture (a black or uniform frame, e.g. a fade to black) is not
  matched: its response map is flat, so any decoded "peak" would be arbitrary. The box stays
  where it was, with confidence 0, and no template is learned from it.
* ``update`` before ``init`` raises ``RuntimeError``; a frame with NaN pixels or a wrong shape
  raises ``ValueError``/``TypeError`` (``track_video`` adds the frame index).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ..geometry import as_boxes, check_boxes, to_frame_tensor
from ..matching import PatchMatcher, Templates

__all__ = ["PatchNetTracker", "track_video", "load_pretrained_patchnet"]

SEARCH_UPDATES = ("previous", "velocity")
TEMPLATE_UPDATES = ("init", "confident", "both")


def load_pretrained_patchnet(name: str = "patchnet"):
    """``create_model(name, pretrained=True)`` with a clear message when it cannot be done."""
    hint = ("pass a model instead, e.g. PatchNetTracker(model=PatchNet.from_pretrained(folder)) "
            "or PatchNetTracker(model=PatchNet()) for an untrained patch-correlation matcher")
    try:
        from ..registry import create_model
    except ImportError as e:
        raise ImportError(f"cannot load the pretrained PatchNet: patchnet_zoo.registry is not "
                          f"available ({e}); {hint}") from e
    try:
        return create_model(name, pretrained=True)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"no pretrained weights for {name!r} could be found ({e}); {hint}") from e
    except OSError as e:  # download failures without a local file
        raise OSError(f"the pretrained weights for {name!r} could not be loaded ({e}); {hint}") from e


def _frame_hw(frame: torch.Tensor) -> tuple[int, int]:
    return int(frame.shape[1]), int(frame.shape[2])


def _as_frame(image) -> torch.Tensor:
    """(3, H, W) uint8. Float frames (0-1 or 0-255) are rounded to uint8 here, once: a float frame
    then gives exactly the box its uint8 version gives, and the matcher never has to guess the
    scale of an already converted (possibly very dark) float frame a second time."""
    frame = to_frame_tensor(image)
    if frame.dtype != torch.uint8:
        frame = frame.clamp(0, 255).round().to(torch.uint8)
    return frame


class PatchNetTracker:
    """Single-object tracker made of PatchNet alone: ``init(image, box)`` / ``update(image) -> box``.

    Args:
        model: a ``PatchNet`` or a ``PatchMatcher``; ``None`` loads
            ``create_model("patchnet", pretrained=True)`` on first use.
        search_update: where the next search window is centred: ``"previous"`` (the last box, the
            paper's scheme) or ``"velocity"`` (the last box moved by the last displacement).
        size_damping: ``d`` in ``s = 1 - d + d * new / old`` (0 freezes the size, 1 takes the
            regressed size as is); 0.25 is the original tracker's value.
        template_update: ``"init"``, ``"confident"`` or ``"both"`` (default); see the module doc.
        update_threshold: the confidence a frame needs before its box becomes the new template.
        min_size: smallest width/height (pixels) the box may take (as ``PatchMatcher``'s).
    """

    def __init__(
        self,
        model=None,
        search_update: str = "previous",
        size_damping: float = 0.25,
        template_update: str = "both",
        update_threshold: float = 0.8,
        min_size: float = 2.0,
    ):
        if search_update not in SEARCH_UPDATES:
            raise ValueError(f"search_update must be one of {SEARCH_UPDATES}, got {search_update!r}")
        if template_update not in TEMPLATE_UPDATES:
            raise ValueError(f"template_update must be one of {TEMPLATE_UPDATES}, got {template_update!r}")
        if not 0.0 <= size_damping <= 1.0:
            raise ValueError(f"size_damping must be in [0, 1], got {size_damping}")
        self._model = model
        self._matcher: PatchMatcher | None = model if isinstance(model, PatchMatcher) else None
        self.search_update = search_update
        self.size_damping = float(size_damping)
        self.template_update = template_update
        self.update_threshold = float(update_threshold)
        self.min_size = float(min_size)
        self.name = "PatchNet"
        self.is_deterministic = True
        self.reset()

    # ------------------------------------------------------------------------------------- state
    def reset(self) -> None:
        self.box: np.ndarray | None = None
        self.confidence: float = float("nan")
        self.frame_index = -1
        self._init_templates: Templates | None = None
        self._recent_templates: Templates | None = None
        self._velocity = np.zeros(2)

    @property
    def matcher(self) -> PatchMatcher:
        if self._matcher is None:
            model = self._model if self._model is not None else load_pretrained_patchnet()
            self._matcher = PatchMatcher(model)
        return self._matcher

    @property
    def model(self):
        return self.matcher.model

    # ---------------------------------------------------------------------------------- got10k API
    def init(self, image, box) -> None:
        """Start tracking ``box`` (x,y,w,h, 0-based pixels) in ``image`` (RGB)."""
        b = as_boxes(box, torch.float64)
        if b.shape[0] != 1:
            raise ValueError(f"init takes one box x,y,w,h; got {b.shape[0]} boxes")
        frame = _as_frame(image)
        check_boxes(b, _frame_hw(frame), what="init box")
        matcher = self.matcher  # loads the model now, so a missing model fails at init
        self.reset()
        self._init_templates = matcher.encode(frame, b.float())
        self.box = b[0].numpy().astype(np.float64)
        self.confidence = 1.0
        self.frame_index = 0

    def update(self, image) -> np.ndarray:
        """Track into ``image``; returns the new box (x,y,w,h float64) and sets ``.confidence``."""
        if self.box is None or self._init_templates is None:
            raise RuntimeError("call init(image, box) before update(image)")
        frame = _as_frame(image)
        hw = _frame_hw(frame)
        prev = self._usable(self.box, hw)
        search = prev.copy()
        if self.search_update == "velocity":
            search[:2] += self._velocity
            search = self._usable(search, hw)
        templates = [self._init_templates]
        if self.template_update != "init" and self._recent_templates is not None:
            templates = [self._recent_templates] if self.template_update == "confident" else \
                [self._init_templates, self._recent_templates]
        joined = templates[0] if len(templates) == 1 else Templates(
            torch.cat([t.filters for t in templates]), torch.cat([t.boxes for t in templates]))
        if self._textureless(frame, search):
            # nothing to match (a black or uniform frame, e.g. a fade): the response map would be
            # flat and its decoded "peak" meaningless, so the box stays and confidence is 0
            new, confidence = prev.copy(), 0.0
        elif len(templates) == 1:  # one template: the one-box call, without the batch bookkeeping
            found, confidence, _ = self.matcher.match_one(joined, frame, search)
            new = np.asarray(found, dtype=np.float64)
        else:
            sb = torch.as_tensor(search, dtype=torch.float32).view(1, 4).expand(len(templates), 4)
            result = self.matcher.match(joined, frame, sb.contiguous())
            conf = result.confidence.double().numpy()
            best = int(np.argmax(conf))  # ties: the init template (listed first) wins
            new = result.boxes[best].double().numpy()
            confidence = float(conf[best])
        if not np.isfinite(new).all() or not np.isfinite(confidence):
            new, confidence = prev.copy(), 0.0
        elif confidence == 0.0:
            new = prev.copy()
        else:
            new = self._damp(search, new)
        new = self._usable(new, hw)
        self._velocity = (new[:2] + new[2:] / 2) - (prev[:2] + prev[2:] / 2)
        self.box, self.confidence = new, confidence
        self.frame_index += 1
        if self.template_update != "init" and confidence >= self.update_threshold:
            # re-encode from this frame (cheap: one 64x64 crop); frames with the box partly
            # outside are fine, the outside part is mean-filled
            self._recent_templates = self.matcher.encode(frame, torch.as_tensor(new, dtype=torch.float32))
        return new.copy()

    # ---------------------------------------------------------------------------------- helpers
    def _damp(self, search: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Centre from the match, size damped towards the search box size, per axis."""
        centre = new[:2] + new[2:] / 2
        old = search[2:]
        d = self.size_damping
        size = old * ((1.0 - d) + d * new[2:] / old)
        return np.concatenate([centre - size / 2, size])

    def _textureless(self, frame: torch.Tensor, search: np.ndarray) -> bool:
        """Whether the part of the search window inside the frame holds a single colour."""
        h, w = _frame_hw(frame)
        centre, half = search[:2] + search[2:] / 2, search[2:] * self.matcher.search_scale / 2
        x0, y0 = (max(0, int(np.floor(v))) for v in centre - half)
        x1, y1 = int(min(w, np.ceil(centre[0] + half[0]))), int(min(h, np.ceil(centre[1] + half[1])))
        if x1 <= x0 or y1 <= y0:
            return True
        roi = frame[:, y0:y1, x0:x1].reshape(3, -1)
        return bool((roi.amax(1) == roi.amin(1)).all())

    def _usable(self, box: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        """Centre clamped into the frame, size into [min_size, frame size]: the search window then
        always overlaps the frame, also after a frame-size change or a drift out of the frame."""
        h, w = hw
        box = np.asarray(box, dtype=np.float64)
        size = np.clip(box[2:], self.min_size, np.array([max(w, self.min_size), max(h, self.min_size)]))
        centre = box[:2] + box[2:] / 2
        centre = np.clip(centre, 0.0, np.array([w - 1e-3, h - 1e-3]))
        return np.concatenate([centre - size / 2, size])

    def track(self, frames: Iterable, box, show_progress: bool = False):
        """got10k-style: ``(boxes (T, 4), confidences (T,))`` over ``frames`` starting at ``box``."""
        return track_video(frames, box, self, show_progress=show_progress)


# ------------------------------------------------------------------------------------ whole videos
def _frame_source(path_or_frames) -> tuple[Iterable, int | None, str]:
    if isinstance(path_or_frames, (str, Path)):
        from ..data.readers import iter_video

        path = Path(path_or_frames)
        if not path.exists():
            raise FileNotFoundError(f"no video file at {path}")
        total = None
        try:
            import cv2

            cap = cv2.VideoCapture(str(path))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # a hint for the progress bar only
            cap.release()
            total = n if n > 0 else None
        except Exception:  # noqa: BLE001 - the count is cosmetic
            total = None
        return iter_video(path), total, path.name
    if hasattr(path_or_frames, "frame") and hasattr(path_or_frames, "num_frames"):  # data.readers.Sequence
        seq = path_or_frames
        return (seq.frame(i) for i in range(len(seq))), len(seq), getattr(seq, "name", "sequence")
    if isinstance(path_or_frames, np.ndarray) and path_or_frames.ndim == 4:
        return iter(path_or_frames), len(path_or_frames), "frames"
    total = len(path_or_frames) if hasattr(path_or_frames, "__len__") else None
    return iter(path_or_frames), total, "frames"


def track_video(
    path_or_frames,
    init_box,
    tracker: PatchNetTracker | None = None,
    show_progress: bool = True,
    on_bad_frame: str = "raise",
    max_frames: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Track ``init_box`` (x,y,w,h in frame 0) through a video file or any iterable of RGB frames.

    Args:
        path_or_frames: a video file OpenCV can decode (``.mpg``, ``.mp4``, ``.avi``, ...), a
            ``data.readers.Sequence``, a (T, H, W, C) array or any iterable of frames.
        init_box: the target in the first frame.
        tracker: any object with ``init(image, box)`` / ``update(image)`` (default: a
            ``PatchNetTracker`` with the pretrained PatchNet).
        show_progress: show a tqdm progress bar.
        on_bad_frame: ``"raise"`` (a ``ValueError`` naming the frame index) or ``"keep"`` (keep the
            previous box with confidence 0 and warn) for a frame the tracker cannot read.
        max_frames: stop after this many frames (the rest of the video is not decoded).

    Returns:
        ``boxes`` (T, 4) float64 with ``boxes[0] = init_box``, and ``confidences`` (T,) with
        ``confidences[0] = 1``. A missing file raises ``FileNotFoundError``; a file that cannot be
        decoded raises ``OSError`` naming the path, before any tracking is done.
    """
    if on_bad_frame not in ("raise", "keep"):
        raise ValueError(f"on_bad_frame must be 'raise' or 'keep', got {on_bad_frame!r}")
    tracker = tracker if tracker is not None else PatchNetTracker()
    frames, total, name = _frame_source(path_or_frames)
    if max_frames is not None:
        if max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        total = max_frames if total is None else min(total, max_frames)
    from tqdm.auto import tqdm

    boxes: list[np.ndarray] = []
    confs: list[float] = []
    bar = tqdm(total=total, desc=f"tracking {name}", unit="frame", disable=not show_progress, leave=False)
    try:
        for i, frame in enumerate(frames):
            if max_frames is not None and i >= max_frames:
                break
            if i == 0:
                tracker.init(frame, init_box)
                boxes.append(np.asarray(as_boxes(init_box, torch.float64)[0].numpy(), dtype=np.float64))
                confs.append(1.0)
            else:
                try:
                    box = np.asarray(tracker.update(frame), dtype=np.float64).reshape(4)
                    conf = float(getattr(tracker, "confidence", float("nan")))
                except (ValueError, TypeError) as e:
                    if on_bad_frame == "raise":
                        raise ValueError(f"frame {i} of {name}: {e}") from e
                    warnings.warn(f"frame {i} of {name} skipped ({e}); keeping the previous box", stacklevel=2)
                    box, conf = boxes[-1].copy(), 0.0
                boxes.append(box)
                confs.append(conf)
            bar.update(1)
    finally:
        bar.close()
        close = getattr(frames, "close", None)  # release a video file at once when stopped early
        if close is not None:
            close()
    if not boxes:
        raise ValueError(f"{name} has no frames")
    return np.stack(boxes), np.asarray(confs, dtype=np.float64)
