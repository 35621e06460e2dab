"""Draw boxes on RGB frames, key-frame boxes and propagated boxes styled apart.

* key frame (the base model / ground truth ran here): solid, thick, green;
* propagated (PatchNet carried the box here): dashed, thinner, orange.

Frames go in and come out RGB (``uint8``, HxWx3); the input is never modified. Boxes are
``x, y, w, h`` 0-based pixels; rows with NaN (absent target) are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

__all__ = ["BoxStyle", "KEY_STYLE", "PROPAGATED_STYLE", "GT_STYLE", "draw_boxes", "draw_text", "as_rgb_uint8"]


@dataclass(frozen=True)
class BoxStyle:
    color: tuple[int, int, int]  # RGB
    thickness: int
    dashed: bool
    dash: int = 8  # dash and gap length in pixels (dashed styles)
    gap: int = 6


KEY_STYLE = BoxStyle(color=(0, 220, 0), thickness=3, dashed=False)
PROPAGATED_STYLE = BoxStyle(color=(255, 140, 0), thickness=2, dashed=True)
GT_STYLE = BoxStyle(color=(255, 255, 255), thickness=1, dashed=False)

_LIMIT = 1 << 15  # keep far-away coordinates inside OpenCV's int range


def as_rgb_uint8(frame) -> np.ndarray:
    """Any frame ``geometry.to_frame_tensor`` accepts as a new contiguous HxWx3 uint8 RGB array."""
    from ..geometry import to_frame_tensor

    t = to_frame_tensor(frame)
    if t.dtype.is_floating_point:
        t = t.clamp(0, 255).round()
    return np.ascontiguousarray(t.permute(1, 2, 0).to("cpu").numpy().astype(np.uint8))


def _corners(box) -> tuple[int, int, int, int] | None:
    x, y, w, h = (float(v) for v in box)
    if not all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
        return None
    clip = lambda v: int(max(-_LIMIT, min(_LIMIT, round(v))))  # noqa: E731
    # the box covers [x, x + w): its last pixel column is x + w - 1
    return clip(x), clip(y), clip(x + w - 1), clip(y + h - 1)


def _dashed_line(img, p0, p1, color, thickness, dash, gap) -> None:
    import cv2

    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    length = float(np.hypot(*(p1 - p0)))
    if length < 1:
        cv2.line(img, tuple(map(int, p0)), tuple(map(int, p1)), color, thickness, cv2.LINE_8)
        return
    direction = (p1 - p0) / length
    pos = 0.0
    while pos < length:
        end = min(pos + dash, length)
        a, b = p0 + direction * pos, p0 + direction * end
        cv2.line(img, (int(round(a[0])), int(round(a[1]))), (int(round(b[0])), int(round(b[1]))),
                 color, thickness, cv2.LINE_8)
        pos += dash + gap


def _rectangle(img, corners, style: BoxStyle) -> None:
    import cv2

    x0, y0, x1, y1 = corners
    color = tuple(int(c) for c in style.color)
    if not style.dashed:
        cv2.rectangle(img, (x0, y0), (x1, y1), color, style.thickness, cv2.LINE_8)
        return
    h, w = img.shape[:2]
    # only the visible part of each edge is dashed (a box far outside costs nothing)
    cx0, cx1 = max(x0, -style.thickness), min(x1, w + style.thickness)
    cy0, cy1 = max(y0, -style.thickness), min(y1, h + style.thickness)
    if cx0 > cx1 or cy0 > cy1:
        return
    for a, b in (((cx0, y0), (cx1, y0)), ((cx0, y1), (cx1, y1)), ((x0, cy0), (x0, cy1)), ((x1, cy0), (x1, cy1))):
        _dashed_line(img, a, b, color, style.thickness, style.dash, style.gap)


def draw_text(img: np.ndarray, text: str, org: tuple[int, int] = (4, 4), color=(255, 255, 255),
              background=(0, 0, 0), scale: float = 0.45) -> np.ndarray:
    """Write ``text`` in place on ``img`` (RGB uint8) with its top-left corner at ``org``, on a
    filled background so it stays readable on any frame. Returns ``img``."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    h, w = img.shape[:2]
    x = int(min(max(org[0], 0), max(w - tw - 2, 0)))
    y = int(min(max(org[1], 0), max(h - th - base - 2, 0)))
    if background is not None:
        cv2.rectangle(img, (x, y), (x + tw + 2, y + th + base + 2), tuple(int(c) for c in background), -1)
    cv2.putText(img, text, (x + 1, y + th + 1), font, scale, tuple(int(c) for c in color), 1, cv2.LINE_AA)
    return img


def draw_boxes(
    frame,
    boxes,
    labels: Sequence[str] | None = None,
    key_frame: bool | Sequence[bool] = False,
    style: BoxStyle | None = None,
    color: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """A copy of ``frame`` (RGB) with ``boxes`` (x,y,w,h; one box or (N, 4)) drawn on it.

    Args:
        labels: one text per box, written above it (``None`` entries are skipped).
        key_frame: whether the boxes come from a key frame (solid, thick, green) or were propagated
            (dashed, thinner, orange); one bool for all boxes or one per box.
        style: draw every box in this ``BoxStyle`` instead (e.g. ``GT_STYLE``).
        color: override the colour of the chosen style (RGB).

    Returns:
        a new HxWx3 uint8 RGB array. NaN rows and boxes with no area are skipped.
    """
    img = as_rgb_uint8(frame)
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return img
    b = b.reshape(-1, 4)
    n = len(b)
    keys = np.broadcast_to(np.asarray(key_frame, dtype=bool), (n,)) if np.ndim(key_frame) == 0 \
        else np.asarray(key_frame, dtype=bool)
    if keys.shape != (n,):
        raise ValueError(f"key_frame must be one bool or one per box ({n}); got {len(keys)}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"{n} boxes but {len(labels)} labels")
    for i in range(n):
        corners = _corners(b[i])
        if corners is None:
            continue
        st = style if style is not None else (KEY_STYLE if keys[i] else PROPAGATED_STYLE)
        if color is not None:
            st = replace(st, color=tuple(color))
        _rectangle(img, corners, st)
        if labels is not None and labels[i] is not None:
            import cv2

            (_, th), base = cv2.getTextSize(str(labels[i]), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
            draw_text(img, str(labels[i]), (corners[0], corners[1] - th - base - 3), color=(0, 0, 0),
                      background=st.color, scale=0.4)
    return img
