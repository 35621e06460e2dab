"""GatedTracker: policies by name, cost and exit-depth reporting, real tracking on a val sequence,
and use as the base tracker of SkipFrameTracker."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from patchnet_zoo.geometry import box_iou
from patchnet_zoo.models.gated_siamese import N_DEPTHS, GatedSiameseTracker
from patchnet_zoo.trackers.gated_tracker import GatedTracker, load_gated_model, parse_policy


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    return GatedSiameseTracker(backbone_weights=None).eval()


@pytest.fixture(scope="module")
def crossing(data_root):
    from patchnet_zoo.data.readers import read_folder_sequence

    return read_folder_sequence(data_root / "sot" / "Crossing")


def test_parse_policy():
    assert parse_policy(None) == {"policy": "hard"}
    assert parse_policy("hard0.4") == {"policy": "hard", "threshold": 0.4}
    assert parse_policy("hard@0.1") == {"policy": "hard", "threshold": 0.1}
    assert parse_policy("soft") == {"policy": "soft"}
    assert parse_policy("fixed3") == {"policy": "fixed", "depth": 3}
    assert parse_policy("d5") == {"policy": "fixed", "depth": 5}
    for bad in ("fixed6", "fixed0", "medium", "hardx"):
        with pytest.raises(ValueError):
            parse_policy(bad)


def test_make_base_tracker_knows_gated(untrained):
    from patchnet_zoo.trackers.opencv_trackers import BASE_TRACKERS, make_base_tracker

    assert "gated" in BASE_TRACKERS
    t = make_base_tracker("gated:fixed2", model=untrained)
    assert isinstance(t, GatedTracker) and t.policy == "fixed" and t.depth == 2
    t = make_base_tracker("gated", model=untrained)
    assert t.policy == "hard" and t.threshold == untrained.gate_threshold
    with pytest.raises(ValueError):
        make_base_tracker("gated:fast", model=untrained)


def test_bad_input(untrained, crossing):
    t = GatedTracker(untrained, policy="fixed", depth=3)
    with pytest.raises(RuntimeError):
        t.update(crossing.frame(0))
    with pytest.raises(ValueError):
        t.init(crossing.frame(0), [np.nan, 1, 10, 10])
    with pytest.raises(ValueError):
        t.init(crossing.frame(0), [10, 10, 0, 5])
    with pytest.raises(ValueError):
        GatedTracker(untrained, policy="fixed")
    with pytest.raises(ValueError):
        GatedTracker(untrained, policy="hard", threshold=2.0)


def test_cost_and_exit_depth_follow_the_threshold(untrained, crossing):
    """T = 0 stops at depth 1 on every frame, T = 1 never stops early; the reported cost is the
    per-frame sum of what ran."""
    runs = {}
    for T in (0.0, 1.0):
        t = GatedTracker(untrained, policy="hard", threshold=T)
        t.init(crossing.frame(0), crossing.boxes[0])
        for i in range(1, 4):
            box = t.update(crossing.frame(i))
            assert box.shape == (4,) and np.isfinite(box).all()
        runs[T] = t
    assert runs[0.0].depths == [1, 1, 1] and runs[0.0].last_depth == 1
    assert runs[1.0].depths == [N_DEPTHS] * 3
    assert runs[1.0].gflops_per_frame > 5 * runs[0.0].gflops_per_frame
    assert runs[0.0].gflops_per_frame == pytest.approx(np.mean(runs[0.0].gmacs))
    fixed5 = GatedTracker(untrained, policy="fixed", depth=5)
    # hard gating that reaches depth 5 also ran the correlations and gates of depths 1-4
    assert runs[1.0].gflops_per_frame > fixed5.gflops_per_frame


def test_trained_tracker_beats_holding_the_box_on_a_real_sequence(crossing):
    """30 frames of the val sequence Crossing (a walking pedestrian): the pretrained hard-gated
    tracker must follow the target better than repeating the first box."""
    t = GatedTracker(load_gated_model(), policy="hard")
    t.init(crossing.frame(0), crossing.boxes[0])
    ours, hold = [], []
    for i in range(1, 31):
        box = t.update(crossing.frame(i))
        ours.append(float(box_iou(box, crossing.boxes[i])[0]))
        hold.append(float(box_iou(crossing.boxes[0], crossing.boxes[i])[0]))
    assert np.mean(ours) > np.mean(hold) + 0.1, (np.mean(ours), np.mean(hold))
    assert np.mean(ours) > 0.5
    assert set(t.depths) <= set(range(1, N_DEPTHS + 1)) and len(t.depths) == 30


def test_as_base_of_skip_frame_tracker(untrained, crossing):
    from patchnet_zoo.accel.skip_frame_tracker import SkipFrameTracker

    base = GatedTracker(untrained, policy="fixed", depth=3)
    s = SkipFrameTracker(base, key_frame_interval=3, conf_threshold=None, inter="hold")
    s.init(crossing.frame(0), crossing.boxes[0])
    for i in range(1, 7):
        assert np.isfinite(s.update(crossing.frame(i))).all()
    assert s.stats["key_frames"] == 3  # frames 0, 3, 6
    assert len(base.depths) == 2  # the base ran on the two key frames after init only


def test_gated_benchmark_skip_row_searches_the_skip_frame_trackers_window():
    """The benchmark hands the skip-frame tracker a PatchMatcher, which the tracker uses as it is: it
    must already search the tracker's default 9x9 window, with the decoding options asked for."""
    import argparse

    from benchmark_scripts import load_benchmark

    from patchnet_zoo.accel.skip_frame_tracker import DEFAULT_RESPONSE_SIZE

    mod = load_benchmark("gated")
    for options, expected in (({}, (None, 1.0, 0)), ({"edge_follow": 1, "select_alpha": 30.0}, (30.0, 1.0, 1)),
                              ({"inter": "patchnet-zero-mean"}, (None, 1.0, 0))):
        args = argparse.Namespace(**{"select_alpha": None, "centre_gain": 1.0, "edge_follow": 0, "inter": "patchnet",
                                     **options})
        m = mod.skip_row_matcher(args)
        assert m.model.geometry.response_size == DEFAULT_RESPONSE_SIZE
        assert (m.select_alpha, m.centre_gain, m.edge_follow) == expected
        assert m.model.patch_norm == ("zero_mean" if args.inter == "patchnet-zero-mean" else "energy")
