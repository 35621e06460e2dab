"""Relocate a tracker whose search state is private, by shifting the frame it is shown.

A tracker run on key frames only searches around the position it produced itself, frames ago. A
tracker that can be told where to search (``relocate(box)``: the package's NanoTrack, the gated
tracker, pysot trackers) is told. OpenCV's CSRT, KCF, MOSSE and ``TrackerNano``, and most trackers
of the got10k or pytracking conventions, keep that state to themselves. ``FrameShift`` moves the
*frame* instead: on a key frame it translates the image by whole pixels, so that the target, where
the inter-frame method found it, appears where the tracker last saw it; it hands the shifted frame
to the tracker and shifts the tracker's answer back.

The tracker then lives in coordinates offset from the frame's by the last shift, and ``FrameShift``
keeps that offset: every later frame the tracker sees is shifted into its coordinates, and every
answer is shifted out of them. Only translation is conveyed (the tracker keeps its own size), and
the band the shift uncovers at the frame's edge repeats the edge pixels. ``reset(box)`` after the
tracker's ``init`` returns to the frame's own coordinates.

```python
shift = FrameShift()
tracker.init(frame0, box0); shift.reset(box0)
...                                                   # frames the tracker does not see
seen = shift.frame_for(frame_k, estimate)             # estimate: where the target is now
box_k = shift.answer(tracker.update(seen))            # back in frame_k's coordinates
```
"""
from __future__ import annotations

import numpy as np

__all__ = ["FrameShift", "shift_frame"]


def shift_frame(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``image`` (H x W [x C]) translated by whole pixels: the pixel at ``(x, y)`` moves to
    ``(x + dx, y + dy)``; the uncovered band repeats the nearest edge row or column. A shift of a
    whole frame's size or more leaves only the repeated edge."""
    h, w = image.shape[:2]
    dx = int(min(max(dx, -(w - 1)), w - 1))
    dy = int(min(max(dy, -(h - 1)), h - 1))
    out = np.empty_like(image)
    # the part of the frame that stays in view, in one copy
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[max(-dy, 0):h - max(dy, 0),
                                                                     max(-dx, 0):w - max(dx, 0)]
    # the uncovered bands: rows first (within the columns already filled), then whole columns
    if dy > 0:
        out[:dy, max(dx, 0):w + min(dx, 0)] = out[dy:dy + 1, max(dx, 0):w + min(dx, 0)]
    elif dy < 0:
        out[h + dy:, max(dx, 0):w + min(dx, 0)] = out[h + dy - 1:h + dy, max(dx, 0):w + min(dx, 0)]
    if dx > 0:
        out[:, :dx] = out[:, dx:dx + 1]
    elif dx < 0:
        out[:, w + dx:] = out[:, w + dx - 1:w + dx]
    return out


class FrameShift:
    """The coordinates a privately-stateful tracker lives in, and the frames shifted into them.

    Attributes:
        offset: ``(dx, dy)``, whole pixels: the tracker's coordinates minus the frame's.
    """

    def __init__(self):
        self.offset = np.zeros(2)
        self._seen: np.ndarray | None = None  # the tracker's last box, in its own coordinates
        self._pending = np.zeros(2)

    def reset(self, box) -> None:
        """The tracker was (re-)initialised on ``box``, in the frame's own coordinates."""
        self.offset = np.zeros(2)
        self._pending = np.zeros(2)
        self._seen = np.asarray(box, dtype=np.float64).reshape(4).copy()

    def frame_for(self, image, estimate=None):
        """``image`` (anything ``adapt_tracker``'s trackers take: RGB, gray, RGBA, float, torch) in the
        tracker's coordinates, moved so that a target at ``estimate`` (x, y, w, h in the frame's
        coordinates; ``None``: no estimate) appears where the tracker last saw it. Returns ``image``
        itself where no shift is needed, else a shifted RGB ``HxWx3`` uint8 array."""
        shift = self.offset
        if estimate is not None and self._seen is not None:
            e = np.asarray(estimate, dtype=np.float64).reshape(4)
            if np.isfinite(e).all():
                seen_centre = self._seen[:2] + self._seen[2:] / 2
                shift = np.round(seen_centre - (e[:2] + e[2:] / 2))
        if not np.any(shift):
            self._pending = np.zeros(2)
            return image
        from .tracker_adapters import _prepare_frame

        frame = _prepare_frame(image, "rgb")
        h, w = frame.shape[:2]
        self._pending = np.clip(shift, [-(w - 1), -(h - 1)], [w - 1, h - 1]).astype(np.float64)
        return shift_frame(frame, int(self._pending[0]), int(self._pending[1]))

    def answer(self, box) -> np.ndarray:
        """The tracker's answer to the frame of the last ``frame_for``, in the frame's coordinates.
        A finite answer also becomes where the tracker last saw the target; anything but four
        numbers is returned as it is, for the caller's own checks to report."""
        try:
            b = np.asarray(box, dtype=np.float64).reshape(4).copy()
        except (TypeError, ValueError):
            return box
        if np.isfinite(b).all():
            self._seen = b.copy()
            self.offset = self._pending.copy()
        b[:2] -= self._pending
        return b
