"""Identity metrics of multi-object tracking on MOTChallenge ground truth: CLEAR MOT and IDF1.

Written out here so the benchmark needs no optional package; the tests check the figures against
``py-motmetrics`` on real sequences. A ground-truth box and a hypothesis match at IoU >= 0.5.

* **CLEAR MOT** (Bernardin and Stiefelhagen, 2008). Frame by frame, a ground-truth object keeps the
  hypothesis it was matched to last while they still match; the other pairs are chosen by a
  one-to-one assignment of least total ``1 - IoU`` (Hungarian). An *identity switch* is an object
  matched to another hypothesis id than at its previous match. ``MOTA = 1 - (FN + FP + IDSW) / GT``.
* **IDF1** (Ristani et al., 2016): one one-to-one mapping of ground-truth tracks to hypothesis tracks
  for the whole sequence, the one that maximises the frames on which a mapped pair matches
  (``IDTP``); ``IDF1 = 2 IDTP / (GT boxes + hypothesis boxes)``.
* **Ignore regions** (``FrameTruth.ignore``: MOT17's distractors, static people, people on
  vehicles and barely visible pedestrians): a hypothesis that matches no counted box of its frame
  but matches an ignore region is left out of both metrics, as the MOTChallenge toolkit does.
"""
from __future__ import annotations

import numpy as np

from .detections import Detections
from .mot_eval import FrameTruth, box_iou_xyxy

__all__ = ["identity_metrics", "pool", "IDENTITY_IOU"]

#: IoU at which a hypothesis matches a ground-truth box (MOTChallenge's)
IDENTITY_IOU = 0.5
_INVALID = 1e6  # the cost of a pair that may not match (the assignment then leaves it out)


def _kept_hypotheses(det: Detections, truth: FrameTruth, thr: float) -> Detections:
    """``det`` without the hypotheses that match only an ignore region."""
    if not len(det) or not len(truth.ignore):
        return det
    counted = box_iou_xyxy(det.boxes, truth.boxes).max(1, initial=0.0) >= thr if len(truth.boxes) \
        else np.zeros(len(det), bool)
    ignored = box_iou_xyxy(det.boxes, truth.ignore).max(1) >= thr
    return det[counted | ~ignored]


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    if cost.size == 0:
        return []
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < _INVALID]


def identity_metrics(tracks: list[Detections], truths: list[FrameTruth], iou_threshold: float = IDENTITY_IOU) -> dict:
    """CLEAR MOT and IDF1 of one sequence (see the module docstring).

    Args:
        tracks: per frame the hypotheses, every box with a track id (``Detections.track_ids`` >= 0:
            e.g. from ``SkipFrameDetector(track_ids=True)``).
        truths: per frame the ground truth with ids (``mot_eval.load_mot_ground_truth``).

    Returns:
        ``{"mota", "idf1", "idp", "idr", "idtp", "id_switches", "false_positives", "misses",
        "matches", "gt_boxes", "hypothesis_boxes", "gt_tracks", "hypothesis_tracks", "frames"}``
        (``pool`` combines several sequences' results).
    """
    if len(tracks) != len(truths):
        raise ValueError(f"{len(tracks)} frames of hypotheses for {len(truths)} frames of ground truth")
    thr = float(iou_threshold)
    last: dict[int, int] = {}  # ground-truth id -> hypothesis id of its last match
    pair_frames: dict[tuple[int, int], int] = {}  # (gt id, hypothesis id) -> frames on which they match
    gt_boxes = hyp_boxes = matches = switches = 0
    gt_ids_seen: set[int] = set()
    hyp_ids_seen: set[int] = set()
    for det, truth in zip(tracks, truths):
        if len(det) and (det.track_ids < 0).any():
            raise ValueError("every hypothesis needs a track id >= 0 (SkipFrameDetector(track_ids=True))")
        det = _kept_hypotheses(det, truth, thr)
        g_ids, h_ids = truth.ids.tolist(), det.track_ids.tolist()
        gt_boxes += len(g_ids)
        hyp_boxes += len(h_ids)
        gt_ids_seen.update(g_ids)
        hyp_ids_seen.update(h_ids)
        if not g_ids or not h_ids:
            continue
        iou = box_iou_xyxy(truth.boxes, det.boxes)
        valid = iou >= thr
        for gi, hi in zip(*np.nonzero(valid)):
            key = (g_ids[gi], h_ids[hi])
            pair_frames[key] = pair_frames.get(key, 0) + 1
        cost = np.where(valid, 1.0 - iou, _INVALID)
        pairs = []
        for gi, g in enumerate(g_ids):  # correspondences that still hold are kept
            if g in last and last[g] in h_ids:
                hi = h_ids.index(last[g])
                if cost[gi, hi] < _INVALID:  # still a match, not taken by an earlier kept pair
                    pairs.append((gi, hi))
                    cost[gi, :] = _INVALID
                    cost[:, hi] = _INVALID
        pairs += _assign(cost)
        for gi, hi in pairs:
            g, h = g_ids[gi], h_ids[hi]
            if g in last and last[g] != h:
                switches += 1
            last[g] = h
        matches += len(pairs)
    misses, false_pos = gt_boxes - matches, hyp_boxes - matches
    idtp = _global_identity_matches(pair_frames, sorted(gt_ids_seen), sorted(hyp_ids_seen))
    return {
        "mota": 1.0 - (misses + false_pos + switches) / gt_boxes if gt_boxes else float("nan"),
        "idf1": 2.0 * idtp / (gt_boxes + hyp_boxes) if gt_boxes + hyp_boxes else float("nan"),
        "idp": idtp / hyp_boxes if hyp_boxes else float("nan"),
        "idr": idtp / gt_boxes if gt_boxes else float("nan"),
        "idtp": idtp,
        "id_switches": switches,
        "false_positives": false_pos,
        "misses": misses,
        "matches": matches,
        "gt_boxes": gt_boxes,
        "hypothesis_boxes": hyp_boxes,
        "gt_tracks": len(gt_ids_seen),
        "hypothesis_tracks": len(hyp_ids_seen),
        "frames": len(truths),
    }


def _global_identity_matches(pair_frames: dict, gt_ids: list[int], hyp_ids: list[int]) -> int:
    """IDTP: the most frames of matching pairs under one one-to-one mapping of track ids."""
    if not pair_frames:
        return 0
    from scipy.optimize import linear_sum_assignment

    gi = {g: i for i, g in enumerate(gt_ids)}
    hi = {h: i for i, h in enumerate(hyp_ids)}
    count = np.zeros((len(gt_ids), len(hyp_ids)))
    for (g, h), n in pair_frames.items():
        count[gi[g], hi[h]] = n
    rows, cols = linear_sum_assignment(count, maximize=True)
    return int(count[rows, cols].sum())


def pool(results: list[dict]) -> dict:
    """One result for several sequences, counts summed (MOTChallenge's way of combining them, unlike
    a mean of per-sequence scores): ``mota``, ``idf1``, ``id_switches``, ``false_positives``,
    ``misses``, ``gt_boxes``, ``hypothesis_boxes``, ``sequences``."""
    keys = ("idtp", "id_switches", "false_positives", "misses", "gt_boxes", "hypothesis_boxes")
    tot = {k: sum(r[k] for r in results) for k in keys}
    gt, hyp = tot["gt_boxes"], tot["hypothesis_boxes"]
    return {"mota": 1.0 - (tot["misses"] + tot["false_positives"] + tot["id_switches"]) / gt if gt else float("nan"),
            "idf1": 2.0 * tot["idtp"] / (gt + hyp) if gt + hyp else float("nan"),
            **{k: tot[k] for k in keys if k != "idtp"}, "sequences": len(results)}
