"""Boxes and frames: one convention inside the package, batched crops.

Convention: boxes are ``x, y, w, h`` in pixels with ``x, y`` the top-left corner, 0-based, covering
the continuous range ``[x, x + w) x [y, y + h)``. Frames are RGB. Every public entry point converts
what the user gives into that convention here, so the rest of the code never has to guess.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "as_boxes",
    "check_boxes",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
    "xywh_to_cxcywh",
    "cxcywh_to_xywh",
    "box_iou",
    "to_frame_tensor",
    "crop_windows",
    "clip_boxes",
]


# --------------------------------------------------------------------------------------------- boxes
def as_boxes(boxes, dtype=torch.float32) -> torch.Tensor:
    """Any box-like input (list, numpy, tensor; one box or many) as an (N, 4) float tensor."""
    t = torch.as_tensor(np.asarray(boxes, dtype=np.float64) if not torch.is_tensor(boxes) else boxes)
    t = t.to(dtype)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[-1] != 4:
        raise ValueError(f"boxes must have shape (4,) or (N, 4) in x,y,w,h; got {tuple(t.shape)}")
    return t


def check_boxes(boxes: torch.Tensor, frame_hw: tuple[int, int] | None = None, what: str = "box") -> None:
    """Raise a clear ValueError for boxes that cannot define a template.

    Rejected: NaN/inf values, zero or negative width/height, and (when the frame size is given)
    boxes that lie wholly outside the frame. Boxes partly outside the frame are fine: the part
    outside is filled with the mean colour when cropping.
    """
    if boxes.numel() == 0:
        return
    a = boxes.detach().cpu().numpy()  # a few numbers: numpy checks them without torch's per-op cost
    if a.shape == (1, 4) and _one_box_ok(a, frame_hw):  # a tracker's every frame: plain floats
        return
    if not (np.isfinite(a).all() and (a[:, 2:] > 0).all()):  # find the rows to name only when needed
        bad = np.flatnonzero(~np.isfinite(a).all(1))
        if bad.size:
            raise ValueError(f"{what} contains NaN or infinite values at rows {bad.tolist()}: {a[bad].tolist()}")
        bad = np.flatnonzero((a[:, 2:] <= 0).any(1))
        raise ValueError(
            f"{what} must have positive width and height (x,y,w,h); rows {bad.tolist()} are {a[bad].tolist()}"
        )
    if frame_hw is not None:
        h, w = frame_hw
        x0, y0 = a[:, 0], a[:, 1]
        x1, y1 = x0 + a[:, 2], y0 + a[:, 3]
        bad = np.flatnonzero((x1 <= 0) | (y1 <= 0) | (x0 >= w) | (y0 >= h))
        if bad.size:
            raise ValueError(
                f"{what} rows {bad.tolist()} lie wholly outside the {w}x{h} frame: {a[bad].tolist()}"
            )


def _one_box_ok(a: np.ndarray, frame_hw: tuple[int, int] | None) -> bool:
    """Whether ``check_boxes`` passes one (1, 4) box, on plain floats: finite, positive size and,
    with ``frame_hw``, not wholly outside the frame. ``x + w`` is rounded to the box's own float type,
    as the vectorised check computes it. False sends the box through the full check (its messages)."""
    x, y, w, h = a[0].tolist()
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        return False
    if frame_hw is None:
        return True
    cast = a.dtype.type
    fh, fw = frame_hw
    return float(cast(x + w)) > 0 and float(cast(y + h)) > 0 and x < fw and y < fh


def xywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([b[..., :2], b[..., :2] + b[..., 2:]], -1)


def xyxy_to_xywh(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([b[..., :2], b[..., 2:] - b[..., :2]], -1)


def xywh_to_cxcywh(b: torch.Tensor) -> torch.Tensor:
    if b.device.type == "cpu" and b.dtype in (torch.float32, torch.float64) and not b.requires_grad:
        # a few numbers per box: numpy's per-call cost is a fraction of torch's (same arithmetic)
        a = b.numpy()
        return torch.from_numpy(np.concatenate([a[..., :2] + a[..., 2:] / 2, a[..., 2:]], -1))
    return torch.cat([b[..., :2] + b[..., 2:] / 2, b[..., 2:]], -1)


def cxcywh_to_xywh(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([b[..., :2] - b[..., 2:] / 2, b[..., 2:]], -1)


def box_iou(a, b) -> torch.Tensor:
    """Element-wise IoU of two (N, 4) x,y,w,h sets (no +1 on widths, as in the got10k toolkit)."""
    a, b = as_boxes(a, torch.float64), as_boxes(b, torch.float64)
    ax1, ay1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = (torch.minimum(ax1, bx1) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    ih = (torch.minimum(ay1, by1) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = iw * ih
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def clip_boxes(boxes: torch.Tensor, frame_hw: tuple[int, int]) -> torch.Tensor:
    """Clip x,y,w,h boxes to the frame; boxes wholly outside come back with zero width or height."""
    h, w = frame_hw
    xyxy = xywh_to_xyxy(boxes)
    xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, w)
    xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, h)
    return xyxy_to_xywh(xyxy)


# -------------------------------------------------------------------------------------------- frames
def to_frame_tensor(image, value_range: str | None = None) -> torch.Tensor:
    """A frame as a (3, H, W) tensor with values on the 0-255 scale (uint8 or float32).

    Accepted: numpy HxW (grayscale), HxWx1, HxWx3 (RGB) or HxWx4 (RGBA, alpha dropped); torch tensors
    in CxHxW (C = 1, 3, 4; the torch convention) or HxWxC; any strides. uint8 is used as is.
    Floating-point frames: ``value_range="0-1"`` or ``"0-255"`` says which; left as None, a frame
    whose maximum is at most 1 is read as 0-1 (torchvision's convention), else as 0-255. Pass it
    explicitly for float video that may contain dark frames.
    Colour order is RGB: convert OpenCV's BGR frames before passing them in.
    """
    if value_range not in (None, "0-1", "0-255"):
        raise ValueError(f"value_range must be None, '0-1' or '0-255'; got {value_range!r}")
    if isinstance(image, (str, bytes)) or image is None:
        raise TypeError(f"expected an image array, got {type(image).__name__}")
    is_tensor = torch.is_tensor(image)
    t = image if is_tensor else torch.from_numpy(np.ascontiguousarray(image))
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"unsupported frame dtype {t.dtype}")
    if t.ndim == 2:
        t = t.unsqueeze(0)
    elif t.ndim == 3:
        channels_first = is_tensor and t.shape[0] in (1, 3, 4)
        if not channels_first:
            if t.shape[-1] not in (1, 3, 4):
                raise ValueError(f"frame must be HxW, HxWx1, HxWx3 or HxWx4; got shape {tuple(t.shape)}")
            t = t.permute(2, 0, 1)
    else:
        raise ValueError(f"frame must have 2 or 3 dimensions; got shape {tuple(t.shape)}")
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    elif t.shape[0] == 4:
        t = t[:3]
    if t.shape[1] < 2 or t.shape[2] < 2:
        raise ValueError(f"frame is too small: {tuple(t.shape[1:])}")
    if t.dtype == torch.uint8:
        return t
    t = t.float()
    if not torch.isfinite(t).all():
        raise ValueError("frame contains NaN or infinite values")
    if value_range == "0-1" or (value_range is None and t.max() <= 1.0):
        t = t * 255.0
    return t


def crop_windows(
    frame: torch.Tensor,
    centers: torch.Tensor,
    sizes: torch.Tensor,
    out_size: int,
    fill: Sequence[float] | torch.Tensor,
) -> torch.Tensor:
    """Resample many axis-aligned windows of one frame to ``out_size`` squares in one call.

    ``frame`` is (3, H, W) on the 0-255 scale, ``centers`` (B, 2) and ``sizes`` (B, 2) (tensors or
    arrays) are in pixels.
    Output (B, 3, out_size, out_size) float32; the parts of a window outside the frame take the colour
    ``fill``. Only the region of interest that covers all windows is converted to float, so one small
    box in a large frame stays cheap. Aspect ratio is not preserved (PatchNet resamples exactly).
    """
    B = centers.shape[0]
    fill_t = torch.as_tensor(fill, dtype=torch.float32).view(3, 1, 1)
    if B == 0:
        return torch.empty(0, 3, out_size, out_size)
    _, H, W = frame.shape
    # the window geometry is a few numbers per box: numpy does it in a fraction of the time of
    # torch's per-call dispatch, with the same float32 operations (so the same sample points)
    if B == 1:  # a tracker's every frame: float32 scalars, the same operations without array calls
        return _crop_one(frame, centers, sizes, out_size, fill_t)
    lo, hi = _window_bounds(centers, sizes)
    # integer region of interest covering every window (+1 px for bilinear support), clamped
    (left, top), (right, bottom) = lo.min(0).tolist(), hi.max(0).tolist()
    x0 = int(max(0, min(W - 1, left - 1)))
    y0 = int(max(0, min(H - 1, top - 1)))
    x1 = int(min(W, max(x0 + 1, right + 2)))
    y1 = int(min(H, max(y0 + 1, bottom + 2)))
    # the region, minus the fill colour, inside a one-pixel border of zeros (= the fill colour once it
    # is added back): samples near the frame's edge blend towards the fill exactly as in a frame
    # padded with it. Inside the frame the region already has a margin of real pixels.
    roi = torch.zeros(3, y1 - y0 + 2, x1 - x0 + 2)
    torch.sub(frame[:, y0:y1, x0:x1], fill_t, out=roi[:, 1:-1, 1:-1])
    # one bilinear sample at the centre of every output cell (continuous coordinates, pixel i covers
    # [i, i+1)), i.e. grid_sample(align_corners=False): parallel over boxes and rows, about 3x faster
    # than torchvision's roi_align (serial) at the same points.
    origin = np.array([x0 - 1, y0 - 1], np.float32)
    to_unit = 2 * (1 / np.array([roi.shape[2], roi.shape[1]], np.float32))  # 2 / roi side
    steps = _sample_steps(out_size)  # (S,)
    # normalised coordinate of each sample: 2 * pixel / roi side - 1, per box and axis, (B, 2, S)
    norm = ((lo - origin)[:, :, None] + (hi - lo)[:, :, None] * steps) * to_unit[:, None] - 1
    grid = np.empty((B, out_size, out_size, 2), np.float32)
    grid[..., 0] = norm[:, None, 0, :]
    grid[..., 1] = norm[:, 1, :, None]
    out = F.grid_sample(roi.unsqueeze(0).expand(B, -1, -1, -1), torch.from_numpy(grid), mode="bilinear",
                        padding_mode="zeros", align_corners=False)
    return out.add_(fill_t)


def _crop_one(frame: torch.Tensor, centers, sizes, out_size: int, fill_t: torch.Tensor) -> torch.Tensor:
    """``crop_windows`` for one window, bit for bit: the same float32 operations in the same order,
    on numpy float32 scalars instead of (1, 2) arrays (a tracker crops one window a frame, and the
    array calls cost more than the sampling)."""
    _, H, W = frame.shape
    (cx, cy), (sw, sh) = _float32_array(centers).reshape(2).tolist(), _float32_array(sizes).reshape(2).tolist()
    f32, two = np.float32, np.float32(2)
    lx, ly = f32(cx) - f32(sw) / two, f32(cy) - f32(sh) / two
    hx, hy = f32(cx) + f32(sw) / two, f32(cy) + f32(sh) / two
    x0 = int(max(0, min(W - 1, float(lx) - 1)))
    y0 = int(max(0, min(H - 1, float(ly) - 1)))
    x1 = int(min(W, max(x0 + 1, float(hx) + 2)))
    y1 = int(min(H, max(y0 + 1, float(hy) + 2)))
    rw, rh = x1 - x0 + 2, y1 - y0 + 2
    roi = torch.zeros(3, rh, rw)
    torch.sub(frame[:, y0:y1, x0:x1], fill_t, out=roi[:, 1:-1, 1:-1])
    steps = _sample_steps(out_size)
    grid = np.empty((1, out_size, out_size, 2), np.float32)
    grid[0, :, :, 0] = ((lx - f32(x0 - 1)) + (hx - lx) * steps) * (two * (f32(1) / f32(rw))) - 1
    grid[0, :, :, 1] = (((ly - f32(y0 - 1)) + (hy - ly) * steps) * (two * (f32(1) / f32(rh))) - 1)[:, None]
    out = F.grid_sample(roi.unsqueeze(0), torch.from_numpy(grid), mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.add_(fill_t)


@functools.lru_cache(maxsize=16)
def _sample_steps(out_size: int) -> np.ndarray:
    """Where the ``out_size`` samples of a window lie, as fractions of its side (cell centres)."""
    steps = (np.arange(out_size, dtype=np.float32) + 0.5) / out_size
    steps.flags.writeable = False  # shared by every call
    return steps


def _window_bounds(centers, sizes) -> tuple[np.ndarray, np.ndarray]:
    """(B, 2) float32 top-left and bottom-right corners of windows given by centre and size
    (tensors or arrays)."""
    c, half = _float32_array(centers), _float32_array(sizes) / 2
    return c - half, c + half


def _float32_array(x) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)
