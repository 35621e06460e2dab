"""``patchnet-zoo track`` on a real TLD video file, its outputs, and its one-line errors (exit 2);
``patchnet-zoo benchmark ope`` end to end on a few frames."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from patchnet_zoo import cli
from patchnet_zoo.tracking_cli import parse_box

MAX_FRAMES = 20


@pytest.fixture(scope="module")
def tld_video(data_root):
    video = data_root / "videos" / "tld" / "pedestrian1.mpg"
    if not video.is_file():
        pytest.skip(f"no TLD video at {video}")
    first = video.with_suffix(".txt").read_text().splitlines()[0]
    return video, ",".join(first.split(",")[:4])


def _video_frames(path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def _read_results(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows


def test_track_writes_video_results_and_summary(tld_video, tmp_path, capsys):
    pytest.importorskip("patchnet_zoo.trackers.opencv_trackers")
    video, box = tld_video
    out = tmp_path / "out"
    rc = cli.main(["track", str(video), "--box", box, "--tracker", "kcf", "--max-frames", str(MAX_FRAMES),
                   "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    rows = _read_results(out / "results.csv")
    assert list(rows[0]) == ["frame", "x", "y", "w", "h", "key_frame", "confidence"]
    assert [int(r["frame"]) for r in rows] == list(range(MAX_FRAMES))
    assert np.allclose([float(rows[0][k]) for k in "xywh"], [float(v) for v in box.split(",")])
    assert all(r["key_frame"] == "1" for r in rows)  # a per-frame tracker: every frame is a key frame
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == MAX_FRAMES and summary["key_frames"] == MAX_FRAMES
    assert summary["outputs"]["video"] in ("annotated.mp4", "annotated.avi")
    assert _video_frames(out / summary["outputs"]["video"]) == MAX_FRAMES
    printed = capsys.readouterr().out
    assert "results.csv" in printed and "summary.json" in printed


def test_track_skip_frame_marks_key_frames(tld_video, tmp_path):
    pytest.importorskip("patchnet_zoo.trackers.opencv_trackers")
    pytest.importorskip("patchnet_zoo.accel.skip_frame_tracker")
    video, box = tld_video
    out = tmp_path / "skip"
    rc = cli.main(["track", str(video), "--box", box, "--tracker", "kcf", "--key-frame-interval", "4",
                   "--inter", "hold", "--max-frames", str(MAX_FRAMES), "--out", str(out), "--no-progress"])
    assert rc == 0
    keys = [r["key_frame"] == "1" for r in _read_results(out / "results.csv")]
    assert keys[0] and sum(keys) == MAX_FRAMES // 4 and not all(keys)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["effective_interval"] == pytest.approx(4.0)


@pytest.mark.parametrize("box", ["1,2,3", "a,b,c,d", "1,2,0,5", "1,2,-3,4", "nan,1,2,3", "1,2,3,4,5"])
def test_bad_box_exits_2_with_one_line(box, tld_video, tmp_path, capsys):
    video, _ = tld_video
    rc = cli.main(["track", str(video), f"--box={box}", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("patchnet-zoo: error: --box must be x,y,w,h")
    assert not (tmp_path / "o").exists()


def test_box_outside_the_frame_exits_2(tld_video, tmp_path, capsys):
    video, _ = tld_video
    rc = cli.main(["track", str(video), "--box", "5000,10,20,20", "--out", str(tmp_path / "o")])
    assert rc == 2 and "outside the first frame" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"\x00\x01 not a video " * 200])
def test_unreadable_video_exits_2(content, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(content)
    rc = cli.main(["track", str(bad), "--box", "1,2,3,4", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("patchnet-zoo: error: cannot decode video")


def test_missing_video_exits_2(tmp_path, capsys):
    rc = cli.main(["track", str(tmp_path / "nope.mpg"), "--box", "1,2,3,4", "--out", str(tmp_path / "o")])
    assert rc == 2 and "no video file" in capsys.readouterr().err


def test_track_scores_against_the_ground_truth(tld_video, tmp_path, capsys):
    """--gt draws, scores and plots: the IoU column matches an independent IoU of the written boxes
    with the file's lines, the summary's mean IoU is their mean over present frames, and without
    --box the first line starts the track."""
    pytest.importorskip("patchnet_zoo.trackers.opencv_trackers")
    from patchnet_zoo.data.readers import read_boxes
    from patchnet_zoo.eval.otb import iou

    video, box = tld_video
    gt_file = video.with_suffix(".txt")
    out = tmp_path / "scored"
    rc = cli.main(["track", str(video), "--gt", str(gt_file), "--tracker", "kcf", "--key-frame-interval", "3",
                   "--inter", "patchnet", "--max-frames", str(MAX_FRAMES), "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    rows = _read_results(out / "results.csv")
    assert list(rows[0])[-1] == "iou"
    pred = np.array([[float(r[k]) for k in "xywh"] for r in rows])
    gt = read_boxes(gt_file)[:MAX_FRAMES]
    assert np.allclose(pred[0], [float(v) for v in box.split(",")])  # started from the file's first line
    present = np.isfinite(gt).all(1)
    expected = iou(pred[present], gt[present])
    written = np.array([float(r["iou"]) for r, p in zip(rows, present) if p])
    assert np.allclose(written, expected, atol=1e-3)
    assert all(r["iou"] == "" for r, p in zip(rows, present) if not p)
    g = json.loads((out / "summary.json").read_text())["ground_truth"]
    assert g["frames_scored"] == present.sum() and g["frames_without_line"] == 0
    assert g["mean_iou"] == pytest.approx(expected.mean(), abs=1e-3)
    assert 0.0 < g["success"] <= 1.0 and 0.0 <= g["precision"] <= 1.0
    assert (out / "iou.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert f"against {gt_file.name}: success" in printed and "iou.png" in printed


def test_a_short_ground_truth_file_scores_the_frames_it_covers(tld_video, tmp_path, capsys):
    video, box = tld_video
    short = tmp_path / "short.txt"
    short.write_text("\n".join(video.with_suffix(".txt").read_text().splitlines()[:5]) + "\n")
    out = tmp_path / "o"
    rc = cli.main(["track", str(video), "--box", box, "--gt", str(short), "--tracker", "kcf",
                   "--max-frames", "8", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    g = json.loads((out / "summary.json").read_text())["ground_truth"]
    assert g["frames_scored"] + g["frames_absent"] == 5 and g["frames_without_line"] == 3
    assert [r["iou"] == "" for r in _read_results(out / "results.csv")][5:] == [True] * 3
    assert "3 tracked frames have no line in it" in capsys.readouterr().out


@pytest.mark.parametrize("case, message", [
    ("neither", "give the target's first box"),
    ("missing", "no ground-truth file"),
    ("absent-first", "is no box (target absent?)"),
    ("garbage", "--gt: "),
])
def test_bad_ground_truth_exits_2_with_one_line(case, message, tld_video, tmp_path, capsys):
    video, _ = tld_video
    gt = tmp_path / "gt.txt"
    gt.write_text({"absent-first": "nan,nan,nan,nan\n1,2,3,4\n", "garbage": "1,2,3\n"}.get(case, ""))
    argv = ["track", str(video), "--out", str(tmp_path / "o")]
    argv += {"neither": [], "missing": ["--gt", str(tmp_path / "nope.txt")]}.get(case, ["--gt", str(gt)])
    rc = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()


def test_parse_box():
    assert parse_box("1, 2.5,3,4") == [1.0, 2.5, 3.0, 4.0]
    with pytest.raises(ValueError):
        parse_box("1,2,3,inf")


def test_help_lists_the_options(capsys):
    for argv, expected in ((["track", "--help"], "--box"), (["benchmark", "ope", "--help"], "--key-frame-interval")):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 0 and expected in capsys.readouterr().out


def test_benchmark_ope_writes_json(data_root, tmp_path, capsys):
    pytest.importorskip("patchnet_zoo.trackers.opencv_trackers")
    split = tmp_path / "two.txt"
    split.write_text("sot/Crossing\nsot/bag\n")
    out = tmp_path / "ope.json"
    rc = cli.main(["benchmark", "ope", "--data", str(data_root), "--split", str(split), "--tracker", "mosse",
                   "--max-frames", "10", "--json", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "frame/s" not in captured.err and "it/s" not in captured.err  # --no-progress: no bar
    r = json.loads(out.read_text())
    assert {"success", "precision", "fps", "effective_interval", "per_sequence"} <= set(r)
    assert set(r["per_sequence"]) == {"Crossing", "bag"} and r["frames"] == 20
    import torch

    assert r["machine"]["torch_threads"] == torch.get_num_threads() and r["machine"]["cpu_count"] >= 1


def test_relocate_chooses_how_the_base_tracker_is_moved(data_root, tmp_path, tld_video, capsys):
    """``--relocate``: auto (the default) shifts the key frames of CSRT, whose state is private, and
    keeps the surfer; off leaves CSRT where it last looked and loses him."""
    pytest.importorskip("patchnet_zoo.trackers.opencv_trackers")
    from patchnet_zoo.tracking_cli import _factory_from_args

    video, box = tld_video
    common = ["track", str(video), "--box", box, "--tracker", "csrt", "--key-frame-interval", "2", "--out", "o"]
    assert _factory_from_args(cli.build_parser().parse_args(common))()._shift is not None
    assert _factory_from_args(cli.build_parser().parse_args(common + ["--relocate", "off"]))()._shift is None
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(common + ["--relocate", "sometimes"])
    split = tmp_path / "surfer.txt"
    split.write_text("sot/Surfer\n")
    success = {}
    for mode in ("auto", "off"):
        out = tmp_path / f"{mode}.json"
        rc = cli.main(["benchmark", "ope", "--data", str(data_root), "--split", str(split), "--tracker", "csrt",
                       "--key-frame-interval", "2", "--max-frames", "40", "--relocate", mode, "--json", str(out)])
        assert rc == 0, capsys.readouterr().err
        success[mode] = json.loads(out.read_text())["success"]
    assert success["auto"] > 0.7 and success["off"] < 0.4  # 0.77 and 0.30 when written


def test_motion_prior_reaches_the_skip_frame_tracker(tld_video, capsys):
    from patchnet_zoo.tracking_cli import _factory_from_args

    video, box = tld_video
    common = ["track", str(video), "--box", box, "--tracker", "kcf", "--key-frame-interval", "3", "--out", "o"]
    a = cli.build_parser().parse_args(common + ["--motion-prior", "1.5"])
    factory = _factory_from_args(a)
    assert factory.config["motion_prior"] == 1.5 and factory().motion_prior == 1.5
    default = _factory_from_args(cli.build_parser().parse_args(common))
    assert default().motion_prior == 0.0
    a = cli.build_parser().parse_args(common + ["--motion-prior", "0.75"])
    assert _factory_from_args(a)().motion_prior == pytest.approx(0.75)
    for bad in ("-1", "3", "nan", "fast"):
        with pytest.raises(SystemExit) as e:
            cli.main(common + ["--motion-prior", bad])
        assert e.value.code == 2 and "--motion-prior" in capsys.readouterr().err


def test_decoding_options_reach_the_skip_frame_trackers_matcher(tld_video, capsys):
    from patchnet_zoo.tracking_cli import _factory_from_args

    video, box = tld_video
    common = ["track", str(video), "--box", box, "--tracker", "kcf", "--key-frame-interval", "3", "--out", "o"]
    a = cli.build_parser().parse_args(common + ["--select-alpha", "30", "--centre-gain", "1.5", "--edge-follow", "1",
                                                "--rigid-centre", "--compiled"])
    factory = _factory_from_args(a)
    assert factory.config["decoding"] == {"select_alpha": 30.0, "centre_gain": 1.5, "edge_follow": 1,
                                          "rigid_centre": True, "compiled": True}
    m = factory().matcher
    assert (m.select_alpha, m.centre_gain, m.edge_follow, m.rigid_centre, m.compiled,
            m.model.geometry.response_size) == (30.0, 1.5, 1, True, True, 9)
    default = _factory_from_args(cli.build_parser().parse_args(common))
    assert "decoding" not in default.config
    m = default().matcher
    assert (m.select_alpha, m.centre_gain, m.edge_follow, m.rigid_centre, m.compiled) == (None, 1.0, 0, False, False)
    for flag, bad in (("--edge-follow", "-1"), ("--edge-follow", "1.5"), ("--select-alpha", "0"),
                      ("--centre-gain", "-2")):
        with pytest.raises(SystemExit) as e:
            cli.main(common + [flag, bad])
        assert e.value.code == 2 and flag in capsys.readouterr().err


def test_one_time_costs_are_warmed_up_outside_the_timed_tracking(tld_video, tmp_path, capsys):
    """A tracker whose first update in the process is slow (as a compiled match's first call is,
    while it compiles) meets it in the untimed warm-up: ``tracking_fps`` counts the real run only,
    the warm-up's seconds are recorded and named beside the fps."""
    import time

    from patchnet_zoo.tracking_cli import WARMUP_NOTE_SECONDS, track_file

    video, box = tld_video
    first_update = {"done": False}

    class CompilesOnFirstUpdate:
        def init(self, image, box):
            self.box = list(box)

        def update(self, image):
            if not first_update["done"]:
                first_update["done"] = True
                time.sleep(WARMUP_NOTE_SECONDS + 0.5)
            return self.box

    factory = CompilesOnFirstUpdate
    summary = track_file(video, [float(v) for v in box.split(",")], factory, tmp_path / "out", max_frames=5,
                         progress=False)
    assert summary["warmup_seconds"] >= WARMUP_NOTE_SECONDS + 0.5
    assert summary["tracking_seconds"] < WARMUP_NOTE_SECONDS  # five frames of a box copy
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["warmup_seconds"] == summary["warmup_seconds"]
