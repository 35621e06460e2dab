"""NanoTrack v2 with a movable tracking state, and SkipFrameTracker handing it PatchNet's estimate."""
from __future__ import annotations

import numpy as np
import pytest

from patchnet_zoo.accel import PysotAdapter, SingleObjectTracker, SkipFrameTracker, adapt_tracker
from patchnet_zoo.data.readers import read_folder_sequence
from patchnet_zoo.eval.otb import iou
from patchnet_zoo.trackers.opencv_trackers import (
    create_opencv_tracker, default_weights_root, find_nanotrack_weights, make_base_tracker,
)


@pytest.fixture(scope="module")
def nanotrack_ok():
    try:
        find_nanotrack_weights(default_weights_root())
    except FileNotFoundError as e:
        pytest.skip(f"NanoTrack v2 ONNX files are needed for this test: {e}")


def _seq(data_root, name, n):
    seq = read_folder_sequence(data_root / "sot" / name)
    return seq, [seq.frame(i) for i in range(n)]


def _iou(a, b) -> float:
    return float(iou(np.asarray(a)[None], np.asarray(b)[None])[0])


def test_nanotrack_follows_a_real_target_like_opencvs(data_root, nanotrack_ok):
    seq, frames = _seq(data_root, "bag", 40)
    ours, theirs = make_base_tracker("nanotrack"), create_opencv_tracker("nanotrack")
    scores = {}
    for name, t in (("ours", ours), ("opencv", theirs)):
        t.init(frames[0], seq.boxes[0])
        scores[name] = np.mean([_iou(t.update(f), g) for f, g in zip(frames[1:], seq.boxes[1:40])])
    assert scores["ours"] > 0.6, scores
    assert abs(scores["ours"] - scores["opencv"]) < 0.1, scores  # the same network and algorithm
    assert 0.0 <= ours.score <= 1.0 and ours.gflops_per_frame == pytest.approx(theirs.gflops_per_frame)


def test_relocate_finds_a_target_that_moved_out_of_reach(data_root, nanotrack_ok):
    """ball1: the ball is 112 px from its frame-0 position at frame 20 (the box is 48 px). Searching
    around frame 0's position loses it; a hint at frame 19's true box finds it."""
    seq, frames = _seq(data_root, "ball1", 21)
    plain, hinted = make_base_tracker("nanotrack"), make_base_tracker("nanotrack")
    for t in (plain, hinted):
        t.init(frames[0], seq.boxes[0])
    hinted.relocate(seq.boxes[19])
    got_plain, got_hinted = _iou(plain.update(frames[20]), seq.boxes[20]), _iou(hinted.update(frames[20]), seq.boxes[20])
    assert got_hinted > 0.6 and got_hinted > got_plain + 0.3, (got_plain, got_hinted)


def test_a_wrong_hint_falls_back_to_the_own_state(data_root, nanotrack_ok):
    seq, frames = _seq(data_root, "bag", 3)
    h, w = frames[0].shape[:2]
    t = make_base_tracker("nanotrack", hint_min_score=0.99)
    t.init(frames[0], seq.boxes[0])
    far = np.array([w - 60.0, h - 60.0, 50.0, 50.0])  # a corner the bag never visits
    assert _iou(far, seq.boxes[1]) == 0
    t.relocate(far)
    box = t.update(frames[1])
    assert t.hint_fallbacks == 1 and _iou(box, seq.boxes[1]) > 0.5
    t.relocate([np.nan, 0, 10, 10])  # ignored: no hint, no extra search
    t.update(frames[2])
    assert t.hint_fallbacks == 1


def test_relocate_frames_compounds_the_size_smoothing(data_root, nanotrack_ok):
    """Relocated to frame 30's box, an update standing for 3 frames moves the size as far from the
    hint's size as 3 per-frame smoothing steps towards the same measurement would: (1 - (1 - l)^3) / l
    times as far as a 1-frame update, in the same direction, with the same centre."""
    seq, frames = _seq(data_root, "bag", 31)
    sizes = {}
    for k in (1, 3):
        t = make_base_tracker("nanotrack")
        t.init(frames[0], seq.boxes[0])
        t.relocate(seq.boxes[30], frames=k)
        sizes[k] = t.update(frames[30])
    start = np.asarray(seq.boxes[30][2:], dtype=np.float64)  # the hint's size (relocate_size)
    np.testing.assert_allclose(sizes[1][:2] + sizes[1][2:] / 2, sizes[3][:2] + sizes[3][2:] / 2, atol=1e-6)
    step1, step3 = sizes[1][2:] - start, sizes[3][2:] - start
    assert np.all(np.abs(step1) > 0.1), step1  # the 1-frame update did move the size
    # both axes move by lr_k times the same gap; lr_3 / lr_1 = (1 - (1 - l)^3) / l, in [2.03, 3) for
    # the per-frame rate l <= 0.37
    ratio = step3 / step1
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)
    assert 2.0 < ratio[0] < 3.0, ratio
    with pytest.raises(ValueError, match="frames"):
        t.relocate(seq.boxes[30], frames=0)


class _FramesRecorder(SingleObjectTracker):
    """Answers the ground truth; records ``relocate(box, frames)``."""

    def __init__(self, boxes):
        self.boxes, self.i, self.name = boxes, 0, "frames-recorder"
        self.frames: list[tuple[int, int]] = []

    def init(self, image, box):
        self.i = 0

    def update(self, image):
        return self.boxes[self.i].copy()

    def relocate(self, box, frames=1):
        self.frames.append((self.i, frames))


def test_skip_frame_tracker_tells_the_base_tracker_how_many_frames_passed(data_root):
    from patchnet_zoo.models.patchnet import PatchNet

    seq, frames = _seq(data_root, "bag", 10)
    rec = _FramesRecorder(seq.boxes)
    t = SkipFrameTracker(rec, key_frame_interval=4, conf_threshold=None, matcher=PatchNet())
    t.init(frames[0], seq.boxes[0])
    for i, f in enumerate(frames[1:], 1):
        rec.i = i
        t.update(f)
    assert rec.frames == [(4, 4), (8, 4)]
    # through a convention adapter: passed on where the wrapped tracker's relocate takes it
    a = PysotAdapter(_FramesRecorder(seq.boxes))
    a.relocate([1.0, 2.0, 3.0, 4.0], frames=3)
    a.relocate([1.0, 2.0, 3.0, 4.0])
    assert a.tracker.frames == [(0, 3), (0, 1)]


class _Recorder(SingleObjectTracker):
    """A base tracker that answers the ground truth and records every relocate call."""

    def __init__(self, boxes):
        self.boxes, self.i, self.name = boxes, 0, "recorder"
        self.relocated: list[tuple[int, np.ndarray]] = []

    def init(self, image, box):
        self.i = 0

    def update(self, image):
        return self.boxes[self.i].copy()

    def relocate(self, box):
        self.relocated.append((self.i, np.asarray(box, dtype=np.float64)))


def test_skip_frame_tracker_hands_the_base_tracker_its_estimate_before_each_key_frame(data_root):
    from patchnet_zoo.models.patchnet import PatchNet

    seq, frames = _seq(data_root, "bag", 10)
    rec = _Recorder(seq.boxes)
    t = SkipFrameTracker(rec, key_frame_interval=3, conf_threshold=None, matcher=PatchNet())
    t.init(frames[0], seq.boxes[0])
    out = [seq.boxes[0]]
    for i, f in enumerate(frames[1:], 1):
        rec.i = i
        out.append(t.update(f))
    # key frames 3, 6, 9; each relocate carries the inter-frame box of the frame before
    assert [i for i, _ in rec.relocated] == [3, 6, 9]
    for i, box in rec.relocated:
        np.testing.assert_allclose(box, out[i - 1])
    rec2 = _Recorder(seq.boxes)
    t2 = SkipFrameTracker(rec2, key_frame_interval=3, conf_threshold=None, matcher=PatchNet(), relocate_base=False)
    t2.init(frames[0], seq.boxes[0])
    for f in frames[1:4]:
        t2.update(f)
    assert rec2.relocated == []


class _PysotLike:
    """The state layout of a pysot ``SiameseTracker`` after ``init``."""

    def init(self, img, bbox):
        self.center_pos = np.array([bbox[0] + (bbox[2] - 1) / 2, bbox[1] + (bbox[3] - 1) / 2])
        self.size = np.array([bbox[2], bbox[3]])

    def track(self, img):
        return {"bbox": [self.center_pos[0] - (self.size[0] - 1) / 2, self.center_pos[1] - (self.size[1] - 1) / 2,
                         *self.size], "best_score": 0.9}


def test_pysot_trackers_are_relocated_through_their_state():
    a = adapt_tracker(_PysotLike())
    assert isinstance(a, PysotAdapter)
    frame = np.zeros((100, 100, 3), np.uint8)
    a.init(frame, [10, 10, 20, 20])
    a.relocate([40.5, 30, 24, 16])
    np.testing.assert_allclose(a.update(frame), [40.5, 30, 24, 16])
    a.relocate([np.inf, 0, 1, 1])  # ignored
    np.testing.assert_allclose(a.update(frame), [40.5, 30, 24, 16])


def test_missing_weights_say_where_they_were_looked_for_and_what_to_set(tmp_path, monkeypatch):
    """The default weights folder is relative to the working directory: a user who runs from
    elsewhere is told which folders were searched, that directory, and the variable to set."""
    monkeypatch.delenv("PATCHNET_ZOO_WEIGHTS", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        find_nanotrack_weights()
    msg = str(e.value)
    assert "nanotrack_v2" in msg and str(tmp_path) in msg and "$PATCHNET_ZOO_WEIGHTS" in msg
    with pytest.raises(FileNotFoundError, match="weights_dir argument"):
        find_nanotrack_weights(tmp_path)
