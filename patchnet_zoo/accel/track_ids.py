"""Track ids for skip-frame detection: a box keeps its identity while it is carried, and a key
frame's detections take the identities of the carried boxes they overlap.

Between key frames every box is carried by the inter-frame method (PatchNet, hold, KCF, MOSSE), one
box from one key-frame detection, so its identity needs no guessing. On a key frame the detector's
boxes are new. Each takes the id of the carried box it overlaps best by a one-to-one assignment on
IoU within a class (Hungarian), if that IoU is at least ``min_iou``; the others get new ids. A
carried box counts where it was last seen and where it was carried to in the key frame (the larger
overlap): the first is safer in a crowd, where one more step may slide a box onto a neighbour,
the second when the video's frame rate is low and the targets move far. A carried box that no detection takes is remembered at
its last estimate for ``max_missed`` more key frames, so an object the detector misses once keeps
its id when it is found again.

This is the association of an IoU tracker (SORT without its Kalman filter): PatchNet's estimate
stands in for the motion model, and in a detect-every-N-frames loop it is the only association
that runs, once per key frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..detection.detections import Detections
from ..detection.mot_eval import box_iou_xyxy

__all__ = ["KeyFrameIdentities", "DEFAULT_MIN_IOU", "DEFAULT_MAX_MISSED"]

#: the least IoU at which a key-frame detection takes a carried box's id (SORT's default is 0.3)
DEFAULT_MIN_IOU = 0.3
#: key frames a carried box that no detection took is remembered for
DEFAULT_MAX_MISSED = 1


@dataclass
class _Lost:
    box: np.ndarray  # xyxy, float32
    class_id: int
    track_id: int
    missed: int


class KeyFrameIdentities:
    """Gives every detection of a key frame a track id (see the module docstring).

    Args:
        min_iou: the least IoU between a detection and a carried box for the detection to take
            that box's id.
        max_missed: how many key frames a carried box that no detection took stays a candidate,
            at its last estimate (0: forgotten at once).
    """

    def __init__(self, min_iou: float = DEFAULT_MIN_IOU, max_missed: int = DEFAULT_MAX_MISSED):
        if not 0.0 < float(min_iou) <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou!r}")
        if isinstance(max_missed, bool) or int(max_missed) != max_missed or max_missed < 0:
            raise ValueError(f"max_missed must be an integer >= 0, got {max_missed!r}")
        self.min_iou = float(min_iou)
        self.max_missed = int(max_missed)
        self.reset()

    def reset(self) -> None:
        """Forget every id (the next ids start at 0): call it at the start of each video."""
        self._next_id = 0
        self._lost: list[_Lost] = []

    def state(self) -> tuple:
        """A copy of what ``assign`` changes, for ``restore`` (to associate a key frame again)."""
        return self._next_id, list(self._lost)

    def restore(self, state: tuple) -> None:
        self._next_id, self._lost = state[0], list(state[1])

    def assign(self, detections: Detections, carried: Detections | None = None,
               carried_before: Detections | None = None) -> Detections:
        """``detections`` with track ids: those of the ``carried`` boxes (with their ids) or of
        remembered ones they match, new ones otherwise. ``carried_before``: the same boxes (by
        track id) one frame earlier; a detection's overlap with a carried box is then the larger of
        the two, so a box counts both where it was last seen and where it was carried to."""
        carried = Detections.empty() if carried is None else carried[carried.track_ids >= 0]
        cand_boxes = np.concatenate([carried.boxes, np.asarray([l.box for l in self._lost], np.float32).reshape(-1, 4)])
        cand_classes = np.concatenate([carried.class_ids, np.asarray([l.class_id for l in self._lost], np.int64)])
        cand_ids = np.concatenate([carried.track_ids, np.asarray([l.track_id for l in self._lost], np.int64)])
        ids = np.full(len(detections), -1, np.int64)
        taken = np.zeros(len(cand_ids), bool)
        if len(detections) and len(cand_ids):
            iou = box_iou_xyxy(detections.boxes, cand_boxes)
            if carried_before is not None and len(carried):
                before = [carried_before.boxes[carried_before.track_ids == t] for t in carried.track_ids]
                earlier = np.stack([b[0] if len(b) else c for b, c in zip(before, carried.boxes)])
                iou[:, : len(carried)] = np.maximum(iou[:, : len(carried)], box_iou_xyxy(detections.boxes, earlier))
            iou[detections.class_ids[:, None] != cand_classes[None, :]] = 0.0
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(iou, maximize=True)
            ok = iou[rows, cols] >= self.min_iou
            ids[rows[ok]] = cand_ids[cols[ok]]
            taken[cols[ok]] = True
        fresh = ids < 0
        ids[fresh] = np.arange(self._next_id, self._next_id + int(fresh.sum()))
        self._next_id += int(fresh.sum())
        self._remember(carried, taken[: len(carried)], taken[len(carried):])
        return detections.with_track_ids(ids)

    def _remember(self, carried: Detections, carried_taken: np.ndarray, lost_taken: np.ndarray) -> None:
        kept = [_Lost(l.box, l.class_id, l.track_id, l.missed + 1) for l, t in zip(self._lost, lost_taken)
                if not t and l.missed + 1 <= self.max_missed]
        if self.max_missed > 0:
            kept += [_Lost(b.copy(), int(c), int(i), 1) for b, c, i, t in
                     zip(carried.boxes, carried.class_ids, carried.track_ids, carried_taken) if not t]
        self._lost = kept

    def __repr__(self) -> str:
        return f"KeyFrameIdentities(min_iou={self.min_iou}, max_missed={self.max_missed})"
