"""A DDP run of VideoAccelerator, launched by tests/test_video_ddp.py in a subprocess.

``python tests/ddp_video_job.py OUT_DIR --kind detector|tracker --interval N``

Lightning's ``strategy="ddp"`` starts the other process by running this same script again (with
``LOCAL_RANK`` set), which is why it is a script and not a pytest function. Each process writes
``OUT_DIR/rank<k>.json``: the clips it ran, the frames its model saw, the gathered statistics and
the logged metrics; the test checks them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # video_oracle
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, from a checkout

DETECTION_VIDEOS = ["mot/MOT17-05-FRCNN", "mot/TUD-Campus", "mot/PETS09-S3-MF1", "mot/MOT17-13-FRCNN",
                    "mot/MOT17-10-FRCNN"]
TRACKING_VIDEOS = ["sot/Crossing", "sot/bag", "sot/wakeboard7"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--kind", choices=("detector", "tracker"), default="detector")
    p.add_argument("--interval", type=int, default=3)
    p.add_argument("--max-frames", type=int, default=10)
    p.add_argument("--data", default=None)
    args = p.parse_args()

    import lightning.pytorch as pl

    from patchnet_zoo._runtime import tune_cpu_allocator
    from patchnet_zoo.lightning import (VideoAccelerator, VideoDataModule, VideoDetectionModule,
                                        VideoTrackingModule)
    from video_oracle import FrameIndex, OracleDetector

    tune_cpu_allocator()
    torch.set_num_threads(1)  # two processes share the machine's cores
    videos = DETECTION_VIDEOS if args.kind == "detector" else TRACKING_VIDEOS
    dm = VideoDataModule(data_root=args.data, split=None, videos=videos, max_frames=args.max_frames)
    if args.kind == "detector":
        oracle = OracleDetector(FrameIndex(dm.test_set.clips))
        module = VideoDetectionModule(oracle, class_agnostic=True)
    else:
        oracle = None
        module = VideoTrackingModule("kcf")
    args.out.mkdir(parents=True, exist_ok=True)
    cb = VideoAccelerator(key_frame_interval=args.interval, stats_path=args.out / "stats.json", verbose=False)
    trainer = pl.Trainer(strategy="ddp", devices=2, accelerator="cpu", callbacks=[cb], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    original = getattr(module, args.kind)
    trainer.test(module, datamodule=dm)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    test_stats = cb.stats
    restored_after_test = getattr(module, args.kind) is original
    seen_test, module.seen_clips = module.seen_clips, []
    calls_test = list(oracle.calls) if oracle is not None else None
    predictions = trainer.predict(module, datamodule=dm)
    rank = trainer.global_rank
    record = {
        "rank": rank,
        "world_size": trainer.world_size,
        "seen_clips": seen_test,
        "seen_clips_predict": module.seen_clips,
        "oracle_calls": calls_test,
        "metrics": metrics,
        "test_stats": test_stats,
        "predict_stats": cb.stats,
        "restored": restored_after_test and getattr(module, args.kind) is original,
        "predicted": {p["clip_id"]: [bool(k) for k in p["key_frame"]] for p in predictions},
    }
    (args.out / f"rank{rank}.json").write_text(json.dumps(record, default=str))


if __name__ == "__main__":
    main()
