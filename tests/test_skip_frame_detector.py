"""``SkipFrameDetector``: key frames, batched PatchNet propagation (class and score kept), frame
boundary handling, the adaptive policy, reset, and the gain over hold on real pedestrians."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from patchnet_zoo.accel import SkipFrameDetector, accelerate_detector
from patchnet_zoo.detection import Detections
from patchnet_zoo.detection.mot_eval import box_iou_xyxy


def _scene(n: int, step=(6.0, 2.0), size=(40, 30), hw=(160, 240), seed=0, start=(40.0, 60.0)):
    """A textured rectangle moving over a textured background; returns frames and true xyxy boxes."""
    rng = np.random.default_rng(seed)
    bg = (rng.random((hw[0] // 8, hw[1] // 8, 3)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    obj = (rng.random((size[1] // 5, size[0] // 5, 3)) * 255).astype(np.uint8).repeat(5, 0).repeat(5, 1)
    frames, boxes = [], []
    for i in range(n):
        x, y = start[0] + step[0] * i, start[1] + step[1] * i
        f = bg.copy()
        x0, y0 = int(round(x)), int(round(y))
        xs, ys = max(x0, 0), max(y0, 0)
        xe, ye = min(x0 + size[0], hw[1]), min(y0 + size[1], hw[0])
        if xe > xs and ye > ys:
            f[ys:ye, xs:xe] = obj[ys - y0:ye - y0, xs - x0:xe - x0]
        frames.append(f)
        boxes.append([x0, y0, x0 + size[0], y0 + size[1]])
    return frames, np.asarray(boxes, np.float32)


class Oracle:
    """A detector that knows the truth: one box of class 3, score 0.77; counts its calls."""

    def __init__(self, boxes):
        self.boxes, self.i, self.calls = boxes, 0, 0

    def __call__(self, frame):
        self.calls += 1
        return Detections(self.boxes[self.i:self.i + 1], [0.77], [3], True)


class FrameOracle(Oracle):
    """An ``Oracle`` that finds the frame it is given among ``frames`` itself (``process`` feeds
    the frames, nobody sets ``i``)."""

    def __init__(self, boxes, frames):
        super().__init__(boxes)
        self.frames = frames

    def __call__(self, frame):
        self.i = next(i for i, f in enumerate(self.frames) if f is frame)
        return super().__call__(frame)


def _run(det, oracle, frames):
    out = []
    for i, f in enumerate(frames):
        oracle.i = i
        out.append(det(f))
    return out


@pytest.fixture(scope="module")
def matcher():
    from patchnet_zoo.trackers.patchnet_tracker import load_pretrained_patchnet

    return load_pretrained_patchnet("patchnet")


def test_patchnet_carries_boxes_between_key_frames(matcher):
    frames, truth = _scene(12)
    oracle = Oracle(truth)
    det = SkipFrameDetector(oracle, key_frame_interval=4, matcher=matcher)
    out = _run(det, oracle, frames)
    assert oracle.calls == 3 and det.stats["key_frames"] == 3 and det.stats["frames"] == 12
    assert det.stats["key_frame_ratio"] == pytest.approx(0.25)
    for i, d in enumerate(out):
        assert len(d) == 1 and d.class_ids[0] == 3 and d.scores[0] == pytest.approx(0.77)
        assert bool(d.from_key_frame[0]) == (i % 4 == 0)
    ious = [box_iou_xyxy(out[i].boxes, truth[i:i + 1])[0, 0] for i in range(12) if i % 4]
    assert min(ious) > 0.7  # it follows the box
    hold = SkipFrameDetector(Oracle(truth), key_frame_interval=4, inter="hold")
    oracle2 = hold.detector.fn if hasattr(hold.detector, "fn") else None
    hold_out = _run(hold, oracle2, frames)
    hold_ious = [box_iou_xyxy(hold_out[i].boxes, truth[i:i + 1])[0, 0] for i in range(12) if i % 4]
    assert np.mean(ious) > np.mean(hold_ious) + 0.2


def test_all_boxes_in_one_batched_match_per_frame(matcher):
    from patchnet_zoo.matching import PatchMatcher

    frames, truth = _scene(6)
    three = np.concatenate([truth[:, None], truth[:, None] + [[100, 60, 100, 60]], truth[:, None] + [[0, 70, 0, 70]]], 1)

    class Many:
        i = 0

        def __call__(self, frame):
            return Detections(three[self.i], [0.9, 0.8, 0.7], [0, 1, 2], True)

    class Counting(PatchMatcher):
        calls: list = []

        def match(self, templates, frame, search_boxes=None):
            Counting.calls.append(len(templates))
            return super().match(templates, frame, search_boxes)

    many = Many()
    det = SkipFrameDetector(many, key_frame_interval=6, matcher=Counting(matcher))
    for i, f in enumerate(frames):
        many.i = i
        d = det(f)
    assert Counting.calls == [3] * 5  # one call per inter frame, all three boxes in it
    assert d.class_ids.tolist() == [0, 1, 2] and d.scores.tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert det.stats["boxes_propagated"] == 15


@pytest.mark.parametrize("boundary", ["clip", "drop"])
def test_boxes_leaving_the_frame(matcher, boundary):
    frames, truth = _scene(10, step=(14.0, 0.0), start=(150.0, 60.0))  # exits on the right (width 240)
    oracle = Oracle(truth)
    det = SkipFrameDetector(oracle, key_frame_interval=10, matcher=matcher, boundary=boundary)
    out = _run(det, oracle, frames)
    for d in out:
        if len(d):
            assert (d.boxes[:, 2] <= 240).all() and (d.boxes[:, 0] >= 0).all()
    centre_out = [i for i in range(10) if (truth[i, 0] + truth[i, 2]) / 2 >= 240]
    if boundary == "drop":
        assert centre_out and all(len(out[i]) == 0 for i in centre_out[1:])
        assert det.stats["boxes_dropped"] == 1
    else:
        partly = [i for i in range(1, 10) if truth[i, 2] > 240 and truth[i, 0] < 230]
        assert partly and all(len(out[i]) == 1 for i in partly)


def test_adaptive_policy_reacts_to_a_scene_cut(matcher):
    frames, truth = _scene(10)
    other, _ = _scene(10, seed=5)
    frames = frames[:5] + other[5:]  # a cut at frame 5
    oracle = Oracle(truth)
    det = SkipFrameDetector(oracle, key_frame_interval=8, policy="adaptive", matcher=matcher)
    _run(det, oracle, frames)
    assert det.stats["forced_by_scene_change"] == 1
    assert oracle.calls == 2  # frame 0 and the cut; no more before the interval runs out
    fixed_oracle = Oracle(truth)
    fixed = SkipFrameDetector(fixed_oracle, key_frame_interval=8, matcher=matcher)
    _run(fixed, fixed_oracle, frames)
    assert fixed_oracle.calls == 2 and fixed.stats["forced_by_scene_change"] == 0  # frames 0 and 8


def test_reset_starts_a_new_video(matcher):
    frames, truth = _scene(5)
    oracle = Oracle(truth)
    det = accelerate_detector(oracle, key_frame_interval=10, matcher=matcher)
    _run(det, oracle, frames[:3])
    det.reset()
    assert det.stats["frames"] == 0
    oracle.i = 3
    d = det(frames[3])
    assert d.from_key_frame.all() and det.last_was_key and oracle.calls == 2
    with pytest.raises(ValueError, match="frame size changed"):
        det(frames[0][:100])


def test_kcf_and_mosse_run_one_tracker_per_box():
    pytest.importorskip("cv2")
    frames, truth = _scene(8, step=(3.0, 1.0))  # MOSSE loses a 6-px-per-frame step
    for inter in ("kcf", "mosse"):
        oracle = Oracle(truth)
        det = SkipFrameDetector(oracle, key_frame_interval=8, inter=inter)
        out = _run(det, oracle, frames)
        assert all(len(d) == 1 for d in out) and not out[-1].from_key_frame.any()
        assert box_iou_xyxy(out[-1].boxes, truth[-1:])[0, 0] > 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="key_frame_interval"):
        SkipFrameDetector(lambda f: [], key_frame_interval=0)
    with pytest.raises(ValueError, match="inter"):
        SkipFrameDetector(lambda f: [], inter="optical-flow")
    with pytest.raises(ValueError, match="policy"):
        SkipFrameDetector(lambda f: [], policy="sometimes")
    with pytest.raises(ValueError, match="boundary"):
        SkipFrameDetector(lambda f: [], boundary="wrap")
    with pytest.raises(ValueError, match="matcher"):
        SkipFrameDetector(lambda f: [], inter="hold", matcher=object())
    with pytest.raises(ValueError, match="response_size"):
        SkipFrameDetector(lambda f: [], response_size=8)


def _pets09_persons(data_root, frames: int):
    """FastestDet (persons) and the first ``frames`` frames of PETS09-S3-MF1, a 7-fps sequence where
    people move far between frames; skips where the shared weights are missing."""
    from patchnet_zoo.detection import FastestDet
    from patchnet_zoo.detection.runner import load_mot_sequences

    try:
        fd = FastestDet(classes=[0])
    except FileNotFoundError as e:
        pytest.skip(f"FastestDet weights not available: {e}")
    return fd, load_mot_sequences([data_root / "mot" / "PETS09-S3-MF1"], max_frames=frames)


def test_beats_hold_on_real_pedestrians(data_root, matcher):
    """PETS09-S3-MF1 is 7 fps: people move far between frames, so a held box goes stale."""
    from patchnet_zoo.detection.runner import benchmark_detection

    fd, seqs = _pets09_persons(data_root, 25)
    per_frame = benchmark_detection(lambda: fd, seqs)
    pn = benchmark_detection(lambda: SkipFrameDetector(fd, key_frame_interval=5, matcher=matcher), seqs)
    hold = benchmark_detection(lambda: SkipFrameDetector(fd, key_frame_interval=5, inter="hold"), seqs)
    assert pn["key_frames"] == hold["key_frames"] == 5
    assert pn["map50"] > hold["map50"] + 0.1
    assert pn["map50"] > per_frame["map50"] - 0.2


def test_template_update_blends_confident_templates(matcher):
    """template_update = u: after an inter frame a confident box's template is (1-u) old + u fresh."""
    import torch

    from patchnet_zoo.geometry import to_frame_tensor

    frames, truth = _scene(3)
    runs = {}
    for u, min_conf in ((0.0, 0.8), (0.25, 0.8), (0.25, 1.01)):
        oracle = Oracle(truth)
        det = SkipFrameDetector(oracle, key_frame_interval=8, matcher=matcher, template_update=u,
                                update_min_confidence=min_conf)
        oracle.i = 0
        det(frames[0])
        key = det._templates.filters.clone()
        oracle.i = 1
        det(frames[1])
        runs[(u, min_conf)] = (key, det._templates.filters.clone(), det._est.copy(), det.last_confidence.copy())
    key, after, est, conf = runs[(0.25, 0.8)]
    assert conf[0] >= 0.8  # a clean synthetic match is confident
    fresh = det.matcher.encode(to_frame_tensor(frames[1]), torch.as_tensor(est, dtype=torch.float32)).filters
    torch.testing.assert_close(after, 0.75 * key + 0.25 * fresh, rtol=1e-5, atol=1e-4)
    assert torch.equal(runs[(0.0, 0.8)][1], runs[(0.0, 0.8)][0])  # u = 0: the key-frame template stays
    assert torch.equal(runs[(0.25, 1.01)][1], runs[(0.25, 1.01)][0])  # no match is confident enough
    with pytest.raises(ValueError, match="template_update"):
        SkipFrameDetector(Oracle(truth), inter="hold", template_update=0.25)
    with pytest.raises(ValueError, match="template_update"):
        SkipFrameDetector(Oracle(truth), matcher=matcher, template_update=1.5)


def test_defaults_carry_with_the_k4_model_edge_follow_and_template_update():
    """With no options PatchNet carries boxes as DEFAULT_CARRIER with the edge follow and the
    template update; the other methods have no template to update."""
    from patchnet_zoo.accel.skip_frame_detector import (DEFAULT_CARRIER, DEFAULT_EDGE_FOLLOW, DEFAULT_TEMPLATE_UPDATE,
                                                        DEFAULT_UPDATE_MIN_CONFIDENCE)
    from patchnet_zoo.registry import create_model

    frames, truth = _scene(2)
    det = SkipFrameDetector(Oracle(truth))
    assert (det.template_update, det.update_min_confidence) == (DEFAULT_TEMPLATE_UPDATE, DEFAULT_UPDATE_MIN_CONFIDENCE)
    assert det.matcher.edge_follow == DEFAULT_EDGE_FOLLOW
    shipped = create_model(DEFAULT_CARRIER, pretrained=True).state_dict()
    for k, v in det.matcher.model.state_dict().items():
        assert torch.equal(v, shipped[k]), k
    assert SkipFrameDetector(Oracle(truth), inter="hold").template_update == 0.0
    assert SkipFrameDetector(Oracle(truth), inter="kcf").template_update == 0.0
    with pytest.raises(ValueError, match="edge_follow"):
        SkipFrameDetector(Oracle(truth), edge_follow=-1)


def test_blend_moves_only_the_given_rows(matcher):
    """PatchMatcher.blend: the given rows become (1-u) old + u fresh; the others, and a row whose box
    lies wholly outside the frame, keep their template."""
    from patchnet_zoo.matching import PatchMatcher

    frames, truth = _scene(2)
    pm = PatchMatcher(matcher)
    boxes = np.array([[40, 60, 40, 30], [100, 50, 30, 30], [150, 90, 40, 40]], np.float32)
    t = pm.encode(frames[0], boxes)
    new_boxes = np.array([[46, 62, 40, 30], [900, 900, 30, 30]], np.float32)  # the second: off the frame
    out = pm.blend(t, frames[1], new_boxes, [0, 2], 0.25)
    fresh = pm.encode(frames[1], new_boxes[:1]).filters
    torch.testing.assert_close(out.filters[0], 0.75 * t.filters[0] + 0.25 * fresh[0], rtol=1e-5, atol=1e-5)
    assert torch.equal(out.filters[1], t.filters[1]) and torch.equal(out.filters[2], t.filters[2])
    assert torch.equal(out.boxes, t.boxes)
    assert not torch.equal(t.filters[0], out.filters[0])  # the input is left as it was
    with pytest.raises(ValueError, match="rows"):
        pm.blend(t, frames[1], new_boxes, [0], 0.25)


# ------------------------------------------------------------------------------------ look-ahead
def _nearest_key(i: int, keys: list[int], last: int) -> int:
    """The key frame whose boxes frame ``i`` should carry: the nearer one, ties to the earlier; after
    the last key frame (no later one in the video) the last."""
    before = max(k for k in keys if k <= i)
    after = [k for k in keys if k > i]
    return after[0] if after and after[0] - i < i - before else before


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_lookahead_takes_the_nearer_key_frame(n):
    """With hold every frame shows exactly the boxes of the key frame it was carried from."""
    frames, truth = _scene(13)

    oracle = FrameOracle(truth, frames)
    det = SkipFrameDetector(oracle, key_frame_interval=n, inter="hold", lookahead=True)
    out = list(det.process(frames))
    keys = list(range(0, 13, n))
    assert len(out) == 13 and det.key_frame_indices == keys and oracle.calls == len(keys)
    for i, d in enumerate(out):
        assert bool(d.from_key_frame[0]) == (i in keys)
        np.testing.assert_allclose(d.boxes[0], truth[_nearest_key(i, keys, 12)])


def test_lookahead_carries_no_frame_twice_and_follows_the_object(matcher):
    """PatchNet, fixed policy: the same key frames and matched boxes as frame by frame, each frame
    matched once, and the backward half follows the object as well as the forward half."""
    from patchnet_zoo.matching import PatchMatcher

    frames, truth = _scene(14)

    class Counting(PatchMatcher):
        calls = 0

        def match(self, templates, frame, search_boxes=None):
            Counting.calls += 1
            return super().match(templates, frame, search_boxes)

    det = SkipFrameDetector(FrameOracle(truth, frames), key_frame_interval=5, matcher=Counting(matcher), lookahead=True)
    out = list(det.process(frames))
    oracle = Oracle(truth)
    forward = SkipFrameDetector(oracle, key_frame_interval=5, matcher=matcher)
    fwd = _run(forward, oracle, frames)
    assert Counting.calls == 14 - 3  # one match per inter frame: none is carried twice
    assert det.stats["key_frames"] == forward.stats["key_frames"] == 3
    assert det.stats["boxes_propagated"] == forward.stats["boxes_propagated"] == 11
    ious = [box_iou_xyxy(out[i].boxes, truth[i:i + 1])[0, 0] for i in range(14)]
    assert min(ious) > 0.7
    for i in (1, 2, 6, 7, 11, 12, 13):  # the first half of a gap, and after the last key frame: as forward
        np.testing.assert_allclose(out[i].boxes, fwd[i].boxes, rtol=1e-6, atol=1e-4)
    with pytest.raises(RuntimeError, match="process"):
        det(frames[0])


def test_lookahead_with_the_adaptive_policy(matcher):
    """A key frame forced by a scene cut closes the gap early; the frames nearer to it than to the
    previous key frame are carried backwards from it."""
    frames, truth = _scene(12)
    other, _ = _scene(12, seed=5)
    frames = frames[:6] + other[6:]  # a cut at frame 6

    oracle = FrameOracle(truth, frames)
    det = SkipFrameDetector(oracle, key_frame_interval=8, policy="adaptive", inter="hold", lookahead=True)
    out = list(det.process(frames))
    assert det.key_frame_indices == [0, 6] and det.stats["forced_by_scene_change"] == 1
    for i, k in {1: 0, 3: 0, 4: 6, 5: 6, 7: 6, 11: 6}.items():  # frame 3: a tie, to the earlier
        np.testing.assert_allclose(out[i].boxes[0], truth[k])


def test_lookahead_kcf_restarts_its_forward_trackers():
    """OpenCV trackers learn as they go: after carrying a gap backwards the key frame's trackers
    start afresh, so the next gap's forward half matches a frame-by-frame run exactly."""
    pytest.importorskip("cv2")
    frames, truth = _scene(11, step=(3.0, 1.0))

    la = list(SkipFrameDetector(FrameOracle(truth, frames), key_frame_interval=5, inter="kcf", lookahead=True).process(frames))
    fwd = list(SkipFrameDetector(FrameOracle(truth, frames), key_frame_interval=5, inter="kcf").process(frames))
    for i in (1, 2, 6, 7):
        np.testing.assert_allclose(la[i].boxes, fwd[i].boxes)
    assert box_iou_xyxy(la[4].boxes, truth[4:5])[0, 0] > 0.5  # carried back from frame 5


def test_lookahead_beats_forward_on_real_pedestrians(data_root, matcher):
    """PETS09-S3-MF1 at 7 fps: carrying no box further than half the interval keeps more people."""
    from patchnet_zoo.detection.runner import benchmark_detection

    fd, seqs = _pets09_persons(data_root, 33)
    fwd = benchmark_detection(lambda: SkipFrameDetector(fd, key_frame_interval=8, matcher=matcher), seqs)
    la = benchmark_detection(lambda: SkipFrameDetector(fd, key_frame_interval=8, matcher=matcher, lookahead=True), seqs)
    assert la["key_frames"] == fwd["key_frames"] == 5
    print(f"PETS09, 33 frames, N = 8: mAP@0.5 forward {fwd['map50']:.3f}, look-ahead {la['map50']:.3f}")
    assert la["map50"] > fwd["map50"] + 0.02
