"""Single-step baseline matchers for the short-range comparison (paper §5.3).

Every matcher answers one question with one interface::

    box = matcher.match(key_frame, key_box, frame)

carry ``key_box`` (x, y, w, h, 0-based pixels) from ``key_frame`` to ``frame``. Frames are RGB
``HxWx3`` uint8 numpy arrays, as everywhere in this package; OpenCV's trackers want BGR, and the
conversion happens here, at this boundary, and nowhere else. Nothing in this module may be imported
by a Lightning module: OpenCV stays out of training code.

Methods:

* ``hold`` -- return the key box (the "dummy" skip-frame method).
* ``ncc`` -- full-template normalised cross-correlation (``cv2.matchTemplate`` with
  ``TM_CCOEFF_NORMED``) over the same search window PatchNet uses: centred on the key box and
  ``search_scale`` (119/64) times its size. Template and window are resampled exactly as PatchNet
  resamples them (template -> 64x64, window -> 119x119, bilinear, pixel-centre sampling) and the parts
  of a window outside the frame are filled with the mean colour of the part inside. The peak is refined
  to sub-pixel precision with a parabola through its neighbours; the size is kept (NCC has no scale).
* ``kcf`` -- OpenCV KCF with its failure gate off (``detect_thresh = 0``, the ``KCF*`` of the
  reference figures), **primed**: after ``init`` on the key frame it gets one ``update`` on the key
  frame itself. OpenCV's KCF otherwise answers the first ``update`` from a model that has not yet
  absorbed the initial appearance and lags one frame behind.
* ``kcf-gated`` -- plain OpenCV KCF (default ``detect_thresh``), primed the same way, for reference.
* ``mosse`` -- ``cv2.legacy.TrackerMOSSE``, primed the same way.

Failure policy: when an OpenCV tracker raises, reports failure (``ok == False``, e.g. MOSSE's PSR
gate) or returns junk (non-finite values, non-positive size, a box wholly outside the frame), the
matcher returns the key box unchanged -- the same answer as ``hold`` -- and counts it in
``matcher.fallbacks``. It never raises for a valid key box.

Cost: the OpenCV trackers only ever look at a neighbourhood of the box (KCF 2.5x the box, MOSSE 1x),
so only a region of interest ``roi_scale`` (default 4) times the box around the key box is converted
to BGR and handed to the tracker, with the box coordinates shifted into it. That is the same
computation as on the whole frame (the region is clipped to the frame, so frame borders stay where
they are; its origin and size are multiples of 4 pixels so KCF's halving of large targets lines up) and it
keeps the RGB->BGR conversion of whole large frames out of the timing; a test checks the answers agree.
``roi_scale=None`` hands over the whole frame.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = [
    "BaselineMatcher",
    "HoldMatcher",
    "NCCMatcher",
    "KCFMatcher",
    "MOSSEMatcher",
    "BASELINES",
    "create_baseline",
    "crop_resampled",
    "PATCHNET_SEARCH_SCALE",
]

#: PatchNet's search window side / box side at the paper's defaults (119 / 64).
PATCHNET_SEARCH_SCALE = 119.0 / 64.0


def _cv2():
    import cv2

    return cv2


def _as_box(box) -> np.ndarray:
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,):
        raise ValueError(f"a box is 4 numbers x,y,w,h; got shape {np.shape(box)}")
    if not np.isfinite(b).all() or b[2] <= 0 or b[3] <= 0:
        raise ValueError(f"key box must be finite with positive width and height (x,y,w,h); got {b.tolist()}")
    return b


def _as_frame(frame) -> np.ndarray:
    f = np.asarray(frame)
    if f.ndim == 2:
        f = np.repeat(f[:, :, None], 3, axis=2)
    if f.ndim != 3 or f.shape[2] not in (3, 4):
        raise ValueError(f"frames must be HxWx3 RGB arrays; got shape {f.shape}")
    if f.shape[2] == 4:
        f = f[:, :, :3]
    if f.dtype != np.uint8:
        f = np.clip(f * (255.0 if f.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return f


def _valid_box(box, frame_hw: tuple[int, int]) -> bool:
    b = np.asarray(box, dtype=np.float64)
    if b.shape != (4,) or not np.isfinite(b).all() or b[2] <= 0 or b[3] <= 0:
        return False
    h, w = frame_hw
    return not (b[0] + b[2] <= 0 or b[1] + b[3] <= 0 or b[0] >= w or b[1] >= h)


class BaselineMatcher:
    """Base class: ``match(key_frame, key_box, frame) -> box`` (numpy float64 x,y,w,h)."""

    name = "baseline"

    def __init__(self):
        self.fallbacks = 0  # how often the key box was returned because the method failed

    def match(self, key_frame, key_box, frame) -> np.ndarray:
        key_box = _as_box(key_box)
        key_frame, frame = _as_frame(key_frame), _as_frame(frame)
        try:
            out = self._match(key_frame, key_box, frame)
        except Exception:  # OpenCV raises cv2.error on odd inputs (tiny boxes, ...): hold instead
            out = None
        if out is None or not _valid_box(out, frame.shape[:2]):
            self.fallbacks += 1
            return key_box.copy()
        return np.asarray(out, dtype=np.float64)

    __call__ = match

    def _match(self, key_frame: np.ndarray, key_box: np.ndarray, frame: np.ndarray):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class HoldMatcher(BaselineMatcher):
    """Copy the key box: what a skip-frame scheme does when it has no inter-frame method."""

    name = "hold"

    def match(self, key_frame, key_box, frame) -> np.ndarray:
        return _as_box(key_box).copy()


# ------------------------------------------------------------------------------------------- NCC
def crop_resampled(frame: np.ndarray, center, size, out_size: int) -> np.ndarray:
    """Resample the window ``center`` +- ``size``/2 of an RGB frame to ``out_size`` x ``out_size``.

    Bilinear, sampling at pixel centres exactly like ``geometry.crop_windows`` (and therefore like
    PatchNet's crops). Parts of the window outside the frame take the mean colour of the part inside.
    Returns float32 ``(out_size, out_size, 3)``.
    """
    cv2 = _cv2()
    H, W = frame.shape[:2]
    cx, cy = float(center[0]), float(center[1])
    sw, sh = float(size[0]), float(size[1])
    sx, sy = sw / out_size, sh / out_size
    x0, y0 = cx - sw / 2, cy - sh / 2
    # output pixel u samples the source at x0 + (u + 0.5) * sx, in pixel-centre coordinates - 0.5
    m = np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5]], dtype=np.float64)
    crop = cv2.warpAffine(frame, m, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    u = np.arange(out_size)
    srcx = x0 + (u + 0.5) * sx
    srcy = y0 + (u + 0.5) * sy
    inx = (srcx >= 0) & (srcx < W)
    iny = (srcy >= 0) & (srcy < H)
    if inx.all() and iny.all():
        return crop
    if not inx.any() or not iny.any():  # wholly outside: a flat window of the frame's mean
        crop[:] = frame.reshape(-1, 3).mean(0)
        return crop
    inside = crop[np.ix_(iny, inx)]
    mean = inside.reshape(-1, 3).mean(0)
    outside = ~(iny[:, None] & inx[None, :])
    crop[outside] = mean
    return crop


def _subpixel(r_m: float, r_0: float, r_p: float) -> float:
    """Vertex offset of the parabola through three samples at -1, 0, +1 (clamped to +-0.5)."""
    den = r_m - 2.0 * r_0 + r_p
    if not np.isfinite(den) or den >= 0:
        return 0.0
    return float(np.clip(0.5 * (r_m - r_p) / den, -0.5, 0.5))


class NCCMatcher(BaselineMatcher):
    """Full-template NCC over PatchNet's search window (see the module docstring).

    Args:
        search_scale: window side / box side (PatchNet's 119/64 by default).
        template_size: side the key box is resampled to (PatchNet's 64).
        subpixel: refine the peak with a parabola fit.
        edge_follow: the rule of ``PatchMatcher(edge_follow=...)``, for a like-for-like comparison:
            a peak on the window's edge gets up to this many more searches, each centred on the
            last answer, kept where its peak scores higher (0 = one search).
    """

    name = "ncc"

    def __init__(self, search_scale: float = PATCHNET_SEARCH_SCALE, template_size: int = 64,
                 subpixel: bool = True, edge_follow: int = 0):
        super().__init__()
        if search_scale <= 1:
            raise ValueError(f"search_scale must be > 1, got {search_scale}")
        if isinstance(edge_follow, bool) or not isinstance(edge_follow, int) or edge_follow < 0:
            raise ValueError(f"edge_follow must be an integer >= 0, got {edge_follow!r}")
        self.search_scale = float(search_scale)
        self.template_size = int(template_size)
        self.search_size = int(round(self.template_size * self.search_scale))
        self.subpixel = subpixel
        self.edge_follow = edge_follow

    def _match(self, key_frame, key_box, frame):
        T = self.template_size
        templ = crop_resampled(key_frame, key_box[:2] + key_box[2:] / 2, key_box[2:], T)
        if float(templ.std()) < 1e-6:  # flat template: NCC is undefined
            return None
        box, peak, on_edge = self._search(templ, key_box, frame)
        for _ in range(self.edge_follow):
            if not on_edge:
                break
            box2, peak2, on_edge = self._search(templ, box, frame)
            if peak2 <= peak:
                break
            box, peak = box2, peak2
        return box

    def _search(self, templ: np.ndarray, box: np.ndarray, frame) -> tuple[np.ndarray, float, bool]:
        """The box found in a window centred on ``box``, its NCC score, and whether it is on the edge."""
        cv2 = _cv2()
        T, S = self.template_size, self.search_size
        c, size = box[:2] + box[2:] / 2, box[2:]
        # the window is S/T times the box so both crops share one pixel scale
        search = crop_resampled(frame, c, size * (S / T), S)
        resp = cv2.matchTemplate(search, templ, cv2.TM_CCOEFF_NORMED)
        resp = np.nan_to_num(resp, nan=-1.0, posinf=-1.0, neginf=-1.0)
        _, peak, _, (px, py) = cv2.minMaxLoc(resp)
        rh, rw = resp.shape
        dx, dy = float(px), float(py)
        if self.subpixel:
            if 0 < px < rw - 1:
                dx += _subpixel(resp[py, px - 1], resp[py, px], resp[py, px + 1])
            if 0 < py < rh - 1:
                dy += _subpixel(resp[py - 1, px], resp[py, px], resp[py + 1, px])
        # template top-left at (dx, dy) in the crop -> its centre at dx + T/2; the crop centre is S/2
        shift = (np.array([dx, dy]) + T / 2 - S / 2) * (size / T)
        on_edge = px in (0, rw - 1) or py in (0, rh - 1)
        return np.concatenate([box[:2] + shift, size]), float(peak), on_edge

    def __repr__(self) -> str:
        follow = f", edge_follow={self.edge_follow}" if self.edge_follow else ""
        return f"NCCMatcher(search_scale={self.search_scale:.4f}, template_size={self.template_size}{follow})"


# ------------------------------------------------------------------------------- OpenCV trackers
class _OpenCVTracker(BaselineMatcher):
    """init on the key frame, optionally one priming update on the key frame, one update on ``frame``."""

    def __init__(self, prime: bool = True, roi_scale: float | None = 4.0):
        super().__init__()
        self.prime = prime
        self.roi_scale = roi_scale

    def _create(self):
        raise NotImplementedError

    def _init_rect(self, box: np.ndarray):
        return tuple(float(v) for v in box)

    def _roi(self, key_box: np.ndarray, frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        H, W = frame_hw
        if self.roi_scale is None:
            return 0, 0, W, H
        c = key_box[:2] + key_box[2:] / 2
        half = key_box[2:] * self.roi_scale / 2 + 2  # +2 px for interpolation support
        # origin on a multiple of 4: KCF halves large images (cv2.resize by 1/2), and an even origin
        # makes the halved region line up pixel for pixel with the halved full frame
        x0 = max(0, int(math.floor(c[0] - half[0])) // 4 * 4)
        y0 = max(0, int(math.floor(c[1] - half[1])) // 4 * 4)
        # size on a multiple of 4 too, else cv2.resize's floor(cols / 2) makes the factor != 1/2
        x1 = min(W, x0 + -(-(int(math.ceil(c[0] + half[0])) - x0) // 4) * 4)
        y1 = min(H, y0 + -(-(int(math.ceil(c[1] + half[1])) - y0) // 4) * 4)
        return x0, y0, x1, y1

    def _match(self, key_frame, key_box, frame):
        cv2 = _cv2()
        if key_frame.shape != frame.shape:
            rx0, ry0, rx1, ry1 = 0, 0, frame.shape[1], frame.shape[0]
            kx0, ky0, kx1, ky1 = 0, 0, key_frame.shape[1], key_frame.shape[0]
        else:
            rx0, ry0, rx1, ry1 = self._roi(key_box, frame.shape[:2])
            kx0, ky0, kx1, ky1 = rx0, ry0, rx1, ry1
        key_bgr = cv2.cvtColor(key_frame[ky0:ky1, kx0:kx1], cv2.COLOR_RGB2BGR)
        cur_bgr = cv2.cvtColor(frame[ry0:ry1, rx0:rx1], cv2.COLOR_RGB2BGR)
        local = key_box - np.array([kx0, ky0, 0.0, 0.0])
        init_rect = self._init_rect(local)
        tracker = self._create()
        tracker.init(key_bgr, init_rect)
        if self.prime:
            tracker.update(key_bgr)
        ok, out = tracker.update(cur_bgr)
        if not ok:
            return None
        out = np.asarray(out, dtype=np.float64).reshape(-1)
        if out.shape != (4,) or not np.isfinite(out).all():
            return None
        init = np.asarray(init_rect, dtype=np.float64)
        # the tracker's displacement in frame coordinates, applied to the exact key box, so that the
        # integer rounding of KCF's init rectangle does not leak into the answer
        disp = out[:2] + (rx0, ry0) - (init[:2] + (kx0, ky0))
        size = key_box[2:] if np.allclose(out[2:], init[2:]) else out[2:]
        return np.concatenate([key_box[:2] + disp, size])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prime={self.prime}, roi_scale={self.roi_scale})"


class KCFMatcher(_OpenCVTracker):
    """OpenCV KCF, primed. ``detect_thresh=0`` (default) switches its failure gate off (KCF*);
    ``detect_thresh=None`` keeps OpenCV's default gate (0.5). KCF needs an integer init rectangle."""

    name = "kcf"

    def __init__(self, detect_thresh: float | None = 0.0, prime: bool = True, roi_scale: float | None = 4.0):
        super().__init__(prime=prime, roi_scale=roi_scale)
        self.detect_thresh = detect_thresh

    def _create(self):
        cv2 = _cv2()
        params = cv2.TrackerKCF_Params()
        if self.detect_thresh is not None:
            params.detect_thresh = float(self.detect_thresh)
        return cv2.TrackerKCF_create(params)

    def _init_rect(self, box):
        x0, y0 = int(round(box[0])), int(round(box[1]))
        return (x0, y0, max(1, int(round(box[2]))), max(1, int(round(box[3]))))

    def __repr__(self) -> str:
        return f"KCFMatcher(detect_thresh={self.detect_thresh}, prime={self.prime}, roi_scale={self.roi_scale})"


class MOSSEMatcher(_OpenCVTracker):
    """OpenCV's legacy MOSSE, primed. Its PSR gate is built in: a low peak counts as a failure."""

    name = "mosse"

    def _create(self):
        return _cv2().legacy.TrackerMOSSE_create()


#: name -> factory of a fresh matcher
BASELINES: dict[str, Callable[[], BaselineMatcher]] = {
    "ncc": NCCMatcher,
    "kcf": KCFMatcher,
    "kcf-gated": lambda: KCFMatcher(detect_thresh=None),
    "mosse": MOSSEMatcher,
    "hold": HoldMatcher,
}


def create_baseline(name: str, **kwargs) -> BaselineMatcher:
    """A baseline matcher by name: ``ncc``, ``kcf`` (KCF*, gate off), ``kcf-gated``, ``mosse``, ``hold``."""
    if name == "kcf-gated":
        return KCFMatcher(detect_thresh=kwargs.pop("detect_thresh", None), **kwargs)
    try:
        factory = BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}") from None
    return factory(**kwargs)
