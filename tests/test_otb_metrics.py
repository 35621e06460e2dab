"""OTB metrics (got10k definitions) on hand-made cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from patchnet_zoo.eval.otb import (
    IOU_THRESHOLDS, aggregate, center_error, evaluate_sequence, iou, plot_success_precision,
    precision_curve, success_curve,
)

GT = np.array([[10.0, 10.0, 20.0, 20.0]] * 5)


def test_thresholds():
    assert len(IOU_THRESHOLDS) == 21 and IOU_THRESHOLDS[0] == 0 and IOU_THRESHOLDS[-1] == 1


def test_perfect_prediction():
    r = evaluate_sequence(GT.copy(), GT)
    # IoU > theta is strict: a perfect box passes every threshold but theta = 1 (got10k gives 20/21)
    np.testing.assert_array_equal(r["success_curve"][:-1], 1.0)
    assert r["success_curve"][-1] == 0.0
    assert r["success_score"] == pytest.approx(20 / 21)
    np.testing.assert_array_equal(r["precision_curve"], 1.0)
    assert r["precision_score"] == 1.0
    assert r["frames"] == 5


def test_known_offset():
    pred = GT.copy()
    pred[1:, 0] += 10  # IoU = 200 / 600 = 1/3, centre error 10 px (frame 0 is replaced by gt)
    r = evaluate_sequence(pred, GT)
    np.testing.assert_allclose(r["ious"], [1, 1 / 3, 1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(r["center_errors"], [0, 10, 10, 10, 10])
    # thresholds 0..0.30 (7 values) are below 1/3
    expected = np.where(IOU_THRESHOLDS < 1 / 3, 1.0, 0.2)
    expected[-1] = 0.0
    np.testing.assert_allclose(r["success_curve"], expected)
    assert r["success_score"] == pytest.approx(np.mean(expected))
    prec = np.where(np.arange(51) >= 10, 1.0, 0.2)
    np.testing.assert_allclose(r["precision_curve"], prec)
    assert r["precision_score"] == 1.0


def test_precision_score_is_at_20px():
    pred = GT.copy()
    pred[1:3, 0] += 20  # exactly 20 px: counted (<=)
    pred[3:, 0] += 21  # 21 px: not counted
    r = evaluate_sequence(pred, GT)
    assert r["precision_score"] == pytest.approx(3 / 5)
    assert r["precision_curve"][21] == pytest.approx(1.0)


def test_iou_and_centre_conventions():
    # no +1 on widths: two 10x10 boxes overlapping by 5 columns -> 50 / 150
    assert iou([[0, 0, 10, 10]], [[5, 0, 10, 10]])[0] == pytest.approx(1 / 3)
    # centre = x + (w - 1) / 2: (4.5, 4.5) vs (9.5, 9.5)
    assert center_error([[0, 0, 20, 20]], [[0, 0, 10, 10]])[0] == pytest.approx(np.sqrt(50))
    assert iou([[0, 0, 10, 10]], [[20, 20, 5, 5]])[0] == 0.0


def test_frame0_replaced_and_input_untouched():
    pred = GT.copy()
    pred[0] = [500, 500, 3, 3]
    before = pred.copy()
    r = evaluate_sequence(pred, GT)
    assert r["success_score"] == pytest.approx(20 / 21) and r["precision_score"] == 1.0
    np.testing.assert_array_equal(pred, before)


def test_absent_frames_left_out():
    gt = np.array([[10, 10, 20, 20], [np.nan] * 4, [10, 10, 20, 20], [np.nan] * 4], dtype=float)
    pred = np.array([[10, 10, 20, 20], [900, 900, 1, 1], [10, 10, 20, 20], [np.nan] * 4], dtype=float)
    r = evaluate_sequence(pred, gt)
    assert r["frames"] == 2
    assert r["success_score"] == pytest.approx(20 / 21) and r["precision_score"] == 1.0


def test_missing_prediction_counts_as_failure():
    pred = GT.copy()
    pred[2:] = np.nan
    r = evaluate_sequence(pred, GT)
    np.testing.assert_array_equal(r["ious"][2:], 0.0)
    assert np.isinf(r["center_errors"][2:]).all()
    assert r["precision_score"] == pytest.approx(2 / 5)


def test_curve_functions_directly():
    np.testing.assert_allclose(success_curve([0.5, 0.5], [0.0, 0.5, 0.6]), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(precision_curve([0.0, 3.0], [0, 2, 3]), [0.5, 0.5, 1.0])
    assert np.isnan(success_curve([])).all()


def test_sequences_weigh_equally():
    long_good = evaluate_sequence(np.repeat(GT[:1], 100, 0), np.repeat(GT[:1], 100, 0))
    short_bad = GT[:2].copy()
    short_bad[1, 0] += 100  # frame 1 misses completely: IoU 0, error 100
    short = evaluate_sequence(short_bad, GT[:2])
    agg = aggregate({"long": long_good, "short": short})
    assert agg["sequences"] == 2 and agg["frames"] == 102
    np.testing.assert_allclose(agg["success_curve"], (long_good["success_curve"] + short["success_curve"]) / 2)
    assert agg["precision_score"] == pytest.approx((1.0 + 0.5) / 2)
    assert agg["success_score"] == pytest.approx(np.mean(agg["success_curve"]))
    # a list works too, and a sequence without present frames is left out
    empty = evaluate_sequence(np.zeros((3, 4)), np.full((3, 4), np.nan))
    assert aggregate([long_good, short, empty])["sequences"] == 2


def test_plot(tmp_path):
    r = evaluate_sequence(GT.copy(), GT)
    out = plot_success_precision({"perfect": r, "other": aggregate([r])}, tmp_path / "otb.png", title="t")
    assert out.is_file() and out.stat().st_size > 1000


def test_plot_with_many_lines_puts_the_legends_below_the_axes(tmp_path):
    from matplotlib.image import imread

    r = evaluate_sequence(GT.copy(), GT)
    few = imread(plot_success_precision({"a": r, "b": r}, tmp_path / "few.png"))
    many = imread(plot_success_precision({f"method {i}": r for i in range(10)}, tmp_path / "many.png"))
    # the legends take rows of their own under the plots instead of covering the curves
    assert many.shape[0] > few.shape[0] * 1.3
