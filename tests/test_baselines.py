"""Baseline matchers on real frames of the val split (small sequences, a few pairs each)."""
from __future__ import annotations

import numpy as np
import pytest

from patchnet_zoo.baselines import (
    HoldMatcher, KCFMatcher, MOSSEMatcher, NCCMatcher, create_baseline, crop_resampled,
)
from patchnet_zoo.data.readers import default_data_root, read_sequences
from patchnet_zoo.geometry import box_iou, crop_windows, to_frame_tensor


def _iou(a, b) -> float:
    return float(box_iou(np.asarray(a), np.asarray(b))[0])


@pytest.fixture(scope="module")
def val():
    root = default_data_root()
    if not (root / "splits" / "val.txt").is_file():
        pytest.skip(f"real data not found at {root} (set PATCHNET_ZOO_DATA)")
    return {s.name: s for s in read_sequences(root, "val")}


@pytest.fixture(scope="module")
def crossing(val):
    s = val["Crossing"]  # 360x240 pedestrian, slow motion: cheap and static-ish
    frames = {i: s.frame(i) for i in range(20, 36)}
    return s, frames


@pytest.mark.parametrize("name", ["hold", "ncc", "kcf", "mosse"])
def test_same_frame_keeps_the_box(crossing, name):
    s, fr = crossing
    m = create_baseline(name)
    box = m.match(fr[20], s.boxes[20], fr[20])
    assert box.shape == (4,)
    assert _iou(box, s.boxes[20]) > (0.999 if name == "hold" else 0.9)


def test_hold_is_exact(crossing):
    s, fr = crossing
    box = HoldMatcher().match(fr[20], s.boxes[20], fr[30])
    np.testing.assert_array_equal(box, s.boxes[20])
    assert _iou(box, s.boxes[20]) == pytest.approx(1.0)


def test_ncc_follows_a_real_target_one_frame(crossing):
    s, fr = crossing
    m = NCCMatcher()
    ious = [_iou(m.match(fr[t], s.boxes[t], fr[t + 1]), s.boxes[t + 1]) for t in range(20, 30)]
    assert min(ious) > 0.5
    assert np.mean(ious) > 0.75
    assert m.fallbacks == 0


def test_ncc_recovers_a_known_shift(crossing):
    s, fr = crossing
    f = fr[20]
    dx, dy = 6, -4  # content moves right by 6 and up by 4 pixels
    shifted = np.empty_like(f)
    shifted[:] = f.mean((0, 1)).astype(np.uint8)
    shifted[: f.shape[0] + dy, dx:] = f[-dy:, : f.shape[1] - dx]
    box = NCCMatcher().match(f, s.boxes[20], shifted)
    np.testing.assert_allclose(box[:2] - s.boxes[20][:2], [dx, dy], atol=1.0)
    np.testing.assert_allclose(box[2:], s.boxes[20][2:])


def test_ncc_window_is_patchnets(crossing):
    """Same window geometry as PatchNet: a crop of our NCC equals geometry.crop_windows' crop."""
    s, fr = crossing
    b = s.boxes[20]
    c = b[:2] + b[2:] / 2
    m = NCCMatcher()
    ours = crop_resampled(fr[20], c, b[2:] * m.search_scale, m.search_size)
    ref = crop_windows(to_frame_tensor(fr[20]), _t(c[None]), _t(b[None, 2:] * m.search_scale),
                       m.search_size, ours.reshape(-1, 3).mean(0))[0].permute(1, 2, 0).numpy()
    assert m.search_size == 119 and m.template_size == 64
    assert np.abs(ours - ref).mean() < 1.0


def _t(a):
    import torch

    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def test_window_partly_outside_is_mean_padded(crossing):
    s, fr = crossing
    f = fr[20]
    crop = crop_resampled(f, (2.0, 2.0), (40.0, 40.0), 40)
    inside = f[:22, :22].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(crop[0, 0], crop[:15, :15].reshape(-1, 3).mean(0), atol=1e-3)
    np.testing.assert_allclose(crop[0, 0], inside, atol=3.0)
    # a key box at the corner: every matcher answers with a valid box, none crashes
    corner = np.array([0.0, 0.0, 30.0, 40.0])
    for name in ("ncc", "kcf", "mosse", "hold"):
        box = create_baseline(name).match(f, corner, fr[21])
        assert np.isfinite(box).all() and (box[2:] > 0).all()


def test_kcf_priming_matters(crossing):
    """Unprimed OpenCV KCF answers from the initial model and lags: it returns the key box. Primed,
    it follows the target."""
    s, fr = crossing
    primed, unprimed = KCFMatcher(), KCFMatcher(prime=False)
    moved, gain = 0, []
    for t in range(20, 30, 2):
        bp = primed.match(fr[t], s.boxes[t], fr[t + 5])
        bu = unprimed.match(fr[t], s.boxes[t], fr[t + 5])
        moved += not np.allclose(bp, s.boxes[t])
        np.testing.assert_allclose(bu, s.boxes[t], atol=1e-9)  # the lag: no motion at all
        gain.append(_iou(bp, s.boxes[t + 5]) - _iou(bu, s.boxes[t + 5]))
    assert moved == 5
    assert np.mean(gain) > 0.05
    assert primed.fallbacks == 0


def test_kcf_gate_is_off():
    m = KCFMatcher()
    tracker = m._create()
    assert m.detect_thresh == 0.0 and tracker is not None


def test_region_of_interest_gives_the_same_answer(val):
    """The trackers see only a region around the box: same answers as on the whole frame, also for
    a box large enough that KCF halves the image (bag: ~146x132 px)."""
    s = val["bag"]
    for t in (50, 100):
        f0, f1 = s.frame(t), s.frame(t + 10)
        for cls in (KCFMatcher, MOSSEMatcher):
            a = cls().match(f0, s.boxes[t], f1)
            b = cls(roi_scale=None).match(f0, s.boxes[t], f1)
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_failures_give_the_key_box(crossing):
    s, fr = crossing
    flat = np.full_like(fr[20], 128)
    key = s.boxes[20]
    m = NCCMatcher()
    np.testing.assert_array_equal(m.match(flat, key, fr[21]), key)  # flat template: NCC undefined
    assert m.fallbacks == 1
    for name in ("kcf", "mosse"):  # degenerate input: a 1x1 box on a flat frame
        box = create_baseline(name).match(flat, [10.0, 10.0, 1.0, 1.0], flat)
        assert np.isfinite(box).all() and (box[2:] > 0).all()


def test_inputs_are_not_modified_and_bad_boxes_raise(crossing):
    s, fr = crossing
    f0, f1 = fr[20].copy(), fr[21].copy()
    for name in ("ncc", "kcf", "mosse"):
        create_baseline(name).match(f0, s.boxes[20], f1)
    np.testing.assert_array_equal(f0, fr[20])
    np.testing.assert_array_equal(f1, fr[21])
    with pytest.raises(ValueError):
        NCCMatcher().match(f0, [1.0, 2.0, 0.0, 5.0], f1)
    with pytest.raises(ValueError):
        create_baseline("nope")


def test_ncc_edge_follow_reaches_a_target_beyond_its_window(crossing):
    """The rule PatchMatcher(edge_follow=1) applies, for NCC: a target moved 70 % of its width (NCC's
    window reaches 43 %) is found only with the second search; a target inside the window is found
    by the first search alone, so the answer is the same."""
    s, fr = crossing
    key, box = fr[20], np.asarray(s.boxes[20], dtype=np.float64)
    once, follow = NCCMatcher(), NCCMatcher(edge_follow=1)
    for fraction, plain_finds in ((0.7, False), (0.15, True)):
        dx = int(round(fraction * box[2]))
        moved = np.roll(key, dx, axis=1)
        target = box + [dx, 0, 0, 0]
        a, b = once.match(key, box, moved), follow.match(key, box, moved)
        assert _iou(b, target) > 0.8
        assert (_iou(a, target) > 0.8) == plain_finds
        if plain_finds:
            np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError):
        NCCMatcher(edge_follow=-1)
