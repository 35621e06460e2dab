"""Detection mAP on MOTChallenge sequences and agreement with reference detections (ImageNet VID).

``average_precision`` is COCO's single-class AP, written out here so the benchmark needs no
optional package (the tests check it against ``pycocotools``): per frame, detections in score
order (at most ``max_dets``) are matched greedily to the unmatched ground-truth box of highest IoU
at or above the threshold; a detection that matches nothing but lies inside an *ignore* region
(intersection over the detection's own area at or above the threshold, COCO's "crowd" rule) is
neither a true nor a false positive. Precision is made monotone and read at 101 recall points.
``mAP@0.5`` is AP at IoU 0.5, ``mAP`` averages IoU 0.50:0.05:0.95.

Which ground-truth rows count (``load_mot_ground_truth``):

* MOT15 files (TUD-Campus, PETS09-S3-MF1: 7 or 10 columns) -- every row is a pedestrian.
* MOT16/17 files (9 columns ``..., consider, class, visibility``) -- rows with ``consider = 1`` and
  class 1 (pedestrian) count. Rows of class 2 (person on vehicle), 7 (static person), 8
  (distractor) and 12 (reflection), and every ``consider = 0`` row, are ignore regions: a person
  detector is right to fire on them and must not be punished for it, nor rewarded.
* Boxes are shifted to 0-based pixels and clipped to the frame (the detections are, too).
"""
from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .detections import Detections

__all__ = [
    "FrameTruth",
    "load_mot_ground_truth",
    "mot_frame_paths",
    "average_precision",
    "evaluate_map",
    "read_vid_detections",
    "box_iou_xyxy",
    "MOT17_IGNORE_CLASSES",
    "COCO_IOU_THRESHOLDS",
]

MOT17_PEDESTRIAN = 1
MOT17_IGNORE_CLASSES = (2, 7, 8, 12)
COCO_IOU_THRESHOLDS = tuple(np.round(np.linspace(0.5, 0.95, 10), 2).tolist())
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass
class FrameTruth:
    """Ground truth of one frame: boxes that count and ignore regions (both xyxy, 0-based), and
    the track id of each counted box (the file's id column)."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    ids: np.ndarray | None = None

    def __post_init__(self):
        if self.ids is None:
            self.ids = np.full(len(self.boxes), -1, np.int64)


def _seqinfo(folder: Path) -> configparser.ConfigParser:
    info = configparser.ConfigParser()
    ini = folder / "seqinfo.ini"
    if ini.is_file():
        info.read(ini)
    return info


def mot_frame_paths(folder: str | Path) -> list[Path]:
    """The image files of a MOTChallenge sequence in frame order (``img1/000001.jpg`` ...)."""
    from ..data.readers import IMAGE_EXTS

    folder = Path(folder)
    im_dir = folder / _seqinfo(folder).get("Sequence", "imDir", fallback="img1")
    if not im_dir.is_dir():
        raise FileNotFoundError(f"{folder} has no image folder {im_dir.name}/ (not a MOTChallenge sequence?)")
    frames = sorted(p for p in im_dir.iterdir() if p.suffix in IMAGE_EXTS)
    if not frames:
        raise FileNotFoundError(f"{im_dir} holds no images")
    return frames


def load_mot_ground_truth(folder: str | Path, frame_hw: tuple[int, int] | None = None,
                          num_frames: int | None = None, min_visibility: float = 0.25) -> list[FrameTruth]:
    """Per frame (0-based list index = ``img1/%06d`` - 1) the counted boxes and ignore regions.

    ``frame_hw`` (height, width) clips the boxes (default: from ``seqinfo.ini``, else the first
    image). ``min_visibility`` (MOT17 only) turns pedestrians seen less than that into ignore regions.
    """
    folder = Path(folder)
    gt_file = folder / "gt" / "gt.txt"
    if not gt_file.is_file():
        raise FileNotFoundError(f"{folder} has no gt/gt.txt (not a MOTChallenge sequence with ground truth?)")
    info = _seqinfo(folder)
    if num_frames is None:
        num_frames = len(mot_frame_paths(folder))
    if frame_hw is None:
        if info.has_option("Sequence", "imHeight"):
            frame_hw = (info.getint("Sequence", "imHeight"), info.getint("Sequence", "imWidth"))
        else:
            from ..data.readers import _imread_rgb

            frame_hw = _imread_rgb(mot_frame_paths(folder)[0]).shape[:2]
    gt = np.loadtxt(gt_file, delimiter=",", ndmin=2)
    if gt.shape[1] < 6:
        raise ValueError(f"{gt_file}: expected frame,id,x,y,w,h,... rows, got {gt.shape[1]} columns")
    count = np.ones(len(gt), bool)
    ignore = np.zeros(len(gt), bool)
    if gt.shape[1] == 9:  # MOT16/17: consider, class, visibility
        consider, cls, vis = gt[:, 6] != 0, gt[:, 7].astype(int), gt[:, 8]
        count = consider & (cls == MOT17_PEDESTRIAN) & (vis >= min_visibility)
        ignore = ~count & (~consider | np.isin(cls, MOT17_IGNORE_CLASSES) | (cls == MOT17_PEDESTRIAN))
    h, w = frame_hw
    boxes = np.stack([gt[:, 2] - 1, gt[:, 3] - 1, gt[:, 2] - 1 + gt[:, 4], gt[:, 3] - 1 + gt[:, 5]], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    valid = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
    frame_idx = gt[:, 0].astype(int) - 1
    out = []
    for i in range(num_frames):
        sel = (frame_idx == i) & valid
        out.append(FrameTruth(boxes[sel & count].astype(np.float32), boxes[sel & ignore].astype(np.float32),
                              gt[sel & count, 1].astype(np.int64)))
    return out


def box_iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def _ioa(a: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Intersection over the area of each box of ``a`` (COCO's IoU with a crowd region)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], regions[None, :, 2]) - np.maximum(a[:, None, 0], regions[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], regions[None, :, 3]) - np.maximum(a[:, None, 1], regions[None, :, 1]), 0, None)
    area = np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-12)
    return iw * ih / area[:, None]


def average_precision(detections: list, truths: list, iou_thresholds=COCO_IOU_THRESHOLDS,
                      max_dets: int = 100) -> np.ndarray:
    """COCO single-class AP at each IoU threshold (NaN where there is no ground truth).

    ``detections[i]`` is ``(boxes xyxy (N, 4), scores (N,))`` or a ``Detections`` of frame i;
    ``truths[i]`` a ``FrameTruth`` or an ``(M, 4)`` array of counted boxes.
    """
    if len(detections) != len(truths):
        raise ValueError(f"{len(detections)} frames of detections but {len(truths)} of ground truth")
    thresholds = np.asarray(iou_thresholds, np.float64).reshape(-1)
    t_count = len(thresholds)
    all_scores, all_tp, all_ignored = [], [], []
    npos = 0
    for det, truth in zip(detections, truths):
        if isinstance(det, Detections):
            boxes, scores = det.boxes, det.scores
        else:
            boxes, scores = (np.asarray(v) for v in det)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        if not isinstance(truth, FrameTruth):
            truth = FrameTruth(np.asarray(truth, np.float32).reshape(-1, 4))
        npos += len(truth.boxes)
        order = np.argsort(-scores, kind="mergesort")[:max_dets]
        boxes, scores = boxes[order], scores[order]
        n = len(boxes)
        tp = np.zeros((t_count, n), bool)
        ignored = np.zeros((t_count, n), bool)
        if n:
            iou = box_iou_xyxy(boxes, truth.boxes) if len(truth.boxes) else np.zeros((n, 0))
            ioa = _ioa(boxes, truth.ignore) if len(truth.ignore) else np.zeros((n, 0))
            best_ioa = ioa.max(1) if ioa.shape[1] else np.zeros(n)
            for k, thr in enumerate(thresholds):
                taken = np.zeros(len(truth.boxes), bool)
                for d in range(n):
                    if iou.shape[1]:
                        cand = np.where(taken, -1.0, iou[d])
                        g = int(np.argmax(cand))
                        if cand[g] >= thr:
                            taken[g] = True
                            tp[k, d] = True
                            continue
                    ignored[k, d] = best_ioa[d] >= thr
        all_scores.append(scores)
        all_tp.append(tp)
        all_ignored.append(ignored)
    if npos == 0:
        return np.full(t_count, np.nan)
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tp = np.concatenate(all_tp, 1) if all_tp else np.zeros((t_count, 0), bool)
    ignored = np.concatenate(all_ignored, 1) if all_ignored else np.zeros((t_count, 0), bool)
    order = np.argsort(-scores, kind="mergesort")
    ap = np.zeros(t_count)
    for k in range(t_count):
        keep = ~ignored[k, order]
        hits = tp[k, order][keep]
        ctp = np.cumsum(hits)
        cfp = np.cumsum(~hits)
        recall = ctp / npos
        precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
        precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        idx = np.searchsorted(recall, _RECALL_POINTS, side="left")
        sampled = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0) \
            if len(precision) else np.zeros_like(_RECALL_POINTS)
        ap[k] = sampled.mean()
    return ap


def evaluate_map(detections: list, truths: list, frames=None, max_dets: int = 100) -> dict:
    """``{"map50", "map", "frames"}`` over the frames listed in ``frames`` (default: all)."""
    if frames is not None:
        frames = list(frames)
        detections = [detections[i] for i in frames]
        truths = [truths[i] for i in frames]
    ap = average_precision(detections, truths, COCO_IOU_THRESHOLDS, max_dets)
    return {"map50": float(ap[0]), "map": float(np.mean(ap)), "frames": len(detections)}


def read_vid_detections(folder: str | Path, min_score: float = 0.5, num_frames: int | None = None) -> list[Detections]:
    """Per-frame reference detections of an ImageNet VID snippet (``rfcn_res101_detections.txt``:
    ``frame_idx class_id score x1 y1 x2 y2``, frame 0-based) with ``score >= min_score``."""
    folder = Path(folder)
    path = folder / "rfcn_res101_detections.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no rfcn_res101_detections.txt")
    rows = np.loadtxt(path, ndmin=2)
    if rows.shape[1] != 7:
        raise ValueError(f"{path}: expected 7 columns (frame class score x1 y1 x2 y2), got {rows.shape[1]}")
    if num_frames is None:
        num_frames = len(list((folder / "frames").glob("*.JPEG"))) or int(rows[:, 0].max()) + 1
    rows = rows[rows[:, 2] >= min_score]
    out = []
    for i in range(num_frames):
        r = rows[rows[:, 0].astype(int) == i]
        out.append(Detections(r[:, 3:7], r[:, 2], r[:, 1].astype(np.int64), True))
    return out
