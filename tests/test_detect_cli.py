"""``patchnet-zoo detect`` on a real video file and an image folder (outputs, key-frame marks,
MOTChallenge rows) and ``patchnet-zoo benchmark detection`` end to end on a few frames."""
from __future__ import annotations

import json

import numpy as np
import pytest

from patchnet_zoo import cli
from patchnet_zoo.accel.skip_frame_detector import DEFAULT_CARRIER, DEFAULT_TEMPLATE_UPDATE


@pytest.fixture(scope="module")
def tud_dir(data_root):
    seq = data_root / "mot" / "TUD-Campus"
    if not (seq / "img1").is_dir():
        pytest.skip(f"no TUD-Campus at {seq}")
    try:
        from patchnet_zoo.detection import FastestDet

        FastestDet()
    except FileNotFoundError as e:
        pytest.skip(f"FastestDet weights not available: {e}")
    return seq


@pytest.fixture(scope="module")
def tud_video(tud_dir, tmp_path_factory):
    from patchnet_zoo.data.readers import _imread_rgb
    from patchnet_zoo.viz import write_video

    files = sorted((tud_dir / "img1").glob("*.jpg"))[:9]
    return write_video(tmp_path_factory.mktemp("video") / "tud.mp4", [_imread_rgb(f) for f in files], fps=25)


def _rows(path):
    return np.loadtxt(path, delimiter=",", ndmin=2)


def test_detect_video(tud_video, tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["detect", str(tud_video), "--detector", "fastestdet", "--key-frame-interval", "4",
                   "--classes", "0", "--out", str(out), "--no-progress"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 9 and summary["key_frames"] == 3  # frames 0, 4, 8
    assert summary["stats"]["key_frames"] == 3
    rows = _rows(out / "detections.txt")
    assert set(rows[:, 0].astype(int)) <= set(range(1, 10)) and len(set(rows[:, 0].astype(int))) >= 8
    key = {int(f): int(k) for f, k in zip(rows[:, 0], rows[:, 8])}
    assert [f for f, k in sorted(key.items()) if k] == [1, 5, 9]  # 1-based frames of the key frames
    assert (rows[:, 7] == 0).all() and (rows[:, 6] >= 0.3).all()  # persons only, above the threshold
    assert (rows[:, 4] > 0).all() and (rows[:, 5] > 0).all()
    assert (out / summary["outputs"]["video"]).stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


def test_detect_track_ids_write_a_mot_tracking_result(tud_video, tmp_path):
    """--track-ids fills the id column: ids >= 0, one box per id and frame, every carried frame
    repeats ids of its key frame, and people keep their ids across key frames (far fewer ids than
    boxes). Without it the column stays -1."""
    out = tmp_path / "ids"
    assert cli.main(["detect", str(tud_video), "--key-frame-interval", "3", "--classes", "0", "--track-ids",
                     "--score-threshold", "0.5", "--no-video", "--out", str(out), "--no-progress"]) == 0
    rows = _rows(out / "detections.txt")
    frames, ids = rows[:, 0].astype(int), rows[:, 1].astype(int)
    assert (ids >= 0).all()
    for f in set(frames):
        assert len(set(ids[frames == f])) == (frames == f).sum()
        key = f - (f - 1) % 3
        assert set(ids[frames == f]) <= set(ids[frames == key])
    assert len(set(ids)) < len(ids) / 3
    assert json.loads((out / "summary.json").read_text())["tracks"] == len(set(ids))
    assert cli.main(["detect", str(tud_video), "--key-frame-interval", "3", "--classes", "0", "--no-video",
                     "--out", str(tmp_path / "plain"), "--no-progress"]) == 0
    assert (_rows(tmp_path / "plain" / "detections.txt")[:, 1] == -1).all()
    assert json.loads((tmp_path / "plain" / "summary.json").read_text())["tracks"] is None


def test_detect_video_with_lookahead(tud_video, tmp_path):
    """--lookahead: the same key frames, every frame still written once and in order, and the frames
    nearer to the next key frame carry its boxes (frame 3 shows exactly frame 4's detections)."""
    runs = {}
    for name, extra in (("plain", []), ("ahead", ["--lookahead"])):
        out = tmp_path / name
        assert cli.main(["detect", str(tud_video), "--key-frame-interval", "4", "--inter", "hold", "--classes", "0",
                         "--no-video", "--out", str(out), "--no-progress"] + extra) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["frames"] == 9 and summary["key_frames"] == 3
        runs[name] = _rows(out / "detections.txt")
    ahead, plain = runs["ahead"], runs["plain"]
    frames = ahead[:, 0].astype(int)
    assert (np.diff(frames) >= 0).all() and set(frames) == set(plain[:, 0].astype(int))
    assert [f for f in sorted(set(frames)) if ahead[frames == f, 8].all()] == [1, 5, 9]

    def boxes(rows, frame):
        return rows[rows[:, 0] == frame][:, 2:6]

    np.testing.assert_allclose(boxes(ahead, 4), boxes(plain, 5))  # frame 3 (1-based 4) from key frame 4
    np.testing.assert_allclose(boxes(ahead, 3), boxes(plain, 1))  # frame 2: a tie, from key frame 0
    np.testing.assert_allclose(boxes(plain, 4), boxes(plain, 1))  # without it: from key frame 0


def test_detect_image_folder_every_frame(tud_dir, tmp_path):
    out = tmp_path / "folder"
    rc = cli.main(["detect", str(tud_dir / "img1"), "--key-frame-interval", "1", "--max-frames", "3",
                   "--no-video", "--out", str(out), "--no-progress"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["frames"] == 3 and s["key_frames"] == 3 and s["outputs"]["video"] is None


def test_benchmark_detection_json(tud_dir, tmp_path):
    data = tmp_path / "data" / "mot"
    data.mkdir(parents=True)
    (data / "TUD-Campus").symlink_to(tud_dir)
    out = tmp_path / "bench.json"
    rc = cli.main(["benchmark", "detection", "--data", str(tmp_path / "data"), "--detector", "fastestdet",
                   "--key-frame-interval", "3", "--inter", "patchnet", "--max-frames", "10", "--json", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    for key in ("map50", "map", "ms_per_frame", "speedup", "key_frames", "frames"):
        assert key in r
    assert r["frames"] == 10 and r["key_frames"] == 4
    assert 0.4 < r["map50"] <= 1.0 and r["map"] < r["map50"]
    assert r["speedup"] > 0 and r["per_frame"]["map50"] > 0.4
    assert r["machine"]["torch_threads"] >= 1 and "python" in r["machine"]  # where the timings were taken
    upd = tmp_path / "bench_key_template.json"
    assert cli.main(["benchmark", "detection", "--data", str(tmp_path / "data"), "--key-frame-interval", "3",
                     "--template-update", "0", "--max-frames", "10", "--json", str(upd)]) == 0
    u = json.loads(upd.read_text())
    assert u["config"]["template_update"] == 0.0 and r["config"]["template_update"] == DEFAULT_TEMPLATE_UPDATE
    assert r["config"]["patchnet"] == DEFAULT_CARRIER
    assert u["map50"] != r["map50"] or u["map"] != r["map"]  # the key-frame templates carried differently
    paper = tmp_path / "bench_paper.json"
    assert cli.main(["benchmark", "detection", "--data", str(tmp_path / "data"), "--key-frame-interval", "3",
                     "--patchnet", "patchnet", "--template-update", "0", "--max-frames", "10",
                     "--json", str(paper)]) == 0
    p = json.loads(paper.read_text())
    assert p["config"]["patchnet"] == "patchnet" and (p["map50"], p["map"]) != (u["map50"], u["map"])
    rigid = tmp_path / "bench_rigid.json"
    assert cli.main(["benchmark", "detection", "--data", str(tmp_path / "data"), "--key-frame-interval", "3",
                     "--rigid-centre", "--max-frames", "10", "--json", str(rigid)]) == 0
    c = json.loads(rigid.read_text())
    assert c["config"]["rigid_centre"] and not r["config"]["rigid_centre"]
    assert c["key_frames"] == r["key_frames"] and c["map50"] > 0.4
    assert c["map50"] != r["map50"] or c["map"] != r["map"]  # the boxes were placed differently


def test_benchmark_detection_scores_identities(data_root, tmp_path, capsys):
    """--track-ids: the JSON gains pooled and per-sequence IDF1 / MOTA / switches for the skip-frame
    run and the per-frame IoU tracker, computed from real MOT ground-truth ids."""
    if not (data_root / "mot" / "TUD-Campus").is_dir():
        pytest.skip("no MOTChallenge sequences")
    out = tmp_path / "ids.json"
    assert cli.main(["benchmark", "detection", "--data", str(data_root / "mot" / "TUD-Campus"), "--key-frame-interval",
                     "3", "--score-threshold", "0.5", "--track-ids", "--max-frames", "12", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    ids = r["identity"]
    assert r["config"]["track_ids"] and set(ids) == {"pooled", "per_sequence", "per_frame"}
    for m in (ids["pooled"], ids["per_frame"]):
        assert 0.0 < m["idf1"] <= 1.0 and m["mota"] <= 1.0 and m["id_switches"] >= 0
    seq = ids["per_sequence"]["TUD-Campus"]
    assert ids["pooled"]["idf1"] == pytest.approx(seq["idf1"]) and seq["frames"] == 12
    assert "identities: IDF1" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["detect", "missing.mp4", "--out", "x"], "no video file"),
    (["detect", "{video}", "--detector", "yolo:v8", "--out", "{tmp}"], "unknown detector spec"),
    (["benchmark", "detection", "--data", "{tmp}", "--json", "{tmp}/r.json"], "no MOTChallenge sequences"),
])
def test_errors_are_one_line(argv, message, tud_video, tmp_path, capsys):
    argv = [a.format(video=tud_video, tmp=tmp_path) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_one_time_costs_are_warmed_up_outside_ms_per_frame(tud_video, tmp_path):
    """A detector whose first call in the process is slow (a model's first run, a compiled match
    compiling) meets it in the untimed warm-up before ``reset()``: ``ms_per_frame`` counts the real
    run only, the key frames and statistics are the real run's, and the warm-up's seconds are kept."""
    import time

    from patchnet_zoo.accel import accelerate_detector
    from patchnet_zoo.detection_cli import detect_file
    from patchnet_zoo.tracking_cli import WARMUP_NOTE_SECONDS

    calls = {"n": 0}

    def slow_first_call(frame):
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(WARMUP_NOTE_SECONDS + 0.5)
        return {"boxes": np.array([[100.0, 100.0, 160.0, 260.0]]), "scores": np.array([0.9]),
                "labels": np.array([0])}

    summary = detect_file(tud_video, lambda: accelerate_detector(slow_first_call, key_frame_interval=4),
                          tmp_path / "out", progress=False, write_video=False)
    assert summary["warmup_seconds"] >= WARMUP_NOTE_SECONDS + 0.5
    assert summary["ms_per_frame"] * summary["frames"] < 1000 * WARMUP_NOTE_SECONDS
    assert summary["key_frames"] == 3 and summary["stats"]["key_frames"] == 3 and summary["stats"]["frames"] == 9
    assert calls["n"] == 1 + 3  # the warm-up's key frame, then the run's three
    assert len(_rows(tmp_path / "out" / "detections.txt")) == 9  # one box carried through every frame
