"""SkipFrameTracker: key-frame schedule, the confidence fallback, statistics, failures of the base
tracker, and NanoTrack + PatchNet on real frames of the val split."""
from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
import torch

from patchnet_zoo.accel import SingleObjectTracker, SkipFrameTracker, accelerate
from patchnet_zoo.data.readers import read_folder_sequence
from patchnet_zoo.geometry import box_iou
from patchnet_zoo.matching import MatchResult, PatchMatcher
from patchnet_zoo.models.patchnet import PatchNet
from patchnet_zoo.trackers import track_video
from patchnet_zoo.trackers.opencv_trackers import default_weights_root, find_nanotrack_weights

STEP = np.array([2.0, 1.0, 0.0, 0.0])


def _iou(a, b) -> float:
    return float(box_iou(np.asarray(a), np.asarray(b))[0])


def _texture(h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


class StepTracker(SingleObjectTracker):
    """A base tracker that moves the box by STEP per update and records its calls.

    ``script`` maps the n-th update (1-based) to a misbehaviour: "raise", "nan", "zero", "outside",
    "lost" (ok = False) or "junk" (not 4 numbers).
    """

    name = "step"

    def __init__(self, script=None, init_raises=0):
        self.script = dict(script or {})
        self.init_raises = init_raises
        self.inits, self.updates = [], 0

    def init(self, image, box):
        self.inits.append(np.asarray(box, dtype=np.float64).copy())
        if self.init_raises:
            self.init_raises -= 1
            raise RuntimeError("init exploded")
        self.box = np.asarray(box, dtype=np.float64).copy()
        self.ok = True

    def update(self, image):
        self.updates += 1
        what = self.script.get(self.updates)
        self.ok = what != "lost"
        if what == "raise":
            raise RuntimeError("update exploded")
        self.box = self.box + STEP
        if what == "nan":
            return np.full(4, np.nan)
        if what == "zero":
            return np.array([self.box[0], self.box[1], 0.0, 10.0])
        if what == "outside":
            return np.array([1e5, 1e5, 10.0, 10.0])
        if what == "junk":
            return [1.0, 2.0]
        return self.box.copy()


def stub_matcher(confidences=None, shift=(0.0, 0.0), scale=1.0, searches=None):
    """A PatchMatcher whose match moves the search box by ``shift`` and scales it by ``scale``, with
    confidences taken in turn from ``confidences`` (default 1.0) and, if given, search counts from
    ``searches``. Records encode and match calls."""
    matcher = PatchMatcher(PatchNet())
    calls = {"encode": [], "match": []}
    seq = list(confidences or [])

    def encode(frame, boxes):
        calls["encode"].append(torch.as_tensor(boxes, dtype=torch.float32).view(-1, 4).clone())
        return "templates"

    def match(templates, frame, search_boxes=None):
        assert templates == "templates"
        sb = torch.as_tensor(search_boxes, dtype=torch.float32).view(-1, 4).clone()
        calls["match"].append(sb)
        c = sb[:, :2] + sb[:, 2:] / 2 + torch.tensor(shift, dtype=torch.float32)
        size = sb[:, 2:] * scale
        conf = seq.pop(0) if seq else 1.0
        n = None if searches is None else torch.full((sb.shape[0],), searches.pop(0), dtype=torch.long)
        return MatchResult(torch.cat([c - size / 2, size], 1), torch.full((sb.shape[0],), float(conf)), n)

    matcher.encode = encode
    matcher.match = match
    return matcher, calls


def _run(tracker, frames, box):
    tracker.init(frames[0], box)
    keys, boxes = [tracker.last_was_key], [np.asarray(box, dtype=np.float64)]
    for f in frames[1:]:
        boxes.append(tracker.update(f))
        keys.append(tracker.last_was_key)
    return np.array(keys), np.array(boxes)


BOX = np.array([40.0, 30.0, 32.0, 24.0])


# ------------------------------------------------------------------------------ key schedule
@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_key_frames_exactly_every_n_without_fallback(n):
    base = StepTracker()
    matcher, calls = stub_matcher(confidences=[0.0] * 100)  # would force every frame if enabled
    t = SkipFrameTracker(base, key_frame_interval=n, conf_threshold=None, matcher=matcher)
    frames = [_texture()] * 13
    keys, _ = _run(t, frames, BOX)
    assert np.nonzero(keys)[0].tolist() == list(range(0, 13, n))
    s = t.stats
    assert s["frames"] == 13 and s["key_frames"] == len(range(0, 13, n))
    assert s["inter_frames"] == 13 - s["key_frames"]
    assert s["effective_interval"] == pytest.approx(13 / s["key_frames"])
    assert base.updates == s["key_frames"] - 1 and len(base.inits) == 1
    assert s["forced_by_confidence"] == 0 and s["base_failures"] == 0
    # one template per key frame, one match per inter frame (none at all for n = 1)
    assert len(calls["encode"]) == (0 if n == 1 else s["key_frames"])
    assert len(calls["match"]) == s["inter_frames"]


def test_searches_past_the_window_edge_are_counted():
    matcher, calls = stub_matcher(searches=[1, 2, 1, 3, 1, 1])
    t = SkipFrameTracker(StepTracker(), key_frame_interval=10, conf_threshold=None, matcher=matcher)
    _run(t, [_texture()] * 7, BOX)
    assert len(calls["match"]) == 6 and t.stats["extra_searches"] == 1 + 2
    t.init(_texture(), BOX)
    assert t.stats["extra_searches"] == 0


def test_low_confidence_forces_a_key_frame():
    base = StepTracker()
    # frame: 1 (0.9) 2 (0.5 -> key) 3 (0.95) 4 (0.9) 5 (0.85) 6 -> key by the interval (4 after 2)
    matcher, calls = stub_matcher(confidences=[0.9, 0.5, 0.95, 0.9, 0.85, 0.9, 0.9])
    t = SkipFrameTracker(base, key_frame_interval=4, conf_threshold=0.8, matcher=matcher)
    frames = [_texture()] * 8
    t.init(frames[0], BOX)
    keys, confs = [True], [t.last_confidence]
    for f in frames[1:]:
        t.update(f)
        keys.append(t.last_was_key)
        confs.append(t.last_confidence)
    assert np.nonzero(keys)[0].tolist() == [0, 2, 6]
    assert confs[2] == pytest.approx(0.5)  # the value that forced the key frame
    assert np.isnan(confs[0]) and np.isnan(confs[6])  # no inter match on those frames
    assert confs[1] == pytest.approx(0.9)
    s = t.stats
    assert s["forced_by_confidence"] == 1 and s["key_frames"] == 3 and base.updates == 2
    assert s["frames"] == s["key_frames"] + s["inter_frames"]
    assert t.confidence == t.last_confidence


def test_a_black_frame_forces_a_key_frame_with_the_real_matcher():
    base = StepTracker()
    frame = _texture()
    t = SkipFrameTracker(base, key_frame_interval=4, conf_threshold=0.8, matcher=PatchNet())
    t.init(frame, BOX)
    t.update(frame)  # the same frame: one dominant peak
    assert not t.last_was_key and t.last_confidence > 0.8
    box = t.update(np.zeros_like(frame))
    assert t.last_was_key and t.last_confidence == 0.0
    assert t.stats["forced_by_confidence"] == 1
    np.testing.assert_allclose(box, BOX + STEP)  # the base tracker's answer
    # with the fallback off the box stays put on a flat frame instead of jumping
    t2 = SkipFrameTracker(StepTracker(), key_frame_interval=4, conf_threshold=None, matcher=PatchNet())
    t2.init(frame, BOX)
    np.testing.assert_allclose(t2.update(np.zeros_like(frame)), BOX)
    assert not t2.last_was_key and t2.last_confidence == 0.0


# --------------------------------------------------------------------------- inter frames
def test_key_frame_template_and_search_on_the_current_state():
    base = StepTracker()
    matcher, calls = stub_matcher(shift=(3.0, -1.0))
    t = SkipFrameTracker(base, key_frame_interval=4, conf_threshold=None, matcher=matcher, size_damping=None,
                         motion_prior=0.0, relocate_base=False)  # StepTracker's boxes ignore the frame
    frames = [_texture()] * 6
    _, boxes = _run(t, frames, BOX)
    # templates: the init box on frame 0, the base tracker's box on key frame 4
    assert len(calls["encode"]) == 2
    np.testing.assert_allclose(calls["encode"][0][0].numpy(), BOX)
    np.testing.assert_allclose(calls["encode"][1][0].numpy(), BOX + STEP)
    # each search is centred on the last output box, not on the key-frame box
    for k, sb in enumerate(calls["match"][:3]):
        np.testing.assert_allclose(sb[0].numpy(), boxes[k], atol=1e-4)
    np.testing.assert_allclose(boxes[3], BOX + 3 * np.array([3.0, -1.0, 0, 0]), atol=1e-4)
    np.testing.assert_allclose(boxes[4], BOX + STEP)


@pytest.mark.parametrize("prior", [0.75, 1.0])
def test_the_search_leads_by_the_last_displacement_between_inter_frames(prior):
    shift = np.array([3.0, -1.0, 0.0, 0.0])
    matcher, calls = stub_matcher(shift=tuple(shift[:2]))
    t = SkipFrameTracker(StepTracker(), key_frame_interval=4, conf_threshold=None, matcher=matcher,
                         size_damping=None, motion_prior=prior, relocate_base=False)
    _, boxes = _run(t, [_texture()] * 7, BOX)
    searches = [sb[0].numpy() for sb in calls["match"]]
    # first inter frame after a key frame: no displacement yet, the search sits on the key box
    np.testing.assert_allclose(searches[0], BOX, atol=1e-4)
    for k in (1, 2):  # then it leads the last box by prior x (last box - the box before it)
        np.testing.assert_allclose(searches[k], boxes[k] + prior * (boxes[k] - boxes[k - 1]), atol=1e-4)
    # the key frame (4) resets the displacement: its correction is not motion
    np.testing.assert_allclose(searches[3], boxes[4], atol=1e-4)
    np.testing.assert_allclose(boxes[4], BOX + STEP)


def test_a_key_frame_forced_by_confidence_resets_the_displacement():
    matcher, calls = stub_matcher(confidences=[1.0, 0.1, 1.0, 1.0], shift=(5.0, 0.0))
    t = SkipFrameTracker(StepTracker(), key_frame_interval=10, conf_threshold=0.5, matcher=matcher,
                         size_damping=None, motion_prior=1.0)
    _, boxes = _run(t, [_texture()] * 5, BOX)
    searches = [sb[0].numpy() for sb in calls["match"]]
    # frame 2's match was rejected (key frame forced): frame 3 searches on the key box itself
    np.testing.assert_allclose(searches[2], boxes[2], atol=1e-4)


@pytest.mark.parametrize("damping, factor", [(0.25, 1.25), (None, 2.0), (0.0, 1.0), (1.0, 2.0)])
def test_size_update_is_damped(damping, factor):
    matcher, _ = stub_matcher(scale=2.0)
    t = SkipFrameTracker(StepTracker(), key_frame_interval=4, conf_threshold=None, matcher=matcher,
                         size_damping=damping)
    t.init(_texture(), BOX)
    box = t.update(_texture())
    np.testing.assert_allclose(box[2:], BOX[2:] * factor)  # 0.75 + 0.25 * new/old at 0.25
    np.testing.assert_allclose(box[:2] + box[2:] / 2, BOX[:2] + BOX[2:] / 2)  # centre from the match


def test_hold_repeats_the_key_frame_box():
    t = SkipFrameTracker(StepTracker(), key_frame_interval=3, inter="hold")
    keys, boxes = _run(t, [_texture()] * 7, BOX)
    np.testing.assert_allclose(boxes[1], BOX)
    np.testing.assert_allclose(boxes[2], BOX)
    np.testing.assert_allclose(boxes[3], BOX + STEP)
    np.testing.assert_allclose(boxes[5], BOX + STEP)
    assert np.isnan(t.last_confidence) or t.last_was_key
    assert t.stats["inter_seconds"] < 0.01  # a copy of the box


# ---------------------------------------------------------------------------------- stats
def test_stats_add_up_and_reset_per_video():
    matcher, _ = stub_matcher(confidences=[0.9, 0.1] * 10)
    t = SkipFrameTracker(StepTracker(), key_frame_interval=3, matcher=matcher)
    frames = [_texture()] * 10
    _run(t, frames, BOX)
    s = t.stats
    assert set(s) >= {"frames", "key_frames", "effective_interval", "base_seconds", "inter_seconds",
                      "forced_by_confidence", "base_failures"}
    assert s["frames"] == 10 == s["key_frames"] + s["inter_frames"]
    assert s["effective_interval"] == pytest.approx(s["frames"] / s["key_frames"])
    assert s["base_seconds"] > 0 and s["inter_seconds"] > 0
    assert s["forced_by_confidence"] >= 1
    t.init(frames[0], BOX)  # a new video: new statistics
    assert t.stats["frames"] == 1 and t.stats["key_frames"] == 1 and t.stats["forced_by_confidence"] == 0
    t.reset_stats()
    assert t.stats["frames"] == 0 and np.isnan(t.stats["effective_interval"])


# ------------------------------------------------------------------------------- failures
@pytest.mark.parametrize("what, kind", [
    ("raise", "update raised"), ("nan", "non-finite box"), ("zero", "non-positive size"),
    ("outside", "outside the frame"), ("lost", "target lost"), ("junk", "bad output"),
])
def test_a_failing_base_tracker_is_reported_and_reinitialised(what, kind, caplog):
    base = StepTracker(script={1: what})  # the first key-frame update misbehaves
    t = SkipFrameTracker(base, key_frame_interval=2, conf_threshold=None, inter="hold")
    frames = [_texture()] * 7
    with caplog.at_level(logging.WARNING, logger="patchnet_zoo.accel.skip_frame_tracker"):
        keys, boxes = _run(t, frames, BOX)
    assert np.nonzero(keys)[0].tolist() == [0, 2, 4, 6]
    np.testing.assert_allclose(boxes[2], BOX)  # the failure keeps the last good box
    # next key frame: init with the last good box (not update), then update as usual
    assert len(base.inits) == 2
    np.testing.assert_allclose(base.inits[1], BOX)
    np.testing.assert_allclose(boxes[4], BOX)
    np.testing.assert_allclose(boxes[6], BOX + STEP)
    s = t.stats
    assert s["base_failures"] == 1 and s["base_reinits"] == 1
    assert [f[:2] for f in t.failures] == [(2, kind)]
    assert kind in caplog.text and "re-initialising" in caplog.text


def test_repeated_failures_warn_once_per_kind(caplog):
    base = StepTracker(script={k: "raise" for k in range(1, 50)})
    t = SkipFrameTracker(base, key_frame_interval=1, conf_threshold=None, inter="hold")
    with caplog.at_level(logging.WARNING, logger="patchnet_zoo.accel.skip_frame_tracker"):
        _, boxes = _run(t, [_texture()] * 9, BOX)
    # failure, re-init, failure, re-init... every box is the last good one, nothing crashes
    np.testing.assert_allclose(boxes, np.tile(BOX, (9, 1)))
    assert t.stats["base_failures"] == 4 and t.stats["base_reinits"] == 4
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_a_base_tracker_whose_init_raises(caplog):
    base = StepTracker(init_raises=1)
    matcher, _ = stub_matcher(shift=(1.0, 0.0))
    t = SkipFrameTracker(base, key_frame_interval=3, conf_threshold=None, matcher=matcher, size_damping=None,
                         motion_prior=0.0, relocate_base=False)  # StepTracker's boxes ignore the frame
    with caplog.at_level(logging.WARNING):
        keys, boxes = _run(t, [_texture()] * 7, BOX)
    assert "init raised" in caplog.text
    # PatchNet keeps tracking from the init box; key frame 3 re-initialises at the current box
    np.testing.assert_allclose(boxes[2], BOX + [2, 0, 0, 0])
    assert len(base.inits) == 2
    np.testing.assert_allclose(base.inits[1], boxes[2])
    np.testing.assert_allclose(boxes[3], boxes[2])
    np.testing.assert_allclose(boxes[6], boxes[2] + STEP)
    assert t.stats["base_failures"] == 1 and t.stats["base_reinits"] == 1


def test_a_callable_that_returns_nan_never_crashes_the_run():
    calls = []

    def flaky(image, box):
        calls.append(box)
        return None if box is not None else [np.nan] * 4

    t = accelerate(flaky, key_frame_interval=2, inter="hold")
    _, boxes = _run(t, [_texture()] * 5, BOX)
    np.testing.assert_allclose(boxes, np.tile(BOX, (5, 1)))
    assert t.stats["base_failures"] == 1 and t.stats["base_reinits"] == 1


# --------------------------------------------------------------------------------- the API
def test_accelerate_adapts_any_convention():
    class Got10k:
        def init(self, image, box):
            self.box = np.asarray(box, dtype=np.float64)

        def update(self, image):
            self.box = self.box + STEP
            return self.box

    t = accelerate(Got10k(), key_frame_interval=2, inter="hold")
    assert isinstance(t, SkipFrameTracker) and t.key_frame_interval == 2
    assert t.name == "Got10k+hold@2"
    _, boxes = _run(t, [_texture()] * 3, BOX)
    np.testing.assert_allclose(boxes[2], BOX + STEP)
    assert isinstance(accelerate("kcf", inter="hold").base, SingleObjectTracker)


@pytest.mark.parametrize("kwargs", [
    dict(key_frame_interval=0), dict(key_frame_interval=2.5), dict(inter="optical-flow"),
    dict(size_damping=1.5), dict(inter="hold", matcher=PatchNet()), dict(response_size=8),
    dict(conf_threshold=float("nan")), dict(motion_prior=-0.5), dict(motion_prior=float("nan")),
])
def test_invalid_options(kwargs):
    with pytest.raises(ValueError):
        SkipFrameTracker(StepTracker(), **kwargs)


def test_bad_init_and_update_before_init():
    t = SkipFrameTracker(StepTracker(), inter="hold")
    with pytest.raises(RuntimeError, match="init"):
        t.update(_texture())
    for bad in ([np.nan, 0, 5, 5], [0, 0, 0, 5], [500, 500, 10, 10]):
        with pytest.raises(ValueError):
            t.init(_texture(), bad)


def test_missing_pretrained_weights_fail_at_init(monkeypatch):
    import patchnet_zoo.trackers.patchnet_tracker as pt

    def missing(name="patchnet"):
        raise FileNotFoundError(f"no pretrained weights for {name!r}")

    monkeypatch.setattr(pt, "load_pretrained_patchnet", missing)
    t = SkipFrameTracker(StepTracker(), inter="patch-aggregation")
    with pytest.raises(FileNotFoundError, match="patchnet_patch_aggregation"):
        t.init(_texture(), BOX)


def test_importing_accel_loads_neither_opencv_nor_torch():
    code = ("import sys, patchnet_zoo.accel; "
            "print(int('cv2' in sys.modules), int('torch' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0"]


# --------------------------------------------------------------------------- real video
@pytest.fixture(scope="module")
def bag(data_root):
    seq = read_folder_sequence(data_root / "sot" / "bag")  # val split, 480x360, a plastic bag
    return seq, [seq.frame(i) for i in range(40)]


@pytest.fixture
def one_thread():
    """PatchNet's matches are small: one intra-op thread is faster than two fighting a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def nanotrack_ok():
    try:
        find_nanotrack_weights(default_weights_root())
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("inter", ["patchnet", "patch-aggregation", "patchnet-k4", "patchnet-zero-mean",
                                   "patchnet-k4-zero-mean"])
def test_nanotrack_skip_frame_keeps_iou_on_real_video(bag, nanotrack_ok, one_thread, inter):
    """Untrained PatchNet models (their patch correlation alone), and the shipped K4 and zero-mean
    weights, which the tracker loads itself for those ``inter`` names."""
    seq, frames = bag
    model = {"patchnet": PatchNet(), "patch-aggregation": PatchNet(fourier=False, box_regression=False)}.get(inter)
    t = accelerate("nanotrack", key_frame_interval=4, conf_threshold=0.8, inter=inter, matcher=model)
    keys, boxes = _run(t, frames, seq.boxes[0])
    ious = [_iou(b, g) for b, g in zip(boxes[1:], seq.boxes[1:40])]
    s = t.stats
    assert np.mean(ious) > 0.6 and np.min(ious) > 0.2, ious
    assert s["key_frames"] < 40 and s["effective_interval"] > 1.3, s
    assert s["base_failures"] == 0
    assert keys.sum() == s["key_frames"]
    assert t.matcher.model.geometry.patch_size == (4 if "k4" in inter else 8)
    assert t.matcher.model.patch_norm == ("zero_mean" if "zero-mean" in inter else "energy")


def test_the_cheap_carrier_for_both_bars_on_real_video(bag, nanotrack_ok, one_thread):
    """K4 zero-mean with the rigid centre (docs/design.md, "One cheap carrier for both
    tracking bars"): the tracker builds a rigid-centre matcher on the shipped K4 zero-mean weights,
    keeps the target on a real clip, and a PatchMatcher given as it is keeps its own decoding."""
    from patchnet_zoo.matching import PatchMatcher

    seq, frames = bag
    t = accelerate("nanotrack", key_frame_interval=6, inter="patchnet-k4-zero-mean", rigid_centre=True)
    keys, boxes = _run(t, frames, seq.boxes[0])
    ious = [_iou(b, g) for b, g in zip(boxes[1:], seq.boxes[1:40])]
    assert np.mean(ious) > 0.6 and np.min(ious) > 0.2, ious
    assert t.stats["effective_interval"] > 2.0, t.stats
    assert t.matcher.rigid_centre and t.matcher.model.geometry.patch_size == 4
    assert t.matcher.model.patch_norm == "zero_mean"
    given = PatchMatcher(PatchNet(), response_size=9)
    assert not SkipFrameTracker(StepTracker(), matcher=given, rigid_centre=True).matcher.rigid_centre
    assert SkipFrameTracker(StepTracker(), matcher=PatchNet(), rigid_centre=True).matcher.rigid_centre
    with pytest.raises(TypeError, match="rigid_centre"):
        SkipFrameTracker(StepTracker(), rigid_centre="yes")


@pytest.mark.parametrize("inter, min_mean_iou", [("kcf", 0.5), ("mosse", 0.4)])
def test_opencv_inter_frame_methods_on_real_video(bag, nanotrack_ok, inter, min_mean_iou):
    seq, frames = bag
    t = accelerate("nanotrack", key_frame_interval=3, conf_threshold=None, inter=inter)
    keys, boxes = _run(t, frames[:16], seq.boxes[0])
    assert np.nonzero(keys)[0].tolist() == [0, 3, 6, 9, 12, 15]
    ious = [_iou(b, g) for b, g in zip(boxes[1:], seq.boxes[1:16])]
    assert np.mean(ious) > min_mean_iou, ious  # measured: KCF* 0.62, MOSSE 0.53


def test_track_video_drives_a_skip_frame_tracker(bag):
    seq, frames = bag
    t = accelerate("csrt", key_frame_interval=3, matcher=PatchNet())
    boxes, confs = track_video(frames[:8], seq.boxes[0], tracker=t, show_progress=False)
    assert boxes.shape == (8, 4) and confs.shape == (8,)
    assert t.stats["frames"] == 8
