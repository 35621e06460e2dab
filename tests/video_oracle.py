"""Test doubles for the video tests: a detector that knows the ground truth of every frame it has
been shown once (an "oracle"), and a PatchNet matcher that checks where its templates came from.

The oracle identifies a frame by a hash of its pixels, so it learns nothing from the loop that
calls it: it records which video and frame each call was really made on. With it, key frames
return the ground truth exactly and propagated frames differ from it, so the effect of skipping
(and any mixing of videos) is measurable.
"""
from __future__ import annotations

import hashlib

import numpy as np


def frame_digest(frame) -> str:
    """Hash of an RGB frame given as HxWx3 numpy or 3xHxW tensor (same pixels, same digest)."""
    if hasattr(frame, "detach"):
        a = frame.detach().cpu()
        if a.ndim == 3 and a.shape[0] == 3:
            a = a.permute(1, 2, 0)
        frame = a.contiguous().numpy()
    a = np.ascontiguousarray(frame, dtype=np.uint8)
    return hashlib.blake2b(a.tobytes() + str(a.shape).encode(), digest_size=16).hexdigest()


class FrameIndex:
    """``digest -> (video_id, frame index in the video, FrameTargets)`` over clips."""

    def __init__(self, clips):
        self.table: dict[str, tuple[str, int, object]] = {}
        for clip in clips:
            for i, frame in enumerate(clip.frames):
                self.table[frame_digest(frame)] = (clip.video_id, int(clip.start + i), clip.targets[i])

    def lookup(self, frame):
        key = frame_digest(frame)
        if key not in self.table:
            raise KeyError("a frame the oracle was never shown")
        return self.table[key]


class OracleDetector:
    """``frame -> (N, 6) x1,y1,x2,y2,score,class``: the frame's ground truth, score 1. Records
    ``calls`` as ``(video_id, frame_index)``."""

    def __init__(self, index: FrameIndex):
        self.index = index
        self.calls: list[tuple[str, int]] = []
        self.__name__ = "oracle"

    def __call__(self, frame):
        vid, i, t = self.index.lookup(frame)
        self.calls.append((vid, i))
        b = np.asarray(t.boxes, dtype=np.float64).reshape(-1, 4)
        out = np.zeros((len(b), 6))
        out[:, :2], out[:, 2:4] = b[:, :2], b[:, :2] + b[:, 2:]
        out[:, 4] = 1.0
        out[:, 5] = t.labels
        return out


def make_spy_matcher(index: FrameIndex, matcher):
    """A ``PatchMatcher`` that tags the templates it encodes with their frame's video and fails
    (``AssertionError``) when templates of one video are matched, or updated, in a frame of another."""
    from patchnet_zoo.matching import PatchMatcher, Templates

    class _Tagged(Templates):
        video_id: str = ""

        def select(self, keep):
            t = _Tagged(self.filters[keep], self.boxes[keep])
            t.video_id = self.video_id
            return t

    class SpyMatcher(PatchMatcher):
        def __init__(self):
            super().__init__(matcher.model, min_size=matcher.min_size)
            self.encoded: list[str] = []
            self.matched: list[tuple[str, str]] = []

        def encode(self, frame, boxes):
            t = super().encode(frame, boxes)
            tagged = _Tagged(t.filters, t.boxes)
            tagged.video_id = index.lookup(frame)[0]
            self.encoded.append(tagged.video_id)
            return tagged

        def match(self, templates, frame, search_boxes=None):
            vid = index.lookup(frame)[0]
            self.matched.append((templates.video_id, vid))
            assert templates.video_id == vid, f"templates of {templates.video_id} matched in {vid}"
            return super().match(templates, frame, search_boxes)

        def blend(self, templates, frame, boxes, rows, rate):
            vid = index.lookup(frame)[0]
            assert templates.video_id == vid, f"templates of {templates.video_id} updated in {vid}"
            blended = super().blend(templates, frame, boxes, rows, rate)
            tagged = _Tagged(blended.filters, blended.boxes)
            tagged.video_id = templates.video_id
            return tagged

    return SpyMatcher()
