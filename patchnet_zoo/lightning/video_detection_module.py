"""``VideoDetectionModule``: evaluate (``trainer.test``) or run (``trainer.predict``) a detector
over whole videos, one ``VideoClip`` per batch (``VideoDataModule``).

```python
module = VideoDetectionModule(detector, class_ids=[0])      # COCO person only, for MOT videos
trainer = Trainer(accelerator="cpu", devices=1, callbacks=[VideoAccelerator(key_frame_interval=5)])
trainer.test(module, datamodule=VideoDataModule(split=None, kind="mot"))   # logs test/map, ...
```

The module calls ``self.detector(frame)`` on every frame, in order; it knows nothing of key
frames. Put ``VideoAccelerator`` in the trainer's callbacks and the same module runs the detector
on key frames only. ``test`` scores the detections against the clip's boxes with torchmetrics'
``MeanAveragePrecision`` (COCO mAP; crowd boxes are ignored, not scored; annotations are clipped
to the frame, as detections are) over all DDP
processes (the frames of every process are gathered and scored together). Where the detections
carry track ids (``VideoAccelerator(track_ids=True)``) and the annotations do too (MOT), ``test``
also logs ``test/idf1``, ``test/mota`` and ``test/id_switches`` (``detection.mot_identity``, counts
pooled over the clips). ``predict`` returns the detections of every frame and can write MOTChallenge-format
files and annotated videos (key-frame boxes solid green, propagated boxes dashed orange).
Subclass it and override ``detect`` to change what is done per frame.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import lightning.pytorch as pl
import numpy as np
import torch

from ..detection.adapters import Detector
from ..detection.mot_eval import FrameTruth
from ..detection.mot_identity import identity_metrics, pool

__all__ = ["VideoDetectionModule", "FilteredDetector", "safe_name"]


def safe_name(clip_id: str) -> str:
    """A file name for a clip id (``mot/TUD-Campus@0-50`` -> ``mot__TUD-Campus@0-50``)."""
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in clip_id.replace("/", "__"))


def _key_flag(model, det) -> bool | None:
    """Whether the last frame was a key frame: the wrapper says so, or every box says so."""
    flag = getattr(model, "last_was_key", None)
    if flag is not None:
        return bool(flag)
    if len(det):
        return bool(np.all(det.from_key_frame))
    return None


class FilteredDetector(Detector):
    """A detector that keeps only some classes / scores.

    The filter sits inside ``self.detector``, so ``VideoAccelerator`` wraps it together with the
    detector and PatchNet carries only the boxes that will be scored (fewer boxes, less time)."""

    def __init__(self, detector, class_ids: Sequence[int] | None = None, min_score: float | None = None):
        self.detector = detector
        self.class_ids = None if class_ids is None else [int(c) for c in class_ids]
        self.min_score = None if min_score is None else float(min_score)
        self.name = getattr(detector, "name", type(detector).__name__)
        self.class_names = getattr(detector, "class_names", None)

    @property
    def gflops_per_frame(self):
        return getattr(self.detector, "gflops_per_frame", None)

    def __call__(self, frame):
        return self.detector(frame).filter(self.min_score, self.class_ids)

    def __repr__(self) -> str:
        return f"FilteredDetector({self.detector!r}, class_ids={self.class_ids}, min_score={self.min_score})"


class VideoDetectionModule(pl.LightningModule):
    """Args:
        detector: anything ``adapt_detector`` accepts (a ``Detector``, an effdet / torchvision
            model, an ONNX model, a callable ``frame -> boxes``).
        class_ids: keep only detections of these classes (e.g. ``[0]``: COCO ``person`` for MOT
            videos); ``None`` keeps all. With ``min_score`` this wraps the detector in a
            ``FilteredDetector``, so only the kept boxes are carried between key frames.
        class_agnostic: score boxes regardless of class (every label becomes 0), e.g. for
            single-object sequences whose target is not a detector class.
        min_score: drop detections below this score before scoring / writing.
        output_dir: where ``predict`` writes its files (``None``: nothing is written).
        write_mot: write ``<clip>.txt`` in MOTChallenge format (1-based boxes,
            ``frame,id,left,top,w,h,score,-1,-1,-1``; id -1 unless the detections carry track ids,
            e.g. ``VideoAccelerator(track_ids=True)``).
        write_video: write ``<clip>.mp4`` with the detections drawn on the frames.
        frame_progress: a per-frame progress bar inside each video (process 0 only).
    """

    def __init__(self, detector, class_ids: Sequence[int] | None = None, class_agnostic: bool = False,
                 min_score: float | None = None, output_dir: str | None = None, write_mot: bool = False,
                 write_video: bool = False, frame_progress: bool = False):
        super().__init__()
        from ..detection.adapters import adapt_detector

        self.save_hyperparameters(ignore=["detector"])
        self.class_ids = None if class_ids is None else [int(c) for c in class_ids]
        detector = adapt_detector(detector)
        if self.class_ids is not None or min_score is not None:
            detector = FilteredDetector(detector, self.class_ids, min_score)
        self.detector = detector
        if (write_mot or write_video) and output_dir is None:
            raise ValueError("write_mot / write_video need an output_dir")
        self.seen_clips: list[str] = []  # clips this process ran, in order
        self.frame_hw: tuple[int, int] | None = None  # (H, W) of the last frame run
        self._scored: list = []

    # --------------------------------------------------------------------------------- frames
    def detect(self, frame: np.ndarray):
        """Detections of one frame (override to post-process them)."""
        return self.detector(frame)

    def run_video(self, clip) -> tuple[list, list]:
        """``(detections, key_flags)`` of every frame of ``clip``, in order."""
        from tqdm.auto import tqdm

        show = self.hparams.frame_progress and self.trainer is not None and self.trainer.is_global_zero
        dets, keys = [], []
        for frame in tqdm(clip.frames, total=len(clip), desc=clip.clip_id, leave=False, disable=not show):
            self.frame_hw = tuple(frame.shape[:2])
            d = self.detect(frame)
            dets.append(d)
            keys.append(_key_flag(self.detector, d))
        self.seen_clips.append(clip.clip_id)
        return dets, keys

    # ----------------------------------------------------------------------------------- test
    def _labels(self, labels: np.ndarray) -> np.ndarray:
        t = np.asarray(labels, dtype=np.int64)
        return np.zeros_like(t) if self.hparams.class_agnostic else t

    def on_test_epoch_start(self) -> None:
        self._scored = []

    def test_step(self, clip, batch_idx: int):
        dets, _ = self.run_video(clip)
        frames, truths = [], []
        for d, t in zip(dets, clip.targets):
            gt, keep = self._visible(t.boxes, self.frame_hw)
            crowd = np.asarray(t.crowd, dtype=bool)[keep]
            frames.append((d.boxes.astype(np.float32), d.scores.astype(np.float32), self._labels(d.class_ids),
                           gt, self._labels(np.asarray(t.labels)[keep]), crowd.astype(np.int64)))
            truths.append(FrameTruth(gt[~crowd], gt[crowd], np.asarray(t.track_ids, dtype=np.int64)[keep][~crowd]))
        self._scored.append((clip.clip_id, frames, self._identities(dets, truths)))

    def _identities(self, dets, truths) -> dict | None:
        """CLEAR MOT and IDF1 of one clip where both sides have ids: the detections (e.g. from
        ``VideoAccelerator(track_ids=True)``) and the annotations (MOT); else ``None``."""
        if not dets or any(len(d) and (d.track_ids < 0).any() for d in dets) \
                or not any(len(d) for d in dets) or any((t.ids < 0).any() for t in truths):
            return None
        return identity_metrics(dets, truths)

    @staticmethod
    def _visible(boxes_xywh, hw) -> tuple[np.ndarray, np.ndarray]:
        """Ground-truth boxes as ``x1, y1, x2, y2`` clipped to the frame, and which were kept.

        Annotations (MOT) may reach outside the frame; detectors only see, and return, the part
        inside it. Scoring the visible part keeps a perfect detector at mAP 1."""
        b = np.asarray(boxes_xywh, dtype=np.float32).reshape(-1, 4)
        h, w = hw
        xyxy = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)
        xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, w)
        xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, h)
        keep = ((xyxy[:, 2] - xyxy[:, 0]) >= 1) & ((xyxy[:, 3] - xyxy[:, 1]) >= 1)
        return xyxy[keep], keep

    def on_test_epoch_end(self) -> None:
        # torchmetrics' own DDP sync of MeanAveragePrecision gathers list states element by element
        # and hangs when processes ran different numbers of frames (videos differ in length), so
        # the frames are gathered here in one collective and every process scores all of them.
        scored = list(self._scored)
        dist = torch.distributed
        if self.trainer is not None and self.trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            parts: list = [None] * dist.get_world_size()
            dist.all_gather_object(parts, scored)
            scored = [v for p in parts for v in p]
        scored.sort(key=lambda v: v[0])
        res = self.mean_average_precision([f for _, frames, _ in scored for f in frames])
        for k in ("map", "map_50", "map_75", "mar_100"):
            self.log(f"test/{k}", float(res[k]), sync_dist=True)  # the same on every process
        identities = [m for *_, m in scored if m is not None]
        if identities:  # clips with ids on both sides: a tracking result
            ids = pool(identities)
            for k in ("idf1", "mota", "id_switches"):
                self.log(f"test/{k}", float(ids[k]), sync_dist=True)
        self.log("test/frames", float(sum(len(frames) for _, frames, _ in scored)), sync_dist=True)
        self.log("test/videos", float(len(scored)), sync_dist=True)
        self._scored = []

    @staticmethod
    def mean_average_precision(frames) -> dict:
        """COCO mAP (torchmetrics) of ``(boxes, scores, labels, gt_boxes, gt_labels, gt_crowd)``
        per frame, boxes ``x1, y1, x2, y2``; crowd boxes are ignored, not scored."""
        try:
            from torchmetrics.detection import MeanAveragePrecision

            metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", sync_on_compute=False)
        except ModuleNotFoundError as e:  # pycocotools / faster-coco-eval missing
            raise ModuleNotFoundError(f"mAP needs torchmetrics' detection backend ({e}); pip install pycocotools") from e
        preds = [{"boxes": torch.from_numpy(b).reshape(-1, 4), "scores": torch.from_numpy(s),
                  "labels": torch.from_numpy(c)} for b, s, c, *_ in frames]
        targets = [{"boxes": torch.from_numpy(g).reshape(-1, 4), "labels": torch.from_numpy(gl),
                    "iscrowd": torch.from_numpy(gc)} for *_, g, gl, gc in frames]
        metric.update(preds, targets)
        return metric.compute()

    # -------------------------------------------------------------------------------- predict
    def predict_step(self, clip, batch_idx: int) -> dict:
        """``{"clip_id", "video_id", "frame_ids", "detections", "key_frame"}`` of one clip; with
        ``output_dir`` also the files (see the class docstring)."""
        dets, keys = self.run_video(clip)
        h = self.hparams
        if h.output_dir is not None and (h.write_mot or h.write_video):
            out = Path(h.output_dir)
            out.mkdir(parents=True, exist_ok=True)
            if h.write_mot:
                self.write_mot(out / f"{safe_name(clip.clip_id)}.txt", clip.frame_ids, dets)
            if h.write_video:
                self.write_video(out / f"{safe_name(clip.clip_id)}.mp4", clip, dets, keys)
        return {"clip_id": clip.clip_id, "video_id": clip.video_id, "frame_ids": clip.frame_ids,
                "detections": dets, "key_frame": keys}

    @staticmethod
    def write_mot(path: Path, frame_ids, dets) -> Path:
        """MOTChallenge rows: 1-based frame and box corner, the track id (-1 where none was
        assigned; with ids the file is a tracking result)."""
        with open(path, "w") as f:
            for fid, d in zip(frame_ids, dets):
                for (x, y, w, hh), s, t in zip(d.xywh, d.scores, d.track_ids):
                    f.write(f"{int(fid) + 1},{int(t)},{x + 1:.2f},{y + 1:.2f},{w:.2f},{hh:.2f},{s:.4f},-1,-1,-1\n")
        return path

    def write_video(self, path: Path, clip, dets, keys) -> Path:
        from ..viz.draw import draw_boxes, draw_text
        from ..viz.video import VideoWriter

        names = getattr(self.detector, "class_names", None)
        with VideoWriter(path, clip.fps or 25.0) as w:
            for i, (frame, d) in enumerate(zip(clip.frames, dets)):
                labels = [f"{names[c] if names and 0 <= c < len(names) else c} {s:.2f}"
                          for c, s in zip(d.class_ids.tolist(), d.scores.tolist())]
                img = draw_boxes(frame, d.xywh, labels=labels, key_frame=d.from_key_frame)
                tag = {True: "key frame", False: "propagated", None: ""}[keys[i]]
                draw_text(img, f"{clip.clip_id} #{int(clip.frame_ids[i])} {tag}".strip())
                w.write(img)
        return w.path
