"""One-pass evaluation (``eval.ope``): scores of known trackers on real data, the JSON shape, timing
without decoding, key-frame statistics and cost of skip-frame trackers."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from patchnet_zoo.data.readers import Sequence, read_sequences
from patchnet_zoo.eval.ope import build_tracker_factory, patchnet_macs, run_ope

MAX_FRAMES = 12


@pytest.fixture(scope="module")
def val_sequences(data_root):
    return read_sequences(data_root, "val")[:2]


class Oracle:
    """Returns the ground truth: a perfect tracker."""

    def __init__(self, gt):
        self.gt, self.i = np.asarray(gt, dtype=np.float64), 0

    def init(self, image, box):
        self.i = 0

    def update(self, image):
        self.i += 1
        return self.gt[self.i].copy()


class Hold:
    """Repeats the initial box."""

    name = "hold"

    def init(self, image, box):
        self.box = np.asarray(box, dtype=np.float64)

    def update(self, image):
        return self.box.copy()


def oracle_factory(sequences):
    gts = iter([s.boxes for s in sequences])  # run_ope makes one tracker per sequence, in order
    return lambda: Oracle(next(gts))


def test_oracle_scores_20_of_21_and_full_precision(val_sequences):
    r = run_ope(oracle_factory(val_sequences), val_sequences, progress=False, max_frames=MAX_FRAMES, warmup=False)
    # IoU = 1 is above every threshold but the last (IoU > 1 never holds): 20 of 21
    assert r["success"] == pytest.approx(20 / 21)
    assert r["precision"] == 1.0
    assert r["effective_interval"] == 1.0
    assert r["frames"] == r["key_frames"] == 2 * MAX_FRAMES
    for s in r["per_sequence"].values():
        assert s["success"] == pytest.approx(20 / 21) and s["precision"] == 1.0


def test_hold_scores_lower_than_the_oracle(val_sequences):
    r = run_ope(Hold, val_sequences, progress=False, max_frames=MAX_FRAMES)
    assert r["success"] < 20 / 21 - 0.05
    assert r["precision"] <= 1.0
    assert r["gflops_per_frame"] is None  # Hold does not know its cost


def test_result_is_json_with_the_documented_shape(val_sequences):
    r = run_ope(Hold, val_sequences, progress=False, max_frames=MAX_FRAMES)
    back = json.loads(json.dumps(r, allow_nan=False))
    for key in ("success", "precision", "fps", "effective_interval", "gflops_per_frame", "per_sequence", "curves",
                "frames", "key_frames", "sequences", "seconds"):
        assert key in back
    assert set(back["per_sequence"]) == {s.name for s in val_sequences}
    for s in back["per_sequence"].values():
        assert {"success", "precision", "fps", "frames", "effective_interval", "key_frames"} <= set(s)
        assert s["frames"] == MAX_FRAMES and s["fps"] > 0
    assert len(back["curves"]["success"]) == 21 and len(back["curves"]["precision"]) == 51
    assert np.mean(back["curves"]["success"]) == pytest.approx(back["success"])
    assert back["curves"]["precision"][20] == pytest.approx(back["precision"])
    assert back["fps"] == pytest.approx(back["frames"] / back["seconds"])
    assert back["skip_frame"] is None


def _synthetic_sequence(n=10, delay=0.0, name="synthetic"):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)]
    boxes = np.tile([10.0, 12.0, 16.0, 14.0], (n, 1))
    boxes[:, 0] += np.arange(n)

    def load(i):
        time.sleep(delay)
        return frames[i]

    return Sequence(name, boxes, load, n)


def test_timing_leaves_decoding_out():
    seq = _synthetic_sequence(8, delay=0.03)
    r = run_ope(Hold, [seq], progress=False, warmup=False)
    assert r["seconds"] < 0.03  # 8 decodes took >= 0.24 s; tracking a hold box takes microseconds


def test_absent_frames_are_left_out():
    seq = _synthetic_sequence(10)
    seq.boxes[[3, 4]] = np.nan
    r = run_ope(oracle_factory([seq]), [seq], progress=False, warmup=False)
    assert r["evaluated_frames"] == 8 and r["frames"] == 10
    assert r["success"] == pytest.approx(20 / 21)


class FakeBase:
    gflops_per_frame = 0.1  # GMACs per call


class FakeSkipFrame:
    """A SkipFrameTracker look-alike: key frame every 3rd frame, one forced by confidence."""

    def __init__(self, inter, extra_searches: int = 0):
        self.inter, self.base, self.extra = inter, FakeBase(), extra_searches

    def init(self, image, box):
        self.box, self.i = np.asarray(box, dtype=np.float64), 0
        self.last_was_key, self.last_confidence = True, 1.0
        self.stats = {"frames": 1, "key_frames": 1, "effective_interval": 1.0, "base_seconds": 0.0,
                      "inter_seconds": 0.0, "forced_by_confidence": 0, "base_failures": 0,
                      "extra_searches": self.extra}

    def update(self, image):
        self.i += 1
        self.last_was_key = self.i % 3 == 0
        self.last_confidence = 0.5 if self.i == 3 else 0.9
        self.stats["frames"] += 1
        self.stats["key_frames"] += int(self.last_was_key)
        self.stats["forced_by_confidence"] += int(self.i == 3)
        self.stats["base_seconds"] += 0.001 * self.last_was_key
        self.stats["inter_seconds"] += 0.0005
        return self.box.copy()


@pytest.mark.parametrize("inter", ["hold", "patchnet", "kcf"])
def test_skip_frame_statistics_and_cost(inter):
    seq = _synthetic_sequence(10)  # key frames 0, 3, 6, 9
    r = run_ope(lambda: FakeSkipFrame(inter), [seq], progress=False, warmup=False)
    assert r["key_frames"] == 4 and r["effective_interval"] == pytest.approx(2.5)
    ps = r["per_sequence"]["synthetic"]
    assert ps["key_frames"] == 4 and ps["effective_interval"] == pytest.approx(2.5)
    sf = r["skip_frame"]
    assert sf["forced_by_confidence"] == 1 and sf["inter_calls"] == 6 + 1
    assert sf["tracker_reported_key_frames"] == 4
    assert sf["base_seconds"] == pytest.approx(0.003) and sf["inter_seconds"] == pytest.approx(0.0045)
    if inter == "hold":
        assert r["gflops_per_frame"] == pytest.approx(0.1 * 4 / 10)
    elif inter == "patchnet":
        from patchnet_zoo.models.patchnet import PatchNet

        gmacs = patchnet_macs(PatchNet()) / 1e9
        assert 0.05 < gmacs < 0.06  # the paper's ~58 M multiply-accumulates
        assert r["gflops_per_frame"] == pytest.approx((0.1 * 4 + gmacs * 7) / 10)
        # searches past the window's edge (PatchMatcher(edge_follow=...)) are charged as matches
        r2 = run_ope(lambda: FakeSkipFrame(inter, extra_searches=2), [seq], progress=False, warmup=False)
        assert r2["skip_frame"]["inter_calls"] == 6 + 1 + 2 and r2["skip_frame"]["extra_searches"] == 2
        assert r2["gflops_per_frame"] == pytest.approx((0.1 * 4 + gmacs * 9) / 10)
    else:  # KCF's cost is not counted
        assert r["gflops_per_frame"] is None
    assert "unit" in r["gflops"] and "multiply-accumulates" in r["gflops"]["unit"]


class VaryingCost(Hold):
    """A per-frame tracker whose cost differs per sequence, like the gated tracker's."""

    costs = iter([0.1, 0.3])

    def init(self, image, box):
        super().init(image, box)
        self.gflops_per_frame = next(VaryingCost.costs)


def test_cost_of_a_varying_tracker_weighs_every_sequence():
    VaryingCost.costs = iter([0.1, 0.3])
    seqs = [_synthetic_sequence(10), _synthetic_sequence(30)]
    r = run_ope(VaryingCost, seqs, progress=False, warmup=False)
    assert r["gflops_per_frame"] == pytest.approx((0.1 * 10 + 0.3 * 30) / 40)  # not the last one's 0.3


def test_build_tracker_factory_rejects_bad_arguments():
    with pytest.raises(ValueError, match="inter-frame method"):
        build_tracker_factory("kcf", key_frame_interval=4, inter="optical-flow")
    with pytest.raises(ValueError, match="interval"):
        build_tracker_factory("kcf", key_frame_interval=0)
    with pytest.raises(ValueError, match="threshold"):
        build_tracker_factory("kcf", key_frame_interval=4, conf_threshold=1.5)
    with pytest.raises(ValueError, match="relocate_base"):
        build_tracker_factory("kcf", key_frame_interval=4, relocate_base="sometimes")


def test_real_per_frame_tracker(val_sequences):
    pytest.importorskip("patchnet_zoo.trackers.opencv_trackers")
    factory = build_tracker_factory("mosse")
    r = run_ope(factory, val_sequences, progress=False, max_frames=MAX_FRAMES)
    assert r["config"]["tracker"] == "mosse" and r["effective_interval"] == 1.0
    assert 0.0 <= r["success"] <= 20 / 21 and math.isfinite(r["fps"])


def test_real_skip_frame_tracker(val_sequences):
    pytest.importorskip("patchnet_zoo.trackers.opencv_trackers")
    pytest.importorskip("patchnet_zoo.accel.skip_frame_tracker")
    factory = build_tracker_factory("kcf", key_frame_interval=3, inter="hold", conf_threshold=None)
    r = run_ope(factory, val_sequences, progress=False, max_frames=MAX_FRAMES)
    # key frames exactly every 3rd frame (none forced: hold has no confidence)
    assert r["key_frames"] == 2 * math.ceil(MAX_FRAMES / 3)
    assert r["effective_interval"] == pytest.approx(MAX_FRAMES / math.ceil(MAX_FRAMES / 3))
    assert r["skip_frame"] is not None and r["skip_frame"]["inter_calls"] == r["frames"] - r["key_frames"]


def test_run_ope_many_interleaves_and_matches_run_ope(val_sequences):
    from patchnet_zoo.eval.ope import run_ope_many

    seen = []
    many = run_ope_many({"hold": Hold, "skip": lambda: FakeSkipFrame("hold")}, val_sequences, progress=False,
                        max_frames=MAX_FRAMES, on_sequence=lambda key, name, entry: seen.append((key, name)))
    names = [s.name for s in val_sequences]
    # every configuration tracks a sequence before the next one; the order flips on every other one
    assert seen == [("hold", names[0]), ("skip", names[0]), ("skip", names[1]), ("hold", names[1])]
    alone = run_ope(Hold, val_sequences, progress=False, max_frames=MAX_FRAMES)
    assert many["hold"]["success"] == pytest.approx(alone["success"])
    assert many["hold"]["precision"] == pytest.approx(alone["precision"])
    assert many["skip"]["key_frames"] == 2 * 4  # 12 frames: keys at 0, 3, 6, 9


class SlowFirstRound(Hold):
    """Like Hold, but the first tracker made is slow: a run that other work slowed down."""

    made = 0

    def __init__(self):
        SlowFirstRound.made += 1
        self.slow = SlowFirstRound.made == 1

    def update(self, image):
        if self.slow:
            time.sleep(0.01)
        return super().update(image)


def test_timing_repeats_keep_the_fastest_run(val_sequences):
    from patchnet_zoo.eval.ope import run_ope_many

    SlowFirstRound.made = 0
    once = run_ope_many({"hold": SlowFirstRound}, val_sequences[:1], progress=False, max_frames=MAX_FRAMES,
                        warmup=False)["hold"]
    SlowFirstRound.made = 0
    best = run_ope_many({"hold": SlowFirstRound}, val_sequences[:1], progress=False, max_frames=MAX_FRAMES,
                        warmup=False, timing_repeats=3)["hold"]
    assert SlowFirstRound.made == 3  # one tracker per round
    assert best["success"] == once["success"] and best["precision"] == once["precision"]
    assert once["seconds"] > 0.01 * (MAX_FRAMES - 1)  # the slow run counted when it was the only one
    assert best["seconds"] < 0.01 * (MAX_FRAMES - 1)  # a fast round replaced it
    with pytest.raises(ValueError, match="timing_repeats"):
        run_ope_many({"hold": Hold}, val_sequences[:1], progress=False, max_frames=MAX_FRAMES, timing_repeats=0)


class Flaky(Hold):
    """Raises on every third update."""

    def init(self, image, box):
        super().init(image, box)
        self.calls = 0

    def update(self, image):
        self.calls += 1
        if self.calls % 3 == 0:
            raise RuntimeError("lost it")
        return super().update(image)


def test_a_raising_update_counts_as_a_miss_and_the_run_goes_on():
    seq = _synthetic_sequence(10)
    with pytest.warns(UserWarning, match="update raised on 3 frame"):
        r = run_ope(Flaky, [seq], progress=False, warmup=False)
    ps = r["per_sequence"]["synthetic"]
    assert ps["update_errors"] == 3 and "lost it" in ps["first_error"]
    assert r["frames"] == 10
