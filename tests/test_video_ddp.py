"""VideoAccelerator under ``Trainer(strategy="ddp", devices=2, accelerator="cpu")`` on real MOT clips.

Lightning's ``ddp`` strategy starts the second process by re-running the launching script, so the
run lives in ``tests/ddp_video_job.py`` and is started here in a subprocess with a timeout (pytest
itself cannot be re-run as a DDP worker).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from ddp_video_job import DETECTION_VIDEOS

INTERVAL = 3
MAX_FRAMES = 10


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, data_root, repo_root):
    out = tmp_path_factory.mktemp("ddp")
    env = dict(os.environ, PYTHONPATH=str(repo_root), HF_HUB_OFFLINE="1", PATCHNET_ZOO_DATA=str(data_root))
    cmd = [sys.executable, str(repo_root / "tests" / "ddp_video_job.py"), str(out), "--kind", "detector",
           "--interval", str(INTERVAL), "--max-frames", str(MAX_FRAMES)]
    try:
        proc = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the DDP run did not finish in {e.timeout} s (a collective that hangs?)\n{(e.stderr or '')[-3000:]}")
    assert proc.returncode == 0, f"DDP run failed:\n{proc.stderr[-4000:]}"
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return out, ranks


def _clip_lengths(data_root) -> dict[str, int]:
    from patchnet_zoo.lightning import VideoDataModule

    dm = VideoDataModule(data_root=str(data_root), split=None, videos=DETECTION_VIDEOS, max_frames=MAX_FRAMES)
    return {c.clip_id: len(c) for c in dm.test_set.clips}


def test_every_video_exactly_once_across_two_processes(ddp_run, data_root):
    _, ranks = ddp_run
    lengths = _clip_lengths(data_root)
    assert [r["world_size"] for r in ranks] == [2, 2]
    for stage in ("seen_clips", "seen_clips_predict"):
        seen = [set(r[stage]) for r in ranks]
        assert all(seen), f"{stage}: a process ran no video"
        assert not (seen[0] & seen[1]), f"{stage}: a video ran on both processes: {seen[0] & seen[1]}"
        assert sum(len(r[stage]) for r in ranks) == len(lengths)  # no video twice on one process either
        assert seen[0] | seen[1] == set(lengths)
    # the detector saw exactly the key frames: the first of every clip, then every INTERVAL-th
    for r in ranks:
        by_video: dict[str, list[int]] = {}
        for vid, i in r["oracle_calls"]:
            by_video.setdefault(vid, []).append(i)
        ran = {c.split("@")[0]: c for c in r["seen_clips"]}
        assert set(by_video) == set(ran)
        for vid, calls in by_video.items():
            assert calls == list(range(0, lengths[ran[vid]], INTERVAL)), (vid, calls)
    # predict: key-frame flags per clip, from both processes together
    predicted = {**ranks[0]["predicted"], **ranks[1]["predicted"]}
    assert set(predicted) == set(lengths)
    for clip, keys in predicted.items():
        assert len(keys) == lengths[clip]
        assert [i for i, k in enumerate(keys) if k] == list(range(0, lengths[clip], INTERVAL))


def test_gathered_statistics_add_up(ddp_run, data_root):
    out, ranks = ddp_run
    lengths = _clip_lengths(data_root)
    expected_keys = sum(math.ceil(n / INTERVAL) for n in lengths.values())
    for stage in ("test_stats", "predict_stats"):
        s0, s1 = ranks[0][stage], ranks[1][stage]
        assert s0 == s1, f"{stage}: the processes disagree on the gathered statistics"
        t = s0["totals"]
        assert t["videos"] == len(lengths)
        assert t["frames"] == sum(lengths.values())
        assert t["key_frames"] == expected_keys
        assert t["key_frame_ratio"] == pytest.approx(expected_keys / t["frames"])
        assert {v["clip_id"]: v["frames"] for v in s0["videos"]} == lengths
        for rank_row, r in zip(s0["per_rank"], ranks):
            mine = r["seen_clips"] if stage == "test_stats" else r["seen_clips_predict"]
            assert rank_row["frames"] == sum(lengths[c] for c in mine)
            assert {v["clip_id"] for v in s0["videos"] if v["rank"] == rank_row["rank"]} == set(mine)
        assert sum(p["frames"] for p in s0["per_rank"]) == t["frames"]
        assert sum(p["model_s"] for p in s0["per_rank"]) == pytest.approx(t["model_s"])
        assert t["propagation_s"] > 0  # PatchNet did carry boxes
    written = json.loads((out / "stats.json").read_text())
    assert written["totals"]["frames"] == sum(lengths.values())
    # logged in test, the same on both processes; the oracle's key frames are exact, so mAP is
    # high but below 1 (propagated frames are not the ground truth)
    m0, m1 = ranks[0]["metrics"], ranks[1]["metrics"]
    assert m0 == m1
    assert m0["accel/key_frame_ratio"] == pytest.approx(expected_keys / sum(lengths.values()), abs=1e-6)
    assert m0["test/frames"] == sum(lengths.values())
    assert 0.3 < m0["test/map"] < 1.0
    assert all(r["restored"] for r in ranks)
