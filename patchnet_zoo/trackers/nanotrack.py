"""NanoTrack v2 (its ONNX graphs in OpenCV's DNN module), with a tracking state that can be moved (``relocate``).

Why not only ``cv2.TrackerNano``: a skip-frame tracker runs the base tracker every few frames, and
a Siamese tracker searches around the *last position it saw itself*, with a cosine window and a
size-change penalty that assume the target moved for one frame only. Between two key frames PatchNet
already knows where the target went. OpenCV's tracker keeps its state private, so on a key frame it
searches around a stale position; this implementation exposes ``relocate(box)``, which moves the
search centre (and size) to PatchNet's estimate without touching the template. ``SkipFrameTracker``
calls it before every key-frame update of a base tracker that has it, with the number of frames
since the tracker last ran: the size update is an exponential smoothing meant to be applied once per
frame, so one update every N frames compounds it N times (``relocate(box, frames=N)``). Without
that, the size lags a growing or shrinking target: on the val split, skip-frame NanoTrack at a
maximum interval of 3 kept 95.9 % of its per-frame success, and 98.3 % with it
(``benchmarks/tracking.py``, before and after the change).

```python
from patchnet_zoo.trackers.nanotrack import NanoTrack

tracker = NanoTrack()                      # ONNX files from $PATCHNET_ZOO_WEIGHTS or ../shared/weights
tracker.init(rgb_frame, [x, y, w, h])      # RGB frames, x,y,w,h 0-based
box = tracker.update(next_rgb_frame)       # float64 (4,); tracker.score = the network's confidence
```

The algorithm is NanoTrack's (an anchor-free Siamese tracker: 127-px template and 255-px search crops
with context ``(w + h) / 2``, a 16x16 map of classification scores and left/top/right/bottom
distances on a 16-px grid, a cosine window and a penalty on changes of size and aspect ratio, and a
score-weighted size update); the constants default to those of OpenCV's ``TrackerNano`` (window
influence 0.455, size learning rate 0.37, penalty 0.055), so per frame it scores like the OpenCV
tracker (see ``benchmarks/tracking.py``). Frames are RGB, the order the network was trained on.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..accel.tracker_adapters import SingleObjectTracker

__all__ = ["NanoTrack"]

EXEMPLAR_SIZE = 127
INSTANCE_SIZE = 255
STRIDE = 16
SCORE_SIZE = 16
CONTEXT_AMOUNT = 0.5


@functools.lru_cache(maxsize=1)
def _points() -> np.ndarray:
    """(256, 2) x, y offsets of the 16x16 score cells from the search crop's centre, in crop pixels."""
    origin = -(SCORE_SIZE // 2) * STRIDE
    grid = origin + STRIDE * np.arange(SCORE_SIZE, dtype=np.float64)
    x, y = np.meshgrid(grid, grid)
    return np.stack([x.ravel(), y.ravel()], 1)


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
    hann = np.hanning(SCORE_SIZE)
    return np.outer(hann, hann).ravel()


def _net(path: Path):
    """The ONNX graph in OpenCV's DNN module, as ``cv2.TrackerNano`` runs it (the backbone file
    declares a 255-px input, and OpenCV's engine also runs it on the 127-px template crop)."""
    import cv2

    net = cv2.dnn.readNet(str(path))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return net


class NanoTrack(SingleObjectTracker):
    """NanoTrack v2 as a ``SingleObjectTracker`` with ``relocate``.

    Args:
        weights_dir: folder with ``nanotrack_backbone_sim.onnx`` and ``nanotrack_head_sim.onnx``
            (searched as in ``opencv_trackers.find_nanotrack_weights``).
        window_influence, penalty_k, lr: the tracking constants (OpenCV's by default).
        relocate_size: whether ``relocate`` also takes the box's size (else only its centre).
        hint_min_score: below this score at a ``relocate`` hint, the own state is searched as well.
    """

    def __init__(self, weights_dir: str | Path | None = None, window_influence: float = 0.455,
                 penalty_k: float = 0.055, lr: float = 0.37, relocate_size: bool = True,
                 hint_min_score: float = 0.5, name: str = "nanotrack"):
        from .opencv_trackers import find_nanotrack_weights

        self.paths = find_nanotrack_weights(weights_dir)
        self.window_influence = float(window_influence)
        self.penalty_k = float(penalty_k)
        self.lr = float(lr)
        self.relocate_size = bool(relocate_size)
        self.hint_min_score = float(hint_min_score)
        self.hint_fallbacks = 0  # updates where a hint scored low and the own state was searched too
        self._hint = None
        self.name = name
        self._backbone = None
        self._head = None
        self._template = None
        self.center = np.zeros(2)
        self.size = np.zeros(2)
        self.score: float | None = None
        self.ok = True

    # ------------------------------------------------------------------------------- plumbing
    def _load(self) -> None:
        if self._backbone is None:
            self._backbone = _net(self.paths["backbone"])
            self._head = _net(self.paths["neckhead"])

    def _features(self, blob: np.ndarray) -> np.ndarray:
        self._backbone.setInput(blob)
        return self._backbone.forward().copy()

    @property
    def gflops_per_frame(self) -> float | None:
        from .opencv_trackers import nanotrack_gmacs

        return nanotrack_gmacs(self.paths["backbone"].parent)

    @gflops_per_frame.setter
    def gflops_per_frame(self, value) -> None:  # the count from the ONNX graphs wins
        pass

    def _context_size(self) -> float:
        w, h = self.size
        pad = CONTEXT_AMOUNT * (w + h)
        return float(np.sqrt((w + pad) * (h + pad)))

    @staticmethod
    def _crop(image: np.ndarray, center: np.ndarray, extent: float, out: int, fill: np.ndarray) -> np.ndarray:
        """The square ``extent`` x ``extent`` window around ``center`` (continuous pixel coordinates,
        pixel i covers [i, i + 1)) resampled to ``out`` x ``out``, outside filled with ``fill``;
        returned as a (1, 3, out, out) float32 blob on the 0-255 scale."""
        import cv2

        a = extent / out
        # output pixel u (centre u + 0.5) samples the image at x = cx - extent/2 + a(u + 0.5) in
        # continuous coordinates, i.e. at OpenCV pixel index x - 0.5
        bx = center[0] - extent / 2 + 0.5 * a - 0.5
        by = center[1] - extent / 2 + 0.5 * a - 0.5
        m = np.array([[a, 0.0, bx], [0.0, a, by]])
        patch = cv2.warpAffine(image, m, (out, out), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in fill))
        return np.ascontiguousarray(patch.transpose(2, 0, 1)[None], dtype=np.float32)

    @staticmethod
    def _frame(image) -> np.ndarray:
        a = np.asarray(image)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, 2)
        if a.ndim != 3 or a.shape[2] not in (3, 4):
            raise ValueError(f"frame must be HxW or HxWx3/4 (RGB), got shape {a.shape}")
        a = a[..., :3]
        if a.dtype != np.uint8:
            a = np.clip(np.round(a.astype(np.float32) * (255.0 if a.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(a)

    # --------------------------------------------------------------------------------- tracking
    def init(self, image, box) -> None:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
        if b.shape != (4,) or not np.isfinite(b).all() or b[2] <= 0 or b[3] <= 0:
            raise ValueError(f"init box must be finite x,y,w,h with w, h > 0; got {np.asarray(box).tolist()}")
        self._load()
        frame = self._frame(image)
        self.center = b[:2] + b[2:] / 2
        self.size = b[2:].copy()
        self._fill = frame.reshape(-1, 3).mean(0)
        z = self._crop(frame, self.center, round(self._context_size()), EXEMPLAR_SIZE, self._fill)
        self._template = self._features(z)
        self.score = None
        self.ok = True
        self._hint = None

    def relocate(self, box, frames: int = 1) -> None:
        """Hint where the target is now (x,y,w,h; e.g. PatchNet's estimate), without a new template.

        The next ``update`` searches around the hint first. When the best score found there is below
        ``hint_min_score`` it also searches around the tracker's own last state and keeps whichever
        answer scores higher, so one wrong hint cannot pull the tracker onto a distractor for good.
        ``frames``: how many frames the next update stands for (the frames since this tracker last
        ran). Its size smoothing then moves as far as that many per-frame steps towards the new
        size would, ``1 - (1 - lr)^frames``, instead of lagging a single step behind a target whose
        size kept changing while it was not looking. Non-finite or degenerate boxes are ignored."""
        b = np.asarray(box, dtype=np.float64).reshape(-1)
        if self._template is None or b.shape != (4,) or not np.isfinite(b).all() or b[2] <= 0 or b[3] <= 0:
            return
        if isinstance(frames, bool) or int(frames) != frames or frames < 1:
            raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
        size = b[2:].copy() if self.relocate_size else self.size.copy()
        self._hint = (b[:2] + b[2:] / 2, size, int(frames))

    def update(self, image) -> np.ndarray:
        if self._template is None:
            raise RuntimeError("call init(image, box) before update(image)")
        frame = self._frame(image)
        hint, self._hint = self._hint, None
        if hint is None:
            result = self._search(frame, self.center, self.size)
        else:
            centre, size, frames = hint
            result = self._search(frame, centre, size, frames)
            if result[2] < self.hint_min_score and not np.allclose(centre, self.center):
                own = self._search(frame, self.center, self.size, frames)
                self.hint_fallbacks += 1
                if own[2] > result[2]:
                    result = own
        center, size, score = result
        self.center, self.size, self.score = center, size, score
        self.ok = True
        return np.concatenate([center - size / 2, size])

    def _search(self, frame: np.ndarray, center: np.ndarray, size: np.ndarray,
                frames: int = 1) -> tuple[np.ndarray, np.ndarray, float]:
        """One NanoTrack step from the state (``center``, ``size``): the new centre, size and score;
        the size smoothing compounded over ``frames`` frames (see ``relocate``)."""
        w0, h0 = size
        pad = CONTEXT_AMOUNT * (w0 + h0)
        s_z = float(np.sqrt((w0 + pad) * (h0 + pad)))
        scale_z = EXEMPLAR_SIZE / s_z
        s_x = round(s_z * INSTANCE_SIZE / EXEMPLAR_SIZE)
        x = self._crop(frame, center, s_x, INSTANCE_SIZE, self._fill)
        feat = self._features(x)
        self._head.setInput(self._template, "input1")
        self._head.setInput(feat, "input2")
        cls, loc = self._head.forward(["output1", "output2"])
        logits = cls.reshape(2, -1)
        e = np.exp(logits - logits.max(0))
        score = e[1] / e.sum(0)
        d = loc.reshape(4, -1).astype(np.float64)
        pts = _points()
        x1, y1 = pts[:, 0] - d[0], pts[:, 1] - d[1]
        x2, y2 = pts[:, 0] + d[2], pts[:, 1] + d[3]
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1

        def change(r):
            return np.maximum(r, 1.0 / r)

        def padded(w_, h_):
            pad_ = (w_ + h_) * 0.5
            return np.sqrt(np.maximum((w_ + pad_) * (h_ + pad_), 1e-12))

        w_s, h_s = size * scale_z
        with np.errstate(divide="ignore", invalid="ignore"):
            s_c = change(padded(w, h) / padded(w_s, h_s))
            r_c = change((w_s / h_s) / np.where(h != 0, w / h, 1e-6))
        penalty = np.exp(-(r_c * s_c - 1.0) * self.penalty_k)
        pscore = penalty * score
        pscore = np.nan_to_num(pscore * (1 - self.window_influence) + _window() * self.window_influence, nan=-1.0)
        best = int(np.argmax(pscore))
        lr = 1.0 - (1.0 - float(penalty[best] * score[best] * self.lr)) ** frames
        new_center = center + np.array([cx[best], cy[best]]) / scale_z
        new_size = size * (1 - lr) + np.array([w[best], h[best]]) / scale_z * lr
        H, W = frame.shape[:2]
        new_center = np.clip(new_center, [0.0, 0.0], [W, H])
        new_size = np.clip(new_size, [10.0, 10.0], [max(W, 10.0), max(H, 10.0)])
        return new_center, new_size, float(score[best])

    def __repr__(self) -> str:
        return f"NanoTrack(relocate_size={self.relocate_size})"
