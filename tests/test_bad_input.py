"""Bad input: a clear error or a documented behaviour, never a crash mid-video, never a silent wrong answer."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from patchnet_zoo.data.readers import read_folder_sequence
from patchnet_zoo.geometry import box_iou
from patchnet_zoo.models.patchnet import PatchNet
from patchnet_zoo.trackers import PatchNetTracker, track_video


@pytest.fixture(scope="module")
def model():
    return PatchNet()


@pytest.fixture(scope="module")
def seq(data_root):
    return read_folder_sequence(data_root / "sot" / "Crossing")


@pytest.fixture(scope="module")
def f0(seq):
    return seq.frame(0)


@pytest.fixture(scope="module")
def f1(seq):
    return seq.frame(1)


def _one_step(model, a, b, box):
    tracker = PatchNetTracker(model)
    tracker.init(a, box)
    return tracker.update(b), tracker.confidence


# ------------------------------------------------------------------------------------------ init boxes
@pytest.mark.parametrize("box, shown", [
    ([200, 150, 0, 50], "0.0"),
    ([200, 150, 17, 0], "0.0"),
    ([200, 150, -17, 50], "-17.0"),
    ([200, 150, 17, -50], "-50.0"),
    ([np.nan, 150, 17, 50], "nan"),
    ([200, 150, 17, np.inf], "inf"),
])
def test_bad_init_box_is_rejected_with_the_box_in_the_message(model, f0, box, shown):
    with pytest.raises(ValueError, match="init box") as err:
        PatchNetTracker(model).init(f0, box)
    assert shown in str(err.value)


@pytest.mark.parametrize("box", [[400, 10, 10, 10], [-50, -60, 10, 10], [10, 240, 5, 5], [-20, 10, 20, 5]])
def test_init_box_wholly_outside_is_rejected(model, f0, box):
    with pytest.raises(ValueError, match="wholly outside") as err:
        PatchNetTracker(model).init(f0, box)
    assert str(float(box[0])) in str(err.value)


@pytest.mark.parametrize("box", [[[1, 2, 3, 4], [5, 6, 7, 8]], [1, 2, 3], "1,2,3,4"])
def test_init_wants_exactly_one_box(model, f0, box):
    with pytest.raises((ValueError, TypeError)):
        PatchNetTracker(model).init(f0, box)


def test_failed_init_leaves_no_half_state(model, f0, f1, seq):
    tracker = PatchNetTracker(model)
    tracker.init(f0, seq.boxes[0])
    with pytest.raises(ValueError):
        tracker.init(f0, [0, 0, 0, 0])
    assert np.isfinite(tracker.update(f1)).all()  # the previous track is still usable


def test_box_partly_outside_works_and_is_mean_filled(model, f0, f1):
    """The part outside the frame is the model's mean colour: the template equals the one cut from
    a frame padded with that colour."""
    box = [-8.0, 150.0, 17.0, 50.0]  # 8 of 17 columns left of the frame
    new, conf = _one_step(model, f0, f1, box)
    assert np.isfinite(new).all() and 0 <= conf <= 1
    tracker = PatchNetTracker(model)
    tracker.init(f0, box)
    pad = 32
    mean = model.pixel_mean.view(3).numpy()
    padded = np.empty((f0.shape[0], f0.shape[1] + pad, 3), np.float32)
    padded[:] = mean
    padded[:, pad:] = f0
    ref = tracker.matcher.encode(padded, [box[0] + pad, *box[1:]])
    torch.testing.assert_close(tracker._init_templates.filters, ref.filters, atol=1e-3, rtol=1e-4)


# --------------------------------------------------------------------------------------- frame formats
def test_grayscale_frames(model, f0, f1, seq):
    g0 = np.round(f0.mean(2)).astype(np.uint8)
    g1 = np.round(f1.mean(2)).astype(np.uint8)
    hw, _ = _one_step(model, g0, g1, seq.boxes[0])
    hw1, _ = _one_step(model, g0[..., None], g1[..., None], seq.boxes[0])
    rgb, _ = _one_step(model, np.repeat(g0[..., None], 3, 2), np.repeat(g1[..., None], 3, 2), seq.boxes[0])
    np.testing.assert_array_equal(hw, hw1)
    np.testing.assert_array_equal(hw, rgb)


def test_rgba_frames_drop_alpha(model, f0, f1, seq):
    alpha = np.random.default_rng(0).integers(0, 256, f0.shape[:2], dtype=np.uint8)
    rgba, _ = _one_step(model, np.dstack([f0, alpha]), np.dstack([f1, alpha[::-1]]), seq.boxes[0])
    rgb, _ = _one_step(model, f0, f1, seq.boxes[0])
    np.testing.assert_array_equal(rgba, rgb)


@pytest.mark.parametrize("view", ["mirror", "subsample", "column_slice", "torch_chw"])
def test_non_contiguous_frames(model, f0, f1, seq, view):
    x, y, w, h = seq.boxes[0]
    if view == "mirror":
        make, box = (lambda f: f[:, ::-1]), [f0.shape[1] - x - w, y, w, h]
    elif view == "subsample":
        make, box = (lambda f: f[::2, ::2]), [x / 2, y / 2, w / 2, h / 2]
    elif view == "column_slice":
        make, box = (lambda f: f[:, 20:]), [x - 20, y, w, h]
    else:
        make, box = (lambda f: torch.from_numpy(f).permute(2, 0, 1)), [x, y, w, h]
    a0, a1 = make(f0), make(f1)
    assert not (a0.is_contiguous() if torch.is_tensor(a0) else a0.flags.c_contiguous)
    got, c1 = _one_step(model, a0, a1, box)
    if torch.is_tensor(a0):
        want, c2 = _one_step(model, a0.contiguous(), a1.contiguous(), box)
    else:
        want, c2 = _one_step(model, np.ascontiguousarray(a0), np.ascontiguousarray(a1), box)
    np.testing.assert_array_equal(got, want)
    assert c1 == c2
    if view == "mirror":  # and the answer is the mirrored answer, not a silent wrong one
        plain, _ = _one_step(model, f0, f1, seq.boxes[0])
        assert abs((f0.shape[1] - got[0] - got[2]) - plain[0]) < 0.25


@pytest.mark.parametrize("kind", ["float32_01", "float64_01", "float32_255", "torch_float_01"])
def test_float_frames_match_uint8(model, f0, f1, seq, kind):
    conv = {
        "float32_01": lambda f: f.astype(np.float32) / 255,
        "float64_01": lambda f: f.astype(np.float64) / 255,
        "float32_255": lambda f: f.astype(np.float32),
        "torch_float_01": lambda f: torch.from_numpy(f).permute(2, 0, 1).float() / 255,
    }[kind]
    want, c_want = _one_step(model, f0, f1, seq.boxes[0])
    got, c_got = _one_step(model, conv(f0), conv(f1), seq.boxes[0])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert c_got == pytest.approx(c_want)


@pytest.mark.parametrize("frame, err", [
    (np.zeros((240, 360, 5), np.uint8), ValueError),
    (np.zeros((2, 240, 360, 3), np.uint8), ValueError),
    (np.full((240, 360, 3), np.nan, np.float32), ValueError),
    ("frame.jpg", TypeError),
    (None, TypeError),
])
def test_unusable_frames_raise_clear_errors(model, f0, seq, frame, err):
    tracker = PatchNetTracker(model)
    tracker.init(f0, seq.boxes[0])
    before = tracker.box.copy()
    with pytest.raises(err):
        tracker.update(frame)
    np.testing.assert_array_equal(tracker.box, before)  # the state is untouched


# ------------------------------------------------------------------------------------ during tracking
def test_frames_of_changing_size(model, seq):
    """Documented: the box stays in the pixel coordinates of each new frame, then is kept usable
    (centre inside the frame, size at most the frame's). No crash, always finite."""
    import cv2

    frames = [seq.frame(i) for i in range(6)]
    sizes = [None, (180, 120), (40, 30), (720, 480), (360, 240), (17, 9)]
    tracker = PatchNetTracker(model)
    tracker.init(frames[0], seq.boxes[0])
    for frame, size in zip(frames[1:], sizes[1:]):
        f = cv2.resize(frame, size) if size else frame
        box = tracker.update(f)
        h, w = f.shape[:2]
        assert np.isfinite(box).all() and (box[2:] > 0).all()
        assert box[2] <= max(w, tracker.min_size) + 1e-9 and box[3] <= max(h, tracker.min_size) + 1e-9
        cx, cy = box[:2] + box[2:] / 2
        assert 0 <= cx <= w and 0 <= cy <= h
        assert 0 <= tracker.confidence <= 1


def _moving_square_video(n=30, w=160, h=120, speed=9):
    rng = np.random.default_rng(0)
    background = np.full((h, w, 3), 110, np.uint8)
    texture = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    frames, boxes = [], []
    for i in range(n):
        f = background.copy()
        x0 = 100 + speed * i
        xs = slice(max(x0, 0), min(x0 + 24, w))
        if xs.start < xs.stop:
            f[48:72, xs] = texture[:, xs.start - x0 : xs.stop - x0]
        frames.append(f)
        boxes.append([x0, 48, 24, 24])
    return frames, np.asarray(boxes, float)


def test_target_leaving_the_frame_clamps_the_box(model):
    """Documented: a track that runs out of the frame stops at the border (centre clamped inside)."""
    frames, gt = _moving_square_video()
    boxes, conf = track_video(frames, gt[0], PatchNetTracker(model), show_progress=False)
    assert np.isfinite(boxes).all() and np.isfinite(conf).all()
    h, w = frames[0].shape[:2]
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    assert (centres >= 0).all() and (centres[:, 0] <= w).all() and (centres[:, 1] <= h).all()
    assert centres[-1, 0] > w - 24  # it followed the square to the right border
    assert centres[1, 0] > centres[0, 0]  # and did track it while it was visible


def test_a_box_that_drifted_wholly_outside_is_pulled_back(model, f0, f1, seq):
    tracker = PatchNetTracker(model)
    tracker.init(f0, seq.boxes[0])
    tracker.box = np.array([5000.0, -3000.0, 17.0, 50.0])  # as if it had drifted far away
    box = tracker.update(f1)
    h, w = f1.shape[:2]
    cx, cy = box[:2] + box[2:] / 2
    assert np.isfinite(box).all() and 0 <= cx <= w and 0 <= cy <= h


def test_non_finite_prediction_keeps_the_last_box(f0, seq):
    from patchnet_zoo.matching import MatchResult, PatchMatcher

    matcher = PatchMatcher(PatchNet())
    matcher.match = lambda templates, frame, search_boxes=None: MatchResult(
        torch.full((len(templates), 4), float("nan")), torch.ones(len(templates)))
    matcher.match_one = lambda templates, frame, box: ([float("nan")] * 4, 1.0, 1)
    tracker = PatchNetTracker(matcher)
    tracker.init(f0, seq.boxes[0])
    box = tracker.update(f0)
    np.testing.assert_allclose(box, seq.boxes[0])
    assert tracker.confidence == 0.0


@pytest.mark.parametrize("value", [0, 128, 255])
def test_uniform_frames_keep_the_box_with_zero_confidence(model, seq, value):
    """A fade to black (or any single-colour frame) has nothing to match: the box stays, confidence
    is 0 and no template is learned from it; tracking resumes when the picture comes back."""
    frames = [seq.frame(i) for i in range(3)]
    tracker = PatchNetTracker(model, template_update="both")
    tracker.init(frames[0], seq.boxes[0])
    before = tracker.update(frames[1])
    recent = tracker._recent_templates
    blank = np.full_like(frames[0], value)
    for _ in range(3):
        np.testing.assert_array_equal(tracker.update(blank), before)
        assert tracker.confidence == 0.0
    assert tracker._recent_templates is recent
    after = tracker.update(frames[2])
    assert tracker.confidence > 0 and float(box_iou(after, seq.boxes[2])[0]) > 0.5


def test_bad_frame_mid_video_names_the_frame(model, seq):
    frames = [seq.frame(i) for i in range(4)]
    frames[2] = np.full(frames[2].shape, np.nan, np.float32)
    with pytest.raises(ValueError, match="frame 2"):
        track_video(frames, seq.boxes[0], PatchNetTracker(model), show_progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        boxes, conf = track_video(frames, seq.boxes[0], PatchNetTracker(model), show_progress=False,
                                  on_bad_frame="keep")
    assert any("frame 2" in str(w.message) for w in caught)
    np.testing.assert_array_equal(boxes[2], boxes[1])
    assert conf[2] == 0.0 and np.isfinite(boxes).all()


def test_no_frames(model, seq):
    with pytest.raises(ValueError, match="no frames"):
        track_video([], seq.boxes[0], PatchNetTracker(model), show_progress=False)


# ------------------------------------------------------------------------------------------ video files
def test_missing_video_file(model, tmp_path):
    path = tmp_path / "does_not_exist.mp4"
    with pytest.raises(FileNotFoundError, match="does_not_exist.mp4"):
        track_video(path, [1, 1, 5, 5], PatchNetTracker(model), show_progress=False)
    with pytest.raises(FileNotFoundError, match="does_not_exist.mp4"):
        track_video(str(path), [1, 1, 5, 5], PatchNetTracker(model), show_progress=False)


@pytest.mark.parametrize("name, content", [("garbage.mp4", None), ("empty.avi", b""), ("text.mpg", b"not a video\n")])
def test_unreadable_video_file(model, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
                     if content is None else content)
    with pytest.raises(OSError, match=name):
        track_video(path, [1, 1, 5, 5], PatchNetTracker(model), show_progress=False)


def test_a_folder_is_not_a_video(model, tmp_path):
    with pytest.raises(OSError):
        track_video(tmp_path, [1, 1, 5, 5], PatchNetTracker(model), show_progress=False)
