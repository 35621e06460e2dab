"""FastestDet (COCO, 80 classes, 352x352, about 1 MB) through ONNX Runtime, with our own pre- and
post-processing.

The graph (``FastestDet.onnx``, see ``../shared/weights/fastestdet/README.md``) takes one BGR image
resized to 352x352 (no letterbox), scaled to 0-1, and returns a ``1 x 85 x 22 x 22`` map: per cell
the objectness (already a sigmoid), four raw box terms and 80 class probabilities (already a
softmax). Decoding, per cell ``(row, col)``:

* score = objectness^0.6 * max(class prob)^0.4, class = argmax;
* centre = ((col, row) + tanh(t_x, t_y)) / 22 and size = sigmoid(t_w, t_h), both as fractions of
  the frame (so the stretch to 352x352 needs no undoing beyond scaling by the frame size);
* boxes above ``score_threshold`` go through per-class non-maximum suppression at IoU 0.45.

Class ids are COCO's 80 contiguous indices (``coco.names``): 0 = person.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .adapters import OnnxDetector, onnx_session
from .detections import Detections

__all__ = ["FastestDet", "find_fastestdet_weights", "nms", "FASTESTDET_FILE", "PERSON"]

FASTESTDET_FILE = "FastestDet.onnx"
FASTESTDET_SUBDIR = "fastestdet"
PERSON = 0


def find_fastestdet_weights(weights: str | Path | None = None) -> Path:
    """The ONNX file: ``weights`` (a file, or a folder holding ``FastestDet.onnx``), else
    ``$PATCHNET_ZOO_WEIGHTS/fastestdet``, else ``../shared/weights/fastestdet`` (from the working
    directory); ``FileNotFoundError`` naming where it looked."""
    from ..trackers.opencv_trackers import WEIGHTS_ENV, default_weights_root

    if weights is not None:
        p = Path(weights)
        candidates = [p / FASTESTDET_FILE, p / FASTESTDET_SUBDIR / FASTESTDET_FILE] if p.is_dir() else [p]
    else:
        root = default_weights_root()
        candidates = [root / FASTESTDET_SUBDIR / FASTESTDET_FILE, root / FASTESTDET_FILE]
    for c in candidates:
        if c.is_file():
            return c
    how = "the weights argument" if weights is not None else (
        f"${WEIGHTS_ENV}" if os.environ.get(WEIGHTS_ENV) else f"the default (set ${WEIGHTS_ENV} or pass weights)")
    raise FileNotFoundError(f"FastestDet ONNX model not found: looked at {' and '.join(map(str, candidates))} "
                            f"(from {how})")


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (xyxy boxes), best score first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


class FastestDet(OnnxDetector):
    """The FastestDet COCO detector (BSD-3-Clause weights, ``../shared/weights/fastestdet``).

    Args:
        weights: the ``.onnx`` file or its folder (default: ``find_fastestdet_weights()``).
        score_threshold: keep boxes scoring at least this (0.3, the reference figures' value).
        nms_iou: IoU above which a lower-scoring box of the same class is suppressed.
        threads: ONNX Runtime intra-op threads (1: the measured ~8 ms per frame; more threads
            compete with PatchNet's torch threads).
        classes: keep only these class ids (e.g. ``[0]`` for persons); ``None`` keeps all 80.
        session: an existing ONNX Runtime session of the same graph (then ``weights`` only names it).
    """

    def __init__(self, weights: str | Path | None = None, score_threshold: float = 0.3, nms_iou: float = 0.45,
                 threads: int = 1, classes=None, session=None, name: str = "fastestdet"):
        path = find_fastestdet_weights(weights) if session is None or weights is not None else None
        if session is None:
            session = onnx_session(path, threads)
        super().__init__(session, channel_order="bgr", score_threshold=score_threshold, name=name)
        self.path = path
        out = session.get_outputs()[0].shape
        if len(out) != 4 or not isinstance(out[1], int) or out[1] <= 5:
            raise ValueError(f"not a FastestDet graph: its output has shape {out}, expected 1 x (5 + C) x H x W")
        self.num_classes = int(out[1]) - 5
        self.nms_iou = float(nms_iou)
        self.classes = None if classes is None else np.asarray(list(np.atleast_1d(classes)), dtype=np.int64)
        names = (path.parent / "coco.names") if path is not None else None
        self.class_names = names.read_text().split("\n")[: self.num_classes] if names and names.is_file() else None

    def preprocess(self, frame: np.ndarray) -> tuple[dict, dict]:
        img = self._resize(frame, self.input_size)[..., ::-1]  # RGB -> BGR, what it was trained on
        x = img.transpose(2, 0, 1)[None].astype(np.float32) * (1.0 / 255.0)
        return {self.input_name: np.ascontiguousarray(x)}, {}

    def postprocess(self, outputs: list, meta: dict, hw: tuple[int, int]) -> Detections:
        p = np.asarray(outputs[0])[0]  # (5 + C, GH, GW)
        gh, gw = p.shape[1:]
        obj = p[0]
        cls = p[5:]
        cls_id = cls.argmax(0)
        cls_p = np.take_along_axis(cls, cls_id[None], 0)[0]
        score = np.power(obj, 0.6) * np.power(cls_p, 0.4)
        keep = score >= (self.score_threshold if self.score_threshold is not None else 0.0)
        if self.classes is not None:
            keep &= np.isin(cls_id, self.classes)
        rows, cols = np.nonzero(keep)
        if rows.size == 0:
            return Detections.empty()
        t = p[1:5, rows, cols]
        cx = (cols + np.tanh(t[0])) / gw
        cy = (rows + np.tanh(t[1])) / gh
        bw = 1.0 / (1.0 + np.exp(-t[2]))
        bh = 1.0 / (1.0 + np.exp(-t[3]))
        h, w = hw
        boxes = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], 1)
        scores = score[rows, cols].astype(np.float32)
        classes = cls_id[rows, cols].astype(np.int64)
        kept = []
        for c in np.unique(classes):
            idx = np.nonzero(classes == c)[0]
            kept.append(idx[nms(boxes[idx], scores[idx], self.nms_iou)])
        k = np.concatenate(kept)
        k = k[np.argsort(-scores[k], kind="stable")]
        return Detections(boxes[k], scores[k], classes[k], True).clip(hw, min_size=1e-3)
