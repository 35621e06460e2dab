"""One detections type for every detector adapter and for ``SkipFrameDetector``.

Boxes are ``x1, y1, x2, y2`` pixel corners (float32; a box covers ``[x1, x2) x [y1, y2)``), with a
score, a class id, a flag that says whether the box came from the detector on a key frame
(``True``) or was carried to this frame by the inter-frame method (``False``), and a track id (-1
where no identity was assigned; ``SkipFrameDetector(track_ids=True)`` assigns them). Plain numpy: no
torch, no OpenCV, so any layer (Lightning callbacks included) can import it for free.

supervision (``sv.Detections``) is converted to and from without depending on it: ``to_supervision``
imports it when called, ``from_supervision`` reads any object with ``xyxy`` / ``confidence`` /
``class_id`` / ``tracker_id`` attributes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Detections", "KEY_FRAME_DATA_KEY"]

#: the key of the per-box ``data`` entry of ``sv.Detections`` that carries ``from_key_frame``
KEY_FRAME_DATA_KEY = "from_key_frame"


def _column(values, n: int, dtype, name: str, default) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=dtype)
    a = np.asarray(values)
    if a.ndim == 0:
        a = np.full(n, a.item())
    a = a.reshape(-1)
    if a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} entries for {n} boxes")
    return a.astype(dtype, copy=False)


@dataclass
class Detections:
    """Detections of one frame.

    Attributes:
        boxes: (N, 4) float32 ``x1, y1, x2, y2`` in pixels of the frame.
        scores: (N,) float32 detector confidence (kept as it is on propagated boxes).
        class_ids: (N,) int64 class index in the detector's own numbering (see the adapter).
        from_key_frame: (N,) bool, ``True`` where the detector produced the box on this frame.
        track_ids: (N,) int64 identity of the object across frames, -1 where none was assigned.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    from_key_frame: np.ndarray
    track_ids: np.ndarray | None = None

    def __post_init__(self):
        b = np.asarray(self.boxes, dtype=np.float32)
        if b.size == 0:
            b = b.reshape(0, 4)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes must be (N, 4) x1,y1,x2,y2; got shape {b.shape}")
        n = b.shape[0]
        self.boxes = b
        self.scores = _column(self.scores, n, np.float32, "scores", 1.0)
        self.class_ids = _column(self.class_ids, n, np.int64, "class_ids", 0)
        self.from_key_frame = _column(self.from_key_frame, n, bool, "from_key_frame", True)
        self.track_ids = _column(self.track_ids, n, np.int64, "track_ids", -1)

    # ------------------------------------------------------------------------------ construction
    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, bool))

    @classmethod
    def from_xywh(cls, boxes, scores=None, class_ids=None, from_key_frame=None, track_ids=None) -> "Detections":
        """From ``x, y, w, h`` boxes (the package's tracking convention)."""
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        return cls(np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1), scores, class_ids, from_key_frame, track_ids)

    @classmethod
    def concatenate(cls, parts: "list[Detections]") -> "Detections":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                   np.concatenate([p.class_ids for p in parts]), np.concatenate([p.from_key_frame for p in parts]),
                   np.concatenate([p.track_ids for p in parts]))

    # ----------------------------------------------------------------------------------- access
    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self, index) -> "Detections":
        """A subset: a boolean mask, an integer array or a slice (an integer gives one box)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(self.boxes[index], self.scores[index], self.class_ids[index], self.from_key_frame[index],
                          self.track_ids[index])

    @property
    def xywh(self) -> np.ndarray:
        """(N, 4) float32 ``x, y, w, h``."""
        return np.concatenate([self.boxes[:, :2], self.boxes[:, 2:] - self.boxes[:, :2]], 1)

    @property
    def area(self) -> np.ndarray:
        wh = np.clip(self.boxes[:, 2:] - self.boxes[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def copy(self) -> "Detections":
        return Detections(self.boxes.copy(), self.scores.copy(), self.class_ids.copy(), self.from_key_frame.copy(),
                          self.track_ids.copy())

    def with_key_frame(self, flag: bool) -> "Detections":
        """The same boxes with ``from_key_frame`` set to ``flag`` for all of them."""
        return Detections(self.boxes, self.scores, self.class_ids, np.full(len(self), bool(flag)), self.track_ids)

    def with_track_ids(self, track_ids) -> "Detections":
        """The same boxes with these track ids (one per box)."""
        return Detections(self.boxes, self.scores, self.class_ids, self.from_key_frame, track_ids)

    def filter(self, min_score: float | None = None, class_ids=None) -> "Detections":
        """Boxes with ``score >= min_score`` and a class in ``class_ids`` (either may be None)."""
        keep = np.ones(len(self), bool)
        if min_score is not None:
            keep &= self.scores >= float(min_score)
        if class_ids is not None:
            keep &= np.isin(self.class_ids, np.asarray(list(np.atleast_1d(class_ids)), dtype=np.int64))
        return self[keep]

    def clip(self, hw, min_size: float = 1.0) -> "Detections":
        """Boxes clipped to a frame of ``hw = (height, width)``; boxes with less than ``min_size``
        pixels of width or height left inside the frame (they have left it) are dropped."""
        h, w = (float(v) for v in tuple(hw)[:2])
        if not (h > 0 and w > 0):
            raise ValueError(f"hw must be a positive (height, width), got {hw!r}")
        b = self.boxes.copy()
        b[:, 0::2] = np.clip(b[:, 0::2], 0.0, w)
        b[:, 1::2] = np.clip(b[:, 1::2], 0.0, h)
        keep = ((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)
        return Detections(b[keep], self.scores[keep], self.class_ids[keep], self.from_key_frame[keep],
                          self.track_ids[keep])

    # ------------------------------------------------------------------------------ supervision
    def to_supervision(self):
        """An ``sv.Detections`` (``xyxy``, ``confidence``, ``class_id``, ``data["from_key_frame"]``, and
        ``tracker_id`` where every box has a track id).

        Needs the optional ``supervision`` package, 0.31 or later (``pip install
        'patchnet_zoo[supervision]'``): earlier releases required ``opencv-python``, which replaces
        this package's ``opencv-contrib-python-headless`` and removes the OpenCV trackers.
        """
        try:
            import supervision as sv
        except ImportError as e:
            raise ImportError(
                "Detections.to_supervision needs the 'supervision' package, 0.31 or later "
                "(pip install 'patchnet_zoo[supervision]'; older releases replace the OpenCV contrib build)") from e
        ids = self.track_ids.astype(int) if len(self) and (self.track_ids >= 0).all() else None
        return sv.Detections(xyxy=self.boxes.astype(np.float32), confidence=self.scores.astype(np.float32),
                             class_id=self.class_ids.astype(int), tracker_id=ids,
                             data={KEY_FRAME_DATA_KEY: self.from_key_frame.copy()})

    @classmethod
    def from_supervision(cls, d, from_key_frame: bool | None = None) -> "Detections":
        """From an ``sv.Detections`` (or anything with ``xyxy`` and optional ``confidence`` /
        ``class_id`` / ``tracker_id`` / ``data``). Missing scores become 1, missing classes 0, missing
        track ids -1; ``from_key_frame`` is read from ``data["from_key_frame"]`` unless given (default
        ``True``)."""
        if not hasattr(d, "xyxy"):
            raise TypeError(f"expected an sv.Detections (with .xyxy), got {type(d).__name__}")
        boxes = np.asarray(d.xyxy, dtype=np.float32).reshape(-1, 4)
        flag = from_key_frame
        if flag is None:
            data = getattr(d, "data", None) or {}
            flag = data.get(KEY_FRAME_DATA_KEY, True) if hasattr(data, "get") else True
        return cls(boxes, getattr(d, "confidence", None), getattr(d, "class_id", None), flag,
                   getattr(d, "tracker_id", None))

    def __repr__(self) -> str:
        keys = int(self.from_key_frame.sum())
        return f"Detections(n={len(self)}, from_key_frame={keys}, classes={sorted(set(self.class_ids.tolist()))})"
