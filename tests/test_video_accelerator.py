"""VideoAccelerator, VideoDataModule and the reference modules, on one process, with real videos."""
from __future__ import annotations

import json
import math

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from patchnet_zoo.detection import Detections
from patchnet_zoo.lightning import (VideoAccelerator, VideoBoundaryError, VideoDataModule, VideoDetectionModule,
                                    VideoShardSampler, VideoTrackingModule, collate_video)
from patchnet_zoo.lightning.video_accelerator import video_of_batch
from video_oracle import FrameIndex, OracleDetector, make_spy_matcher

MOT_VIDEOS = ["mot/MOT17-05-FRCNN", "mot/TUD-Campus", "mot/PETS09-S3-MF1"]


def _trainer(*callbacks) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=1, callbacks=list(callbacks), logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)


@pytest.fixture(scope="module")
def mot(data_root):
    dm = VideoDataModule(data_root=str(data_root), split=None, videos=MOT_VIDEOS, max_frames=9)
    return dm, FrameIndex(dm.test_set.clips)


@pytest.fixture(scope="module")
def matcher():
    from patchnet_zoo.matching import PatchMatcher
    from patchnet_zoo.registry import create_model

    return PatchMatcher(create_model("patchnet", pretrained=True))


# ----------------------------------------------------------------------------------- datamodule
def test_items_are_whole_videos_with_mot_boxes_shifted(data_root, mot):
    dm, _ = mot
    clips = dm.test_set.clips
    assert [c.video_id for c in clips] == MOT_VIDEOS
    assert [len(c) for c in clips] == [6, 9, 9]  # MOT17-05 has 6 frames, the others are cut at 9
    assert clips[0].whole and not clips[1].whole and clips[1].clip_id == "mot/TUD-Campus@0-9"
    # first gt row of MOT17-05: "1,1,17,150,77,191,1,1,1.0" (1-based) -> 0-based x,y
    assert clips[0].targets[0].boxes[0].tolist() == [16.0, 149.0, 77.0, 191.0]
    frame = clips[0].frames[0]
    assert frame.dtype == np.uint8 and frame.shape == (480, 640, 3)
    with pytest.raises(ValueError, match="exactly one video"):
        collate_video([clips[0], clips[1]])
    assert collate_video([clips[2]]) is clips[2]


def test_video_file_clips_decode_the_right_frames(data_root):
    from patchnet_zoo.data.readers import iter_video

    dm = VideoDataModule(data_root=str(data_root), split=None, videos=["videos/tld/pedestrian1.mpg"], clip_length=50)
    clips = dm.test_set.clips
    assert [(c.start, c.stop) for c in clips] == [(0, 50), (50, 100), (100, 140)]
    reference = [f for i, f in zip(range(53), iter_video(data_root / "videos/tld/pedestrian1.mpg"))]
    frames = clips[1].frames
    assert np.array_equal(frames[2], reference[52])
    assert np.array_equal(frames[0], reference[50])  # backwards: the decoder is reopened
    assert clips[2].targets[0].boxes.shape == (1, 4)


def test_shard_sampler_gives_each_video_once_balanced():
    class Fake:
        def __init__(self, n):
            self.lengths = n

        def __len__(self):
            return len(self.lengths)

        def __getitem__(self, i):
            return [0] * self.lengths[i]

    ds = Fake([100, 10, 60, 40, 30, 20])
    shards = [list(VideoShardSampler(ds, 2, r)) for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == list(range(6))
    loads = [sum(ds.lengths[i] for i in s) for s in shards]
    assert abs(loads[0] - loads[1]) <= 20
    with pytest.raises(ValueError, match="at least one"):
        VideoShardSampler(Fake([5]), 2, 0)


def test_lookahead_is_refused_up_front():
    """The module calls its detector frame by frame, so look-ahead (which answers a frame only after
    the next key frame) is refused when the callback is made, not in the middle of a run."""
    with pytest.raises(ValueError, match="frame by frame"):
        VideoAccelerator(key_frame_interval=4, lookahead=True)


# ------------------------------------------------------------------------------------- detector
def test_detector_key_frames_reset_per_video_and_restored(mot, matcher):
    dm, index = mot
    oracle = OracleDetector(index)
    spy = make_spy_matcher(index, matcher)
    module = VideoDetectionModule(oracle, class_agnostic=True)
    original = module.detector
    interval = 4
    cb = VideoAccelerator(key_frame_interval=interval, matcher=spy, verbose=False)
    out = _trainer(cb).predict(module, datamodule=dm)
    assert module.detector is original and not cb.installed
    lengths = {c.clip_id: len(c) for c in dm.test_set.clips}
    # the detector ran on frames 0, 4, 8 of every video: the first frame of each video is a key frame
    for clip in dm.test_set.clips:
        calls = [i for v, i in oracle.calls if v == clip.video_id]
        assert calls == list(range(0, len(clip), interval))
    assert [v for v, _ in oracle.calls] == [v for v in MOT_VIDEOS for _ in range(math.ceil(lengths[
        next(c for c in lengths if c.startswith(v))] / interval))]
    # templates were matched only in frames of their own video (the spy asserts it on every call)
    assert spy.matched and all(a == b for a, b in spy.matched)
    assert set(spy.encoded) == set(MOT_VIDEOS)
    for p, clip in zip(out, dm.test_set.clips):
        keys = [i for i, k in enumerate(p["key_frame"]) if k]
        assert keys == list(range(0, len(clip), interval))
        key_det = p["detections"][0]
        h, w = clip.frames[0].shape[:2]  # detectors clip their boxes to the frame
        gt = Detections.from_xywh(clip.targets[0].boxes).clip((h, w), min_size=1e-3)
        assert np.allclose(key_det.boxes, gt.boxes, atol=1e-3) and key_det.from_key_frame.all()
        assert not p["detections"][1].from_key_frame.any()
    t = cb.stats["totals"]
    assert t["frames"] == sum(lengths.values())
    assert t["key_frames"] == sum(math.ceil(n / interval) for n in lengths.values())
    assert t["key_frame_ratio"] == pytest.approx(t["key_frames"] / t["frames"])
    assert [v["clip_id"] for v in cb.stats["videos"]] == sorted(lengths)
    for v in cb.stats["videos"]:
        assert v["key_frame_ratio"] == pytest.approx(v["key_frames"] / v["frames"])
        assert v["frames"] == lengths[v["clip_id"]]


def test_test_logs_map_and_skipping_costs_accuracy(mot, matcher, tmp_path):
    dm, index = mot
    module = VideoDetectionModule(OracleDetector(index), class_agnostic=True)
    every = _trainer().test(module, datamodule=dm)[0]
    assert every["test/map"] == pytest.approx(1.0)  # the oracle is the ground truth
    cb = VideoAccelerator(key_frame_interval=3, matcher=matcher, stats_path=tmp_path / "s.json", verbose=False)
    skipped = _trainer(cb).test(module, datamodule=dm)[0]
    assert 0.3 < skipped["test/map"] < 0.99, skipped
    assert skipped["accel/key_frame_ratio"] == pytest.approx(cb.stats["totals"]["key_frame_ratio"])
    assert json.loads((tmp_path / "s.json").read_text())["totals"]["key_frames"] == cb.stats["totals"]["key_frames"]


def test_track_ids_make_test_log_identity_metrics_and_predict_write_them(mot, matcher, tmp_path):
    """VideoAccelerator(track_ids=True): the skip-frame detector gives ids, trainer.test logs IDF1,
    MOTA and switches against the MOT annotations' ids (none without track_ids), and predict's MOT
    file carries the ids."""
    dm, index = mot
    plain = _trainer(VideoAccelerator(key_frame_interval=3, matcher=matcher, verbose=False)).test(
        VideoDetectionModule(OracleDetector(index), class_agnostic=True), datamodule=dm)[0]
    assert "test/idf1" not in plain
    cb = VideoAccelerator(key_frame_interval=3, matcher=matcher, verbose=False, track_ids=True)
    logged = _trainer(cb).test(VideoDetectionModule(OracleDetector(index), class_agnostic=True), datamodule=dm)[0]
    # the oracle's detections are the annotations: few switches, most boxes matched
    assert 0.8 < logged["test/idf1"] <= 1.0 and 0.6 < logged["test/mota"] <= 1.0
    assert logged["test/id_switches"] >= 0 and logged["test/map"] == pytest.approx(plain["test/map"])
    module = VideoDetectionModule(OracleDetector(index), output_dir=str(tmp_path), write_mot=True)
    _trainer(VideoAccelerator(key_frame_interval=3, matcher=matcher, verbose=False, track_ids=True)).predict(
        module, datamodule=dm)
    rows = np.loadtxt(tmp_path / "mot__TUD-Campus@0-9.txt", delimiter=",", ndmin=2)
    assert (rows[:, 1] >= 0).all() and len(set(rows[:, 1])) < len(rows) / 3


def test_predict_writes_mot_and_video(data_root, mot, matcher, tmp_path):
    _, index = mot
    dm = VideoDataModule(data_root=str(data_root), split=None, videos=MOT_VIDEOS[:1])
    module = VideoDetectionModule(OracleDetector(index), output_dir=str(tmp_path), write_mot=True, write_video=True)
    _trainer(VideoAccelerator(key_frame_interval=2, matcher=matcher, verbose=False)).predict(module, datamodule=dm)
    rows = np.loadtxt(tmp_path / "mot__MOT17-05-FRCNN.txt", delimiter=",", ndmin=2)
    assert set(rows[:, 0].astype(int)) == set(range(1, 7))
    first = rows[rows[:, 0] == 1][:, 2:6]
    gt = dm.test_set.clips[0].targets[0].boxes + np.array([1, 1, 0, 0])  # back to 1-based
    assert np.allclose(np.sort(first, 0), np.sort(gt, 0), atol=0.01)
    videos = [p for p in tmp_path.iterdir() if p.suffix in (".mp4", ".avi")]
    assert len(videos) == 1 and videos[0].stat().st_size > 0
    from patchnet_zoo.data.readers import read_video_frames

    assert len(read_video_frames(videos[0])) == 6


# --------------------------------------------------------------------------------- restoration
class _Boom(Exception):
    pass


def test_restored_after_an_exception_and_child_module_order_kept(mot, matcher):
    dm, index = mot
    oracle = OracleDetector(index)

    class NetDetector(torch.nn.Module):  # a detector that is a registered child module
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(2, 2)
            self.calls = 0

        def forward(self, frame):
            self.calls += 1
            if self.calls == 2:
                raise _Boom("detector failed")
            return oracle(frame)

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.before = torch.nn.Linear(1, 1)
            self.detector = NetDetector()
            self.after = torch.nn.Linear(1, 1)

        def predict_step(self, clip, batch_idx):
            return [len(self.detector(f)) for f in clip.frames]

    module = Module()
    original, keys, children = module.detector, list(module.state_dict()), list(module._modules)
    cb = VideoAccelerator(key_frame_interval=1, verbose=False)
    with pytest.raises(_Boom):
        _trainer(cb).predict(module, datamodule=dm)
    assert module.detector is original
    assert list(module._modules) == children and list(module.state_dict()) == keys
    assert not cb.installed and "detector" not in module.__dict__


def test_tracker_is_wrapped_only_during_the_run():
    module = VideoTrackingModule("kcf")
    cb = VideoAccelerator(key_frame_interval=3)
    trainer = _trainer(cb)
    cb.on_predict_start(trainer, module)
    from patchnet_zoo.accel import SkipFrameTracker

    assert isinstance(module.tracker, SkipFrameTracker) and cb.wrapper is module.tracker
    cb.on_exception(trainer, module, RuntimeError("x"))
    assert not isinstance(module.tracker, SkipFrameTracker)


# ---------------------------------------------------------------------------------- the guard
def test_batches_of_two_videos_are_refused(mot):
    dm, index = mot
    clips = dm.test_set.clips
    assert video_of_batch(clips[0])[:2] == ("mot/MOT17-05-FRCNN", "mot/MOT17-05-FRCNN")
    assert video_of_batch({"video_id": ["a", "a"], "frames": [1, 2]}) == ("a", "a", 2)
    with pytest.raises(VideoBoundaryError, match="changes mid-batch at position 2"):
        video_of_batch({"video_id": ["a", "a", "b"]})
    with pytest.raises(VideoBoundaryError, match="holds 2 videos"):
        video_of_batch([clips[0], clips[1]])

    class Mixing(VideoDetectionModule):  # runs frames of another video inside this batch
        def predict_step(self, clip, batch_idx):
            other = clips[(clips.index(clip) + 1) % len(clips)] if clip in clips else clips[0]
            return [self.detector(f) for f in list(clip.frames) + list(other.frames)[:1]]

    module = Mixing(OracleDetector(index))
    original = module.detector
    with pytest.raises(VideoBoundaryError, match="frames of another video"):
        _trainer(VideoAccelerator(key_frame_interval=2, inter="hold", verbose=False)).predict(module, datamodule=dm)
    assert module.detector is original


# ----------------------------------------------------------------------------------- tracker
def test_tracker_variant_on_a_real_val_sequence(data_root, matcher):
    from patchnet_zoo.trackers.opencv_trackers import find_nanotrack_weights

    try:
        find_nanotrack_weights()
        base = "nanotrack"  # a Siamese tracker
    except FileNotFoundError:
        base = "csrt"
    dm = VideoDataModule(data_root=str(data_root), split="val", videos=["sot/Crossing"], max_frames=40)
    module = VideoTrackingModule(base)
    original = module.tracker
    cb = VideoAccelerator(key_frame_interval=4, matcher=matcher, verbose=False)
    res = _trainer(cb).test(module, datamodule=dm)[0]
    assert module.tracker is original
    assert res["test/success"] > 0.5, res  # PatchNet carries the pedestrian between key frames
    assert res["accel/key_frame_ratio"] == pytest.approx(10 / 40)
    out = _trainer(cb).predict(module, datamodule=dm)
    assert [i for i, k in enumerate(out[0]["key_frame"]) if k] == list(range(0, 40, 4))
    assert cb.stats["totals"]["key_frames"] == 10 and cb.stats["videos"][0]["clip_id"] == "sot/Crossing@0-40"
    # the per-frame baseline: every frame a key frame
    full = _trainer().test(VideoTrackingModule(base), datamodule=dm)[0]
    assert abs(full["test/success"] - res["test/success"]) < 0.25
