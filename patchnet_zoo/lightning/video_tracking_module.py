"""``VideoTrackingModule``: evaluate (``trainer.test``, OTB success / precision) or run
(``trainer.predict``) a single-object tracker over whole videos, one ``VideoClip`` per batch.

```python
module = VideoTrackingModule("nanotrack")     # anything adapt_tracker accepts
trainer = Trainer(accelerator="cpu", devices=1, callbacks=[VideoAccelerator(key_frame_interval=4)])
trainer.test(module, datamodule=VideoDataModule(split="val", kind="sot"))  # logs test/success, ...
```

The tracker is initialised with the ground truth on the clip's first frame where the target is
present and updated on every later frame; ``VideoAccelerator`` turns it into a
``SkipFrameTracker`` for the run. Scores follow ``patchnet_zoo.eval.otb`` (sequences weigh the
same; absent frames are left out) and are averaged across DDP processes by torchmetrics.
"""
from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
from torchmetrics import MeanMetric

__all__ = ["VideoTrackingModule"]


class VideoTrackingModule(pl.LightningModule):
    """Args:
        tracker: anything ``adapt_tracker`` accepts (an OpenCV / got10k / pysot / pytracking
            tracker, a callable, a name such as ``"nanotrack"``).
        frame_progress: a per-frame progress bar inside each video (process 0 only).

    Attributes:
        results: ``clip_id -> {"success", "precision", "frames"}`` of the clips this process ran.
    """

    def __init__(self, tracker, frame_progress: bool = False):
        super().__init__()
        from ..accel.tracker_adapters import adapt_tracker

        self.save_hyperparameters(ignore=["tracker"])
        self.tracker = adapt_tracker(tracker)
        self.success = MeanMetric()
        self.precision = MeanMetric()
        self.results: dict[str, dict] = {}
        self.seen_clips: list[str] = []

    def track(self, clip) -> tuple[np.ndarray, np.ndarray, int | None]:
        """``(boxes (T, 4), key_frame (T,), start)``: NaN boxes before ``start``, the first frame
        with a ground-truth box (``None`` when the target never appears)."""
        from tqdm.auto import tqdm

        gt = clip.single_target_boxes()
        n = len(clip)
        boxes = np.full((n, 4), np.nan)
        keys = np.zeros(n, bool)
        present = np.isfinite(gt).all(1)
        self.seen_clips.append(clip.clip_id)
        if not present.any():
            return boxes, keys, None
        start = int(np.argmax(present))
        show = self.hparams.frame_progress and self.trainer is not None and self.trainer.is_global_zero
        frames = clip.frames
        for i in tqdm(range(start, n), desc=clip.clip_id, leave=False, disable=not show):
            frame = frames[i]
            if i == start:
                self.tracker.init(frame, gt[i])
                boxes[i], keys[i] = gt[i], True
            else:
                boxes[i] = self.tracker.update(frame)
                keys[i] = bool(getattr(self.tracker, "last_was_key", True))
        return boxes, keys, start

    def test_step(self, clip, batch_idx: int):
        from ..eval.otb import evaluate_sequence

        boxes, _, start = self.track(clip)
        if start is None:
            return
        gt = clip.single_target_boxes()
        r = evaluate_sequence(boxes[start:], gt[start:])
        if r["frames"] == 0:
            return
        self.results[clip.clip_id] = {"success": r["success_score"], "precision": r["precision_score"],
                                      "frames": r["frames"]}
        self.success.update(r["success_score"])
        self.precision.update(r["precision_score"])

    def on_test_epoch_end(self) -> None:
        # MeanMetric.compute() averages over the sequences of every process
        self.log("test/success", self.success.compute(), sync_dist=True)
        self.log("test/precision", self.precision.compute(), sync_dist=True)
        self.success.reset()
        self.precision.reset()

    def predict_step(self, clip, batch_idx: int) -> dict:
        """``{"clip_id", "video_id", "frame_ids", "boxes" (T, 4) x,y,w,h, "key_frame" (T,)}``."""
        boxes, keys, _ = self.track(clip)
        return {"clip_id": clip.clip_id, "video_id": clip.video_id, "frame_ids": clip.frame_ids,
                "boxes": boxes, "key_frame": keys}
