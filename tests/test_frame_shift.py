"""Relocating a tracker with private state by shifting the frame (``accel.frame_shift``): the shift
itself, the coordinate bookkeeping with a tracker that only looks near where it last was, and
skip-frame CSRT on real video."""
from __future__ import annotations

import numpy as np
import pytest

from patchnet_zoo.accel import SingleObjectTracker, SkipFrameTracker
from patchnet_zoo.accel.frame_shift import FrameShift, shift_frame
from patchnet_zoo.data.readers import read_folder_sequence
from patchnet_zoo.geometry import box_iou


def _reference_shift(image, dx, dy):
    """Every output pixel reads the input pixel ``(x - dx, y - dy)``, clamped into the frame."""
    h, w = image.shape[:2]
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return image[rows][:, cols]


@pytest.mark.parametrize("dx, dy", [(0, 0), (3, 2), (-4, 1), (2, -5), (-1, -1), (40, 0), (0, -30), (-100, 100)])
def test_shift_frame_moves_the_content_and_repeats_the_edges(dx, dy):
    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    out = shift_frame(rgb, dx, dy)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    np.testing.assert_array_equal(out, _reference_shift(rgb, dx, dy))
    gray = rgb[:, :, 0]
    np.testing.assert_array_equal(shift_frame(gray, dx, dy), _reference_shift(gray, dx, dy))


class LocalSearchTracker(SingleObjectTracker):
    """A tracker whose search state is private: it looks for its template only within ``radius``
    pixels of where it last found it (sum of squared differences, whole pixels)."""

    name = "local"

    def __init__(self, radius=4):
        self.radius = radius

    def init(self, image, box):
        x, y, w, h = (int(round(v)) for v in box)
        self.template = np.asarray(image, np.float32)[y:y + h, x:x + w]
        self.box = np.array([x, y, w, h], np.float64)

    def update(self, image):
        f = np.asarray(image, np.float32)
        x0, y0, w, h = (int(v) for v in self.box)
        best = None
        for dy in range(-self.radius, self.radius + 1):
            for dx in range(-self.radius, self.radius + 1):
                x, y = x0 + dx, y0 + dy
                if 0 <= x and 0 <= y and x + w <= f.shape[1] and y + h <= f.shape[0]:
                    ssd = float(((f[y:y + h, x:x + w] - self.template) ** 2).sum())
                    if best is None or ssd < best[0]:
                        best = (ssd, x, y)
        self.box = np.array([best[1], best[2], w, h], np.float64)
        return self.box.copy()


def _scene(target_xy, seed=0):
    """A textured 96x128 background with a textured 12x12 target at ``target_xy``."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    target = np.random.default_rng(99).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    x, y = target_xy
    frame[y:y + 12, x:x + 12] = target
    return frame


def test_the_tracker_finds_a_target_beyond_its_reach_in_the_shifted_frame():
    box0 = np.array([20.0, 30.0, 12.0, 12.0])
    tracker, shift = LocalSearchTracker(), FrameShift()
    tracker.init(_scene((20, 30)), box0)
    shift.reset(box0)
    # the target moved 25 px right and 10 px down: far beyond the tracker's +-4 px
    frame = _scene((45, 40))
    blind = LocalSearchTracker()
    blind.init(_scene((20, 30)), box0)
    assert box_iou(blind.update(frame)[None], np.array([[45.0, 40, 12, 12]]))[0] == 0.0
    # given a rough estimate (3 px off), the shifted frame puts the target within reach
    seen = shift.frame_for(frame, [48.0, 38.0, 12.0, 12.0])
    np.testing.assert_array_equal(shift.offset, [0, 0])  # not yet: only once the tracker answers
    np.testing.assert_allclose(shift.answer(tracker.update(seen)), [45, 40, 12, 12])
    np.testing.assert_allclose(shift.offset, [-28, -8])  # the tracker's coordinates minus the frame's
    # the tracker lives in shifted coordinates from now on: without an estimate the same offset holds
    frame = _scene((47, 41), seed=1)
    assert shift.frame_for(frame) is not frame
    np.testing.assert_allclose(shift.answer(tracker.update(shift.frame_for(frame))), [47, 41, 12, 12])
    # a second jump, with a new estimate
    frame = _scene((80, 60), seed=2)
    np.testing.assert_allclose(shift.answer(tracker.update(shift.frame_for(frame, [78.0, 62.0, 12.0, 12.0]))),
                               [80, 60, 12, 12])
    # no shift needed: the frame itself is handed over, not a copy
    shift.reset([80.0, 60.0, 12.0, 12.0])
    frame = _scene((80, 60), seed=3)
    assert shift.frame_for(frame, [80.0, 60.0, 12.0, 12.0]) is frame
    # an answer that is not four numbers is left for the caller to report
    assert shift.answer([1.0, 2.0]) == [1.0, 2.0]


def test_skip_frame_tracker_shifts_the_key_frames_of_a_tracker_without_relocate():
    """With an exact estimate between key frames (a stand-in for PatchNet), the local tracker
    follows a target that moves 5 px a frame, 15 px from one of its key frames to the next, only
    when its key frames are shifted (the estimate is the last inter frame's: 5 px behind, within
    the tracker's +-6 px)."""
    from patchnet_zoo.matching import PatchMatcher
    from patchnet_zoo.models.patchnet import PatchNet

    positions = [(10 + 5 * k, 20 + 2 * k) for k in range(16)]
    frames = [_scene(p, seed=k) for k, p in enumerate(positions)]
    truth = np.array([[x, y, 12.0, 12.0] for x, y in positions])
    now = {"k": 0}
    exact = PatchMatcher(PatchNet())
    exact.encode = lambda frame, boxes: "template"
    exact.match_one = lambda templates, frame, box: (truth[now["k"]].tolist(), 1.0, 1)

    def run(relocate_base):
        t = SkipFrameTracker(LocalSearchTracker(radius=6), key_frame_interval=3, conf_threshold=None,
                             matcher=exact, size_damping=None, relocate_base=relocate_base)
        t.init(frames[0], truth[0])
        out = []
        for k in range(1, len(frames)):
            now["k"] = k
            out.append(t.update(frames[k]))
        return np.array(out), t

    shifted, t = run(True)
    np.testing.assert_allclose(shifted, truth[1:])  # every key frame finds the target
    assert t.stats["key_frames"] == 6 and t.stats["base_failures"] == 0
    blind, _ = run(False)
    assert box_iou(blind[-1:], truth[-1:])[0] < 0.1  # left behind from the first key frame on


def test_relocate_base_takes_true_false_or_shift():
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="relocate_base"):
            SkipFrameTracker(LocalSearchTracker(), inter="hold", relocate_base=bad)
    assert SkipFrameTracker(LocalSearchTracker(), inter="hold", relocate_base="shift")._shift is not None
    assert SkipFrameTracker(LocalSearchTracker(), inter="hold", relocate_base=False)._shift is None


def test_skip_frame_csrt_keeps_the_surfer_when_its_key_frames_are_shifted(data_root):
    """OpenCV's CSRT searches around its own last box; every other frame it loses the surfer's head
    within 20 frames, unless its key frames are shifted to where PatchNet saw the head."""
    pytest.importorskip("cv2", reason="OpenCV trackers need opencv-contrib-python-headless (the test extra)")
    from patchnet_zoo.trackers.opencv_trackers import make_base_tracker

    seq = read_folder_sequence(data_root / "sot" / "Surfer")
    n = 40
    frames = [seq.frame(i) for i in range(n)]
    ious = {}
    for relocate in (True, False):
        t = SkipFrameTracker(make_base_tracker("csrt"), key_frame_interval=2, conf_threshold=0.8,
                             relocate_base=relocate)
        t.init(frames[0], seq.boxes[0])
        boxes = np.array([t.update(f) for f in frames[1:]])
        ious[relocate] = box_iou(boxes, seq.boxes[1:n])
    assert ious[True].mean() > 0.6 and (ious[True][-10:] > 0.3).all()
    assert ious[False].mean() < 0.4 and (ious[False][-10:] < 0.1).all()
