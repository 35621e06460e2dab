"""The quick look: track one real validation clip with PatchNet alone and write what it did.

```
python -m patchnet_zoo.demo --out runs/demo                  # pretrained PatchNet, sot/Surfer
python -m patchnet_zoo.demo --sequence sot/bag --weights path/to/model_folder
```

Writes, under ``out_dir``:

* ``<name>.mp4`` -- every frame with the ground truth (thin white box) and the tracker's box (the
  init frame solid green, propagated frames dashed orange), the frame index, confidence and IoU;
* ``metrics.json`` -- OTB success AUC, precision at 20 px, mean IoU, mean confidence, speed;
* ``iou_confidence.png`` -- IoU and confidence over time.

The tracker starts from the ground-truth box of frame 0 and never sees the ground truth again.
Takes a few seconds on a laptop CPU for the default clip (120 frames, 360x240).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

__all__ = ["run_demo", "load_patchnet", "DEFAULT_SEQUENCE"]

# validation split, 376 frames of 480x360: PatchNet alone holds the surfer through the whole clip
# (see docs/results for every val sequence, including the ones it loses)
DEFAULT_SEQUENCE = "sot/Surfer"


# ------------------------------------------------------------------------------------------ weights
def load_patchnet(weights=None):
    """A PatchNet from ``weights``:

    * ``None`` -- ``create_model("patchnet", pretrained=True)`` (clear error if unavailable);
    * a ``PatchNet`` (any ``nn.Module``) or ``PatchMatcher`` -- used as it is;
    * a folder saved with ``save_pretrained`` (``config.json`` + ``model.safetensors``);
    * a ``.safetensors`` file (default architecture) or a ``.ckpt``/``.pt``/``.pth`` file (a
      Lightning checkpoint of ``PatchNetTask`` or a plain state dict), loaded strictly;
    * any other string -- a registry model name, e.g. ``"patchnet.got10k"``.
    """
    import torch

    from .matching import PatchMatcher
    from .trackers.patchnet_tracker import load_pretrained_patchnet

    if weights is None:
        return load_pretrained_patchnet()
    if isinstance(weights, (torch.nn.Module, PatchMatcher)):
        return weights
    from .models.patchnet import PatchNet

    path = Path(weights)
    if path.is_dir():
        return PatchNet.from_pretrained(str(path))
    if path.is_file():
        if path.suffix == ".safetensors":
            from .registry import create_model

            return create_model("patchnet", weights_path=path)
        from .hub import read_checkpoint

        state, config = read_checkpoint(path)
        model = PatchNet(**config)
        model.load_state_dict(state, strict=True)
        return model
    if isinstance(weights, str) and not any(sep in weights for sep in ("/", "\\")) and path.suffix not in (
            ".safetensors", ".ckpt", ".pt", ".pth"):
        from .registry import create_model  # a model name such as "patchnet.got10k"

        return create_model(weights, pretrained=True)
    raise FileNotFoundError(f"no weights at {path}")


# ------------------------------------------------------------------------------------------ metrics
def sequence_metrics(pred: np.ndarray, gt: np.ndarray) -> dict:
    """OTB-style scores of one sequence (``eval.otb``: frame 0 takes the ground truth, frames where
    the target is absent are left out), plus per-frame IoU with NaN on those frames for the plot."""
    from .eval.otb import evaluate_sequence

    r = evaluate_sequence(pred, gt)
    present = np.isfinite(np.asarray(gt, dtype=np.float64)).all(1)
    iou = np.full(len(present), np.nan)
    iou[present] = r["ious"]
    return {
        "success_auc": r["success_score"],
        "precision_20": r["precision_score"],
        "mean_iou": float(r["ious"].mean()) if r["frames"] else float("nan"),
        "frames_evaluated": r["frames"],
        "iou": iou,
    }


def _jsonable(v):
    if isinstance(v, (np.generic,)):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v if isinstance(v, (int, float, str, bool, type(None), list, dict)) else str(v)


# ------------------------------------------------------------------------------------------ the demo
def _open_sequence(sequence, data_root):
    from .data.readers import Sequence, default_data_root, read_folder_sequence, read_video_sequence

    if isinstance(sequence, Sequence):
        return sequence
    root = Path(data_root) if data_root is not None else default_data_root()
    path = Path(sequence if sequence is not None else DEFAULT_SEQUENCE)
    if not path.is_absolute() and not path.exists():
        path = root / path
    if not path.exists():
        raise FileNotFoundError(f"sequence {path} does not exist (data root: {root}; set $PATCHNET_ZOO_DATA "
                                f"or pass data_root=)")
    return read_folder_sequence(path) if path.is_dir() else read_video_sequence(path)


def run_demo(out_dir="runs/demo", data_root=None, sequence=None, weights=None, max_frames: int | None = None,
             show_progress: bool = True, verbose: bool = True) -> dict:
    """Track a validation clip with ``PatchNetTracker`` from its frame-0 ground truth.

    Args:
        out_dir: where the video, ``metrics.json`` and the plot go (created).
        data_root: the data folder (default ``$PATCHNET_ZOO_DATA`` or ``../shared/data``).
        sequence: a path relative to ``data_root`` (``"sot/bag"``, ``"videos/tld/david.mpg"``), an
            absolute path, or a ``data.readers.Sequence``; default ``sot/Surfer``.
        weights: see ``load_patchnet`` (default: the pretrained PatchNet from the registry).
        max_frames: stop after this many frames.

    Returns:
        the metrics (also in ``metrics.json``) plus ``video``, ``plot`` and ``metrics_file`` paths.
    """
    import torch
    from tqdm.auto import tqdm

    from .trackers.patchnet_tracker import PatchNetTracker
    from .eval.otb import iou as otb_iou
    from .viz.draw import GT_STYLE, draw_boxes, draw_text
    from .viz.plots import plot_iou_over_time
    from .viz.video import VideoWriter

    model = load_patchnet(weights)
    seq = _open_sequence(sequence, data_root)
    n = len(seq) if max_frames is None else min(len(seq), int(max_frames))
    gt = np.asarray(seq.boxes[:n], dtype=np.float64)
    if n < 1 or not np.isfinite(gt[0]).all():
        raise ValueError(f"{seq.name}: the target must be present in frame 0 to start the demo")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tracker = PatchNetTracker(model)

    pred = np.zeros((n, 4))
    conf = np.zeros(n)
    track_time = 0.0
    writer = VideoWriter(out / f"{seq.name}.mp4", fps=seq.fps or 25.0)
    with writer, torch.inference_mode():
        for i in tqdm(range(n), desc=f"demo {seq.name}", unit="frame", disable=not show_progress, leave=False):
            frame = seq.frame(i)
            t0 = time.perf_counter()
            if i == 0:
                tracker.init(frame, gt[0])
                pred[0], conf[0] = gt[0], 1.0
            else:
                pred[i], conf[i] = tracker.update(frame), tracker.confidence
            if i > 0:
                track_time += time.perf_counter() - t0
            img = draw_boxes(frame, gt[i], style=GT_STYLE)  # NaN (absent) rows are skipped
            img = draw_boxes(img, pred[i], key_frame=(i == 0))
            iou_i = otb_iou(pred[i : i + 1], gt[i : i + 1])[0] if np.isfinite(gt[i]).all() else float("nan")
            draw_text(img, f"frame {i}/{n - 1}  conf {conf[i]:.2f}  IoU {iou_i:.2f}", (4, 4))
            draw_text(img, "white: ground truth  green/orange: PatchNet (init/propagated)",
                      (4, img.shape[0]), scale=0.35)
            writer.write(img)

    m = sequence_metrics(pred, gt)
    plot = plot_iou_over_time(m["iou"], conf, out / "iou_confidence.png",
                              title=f"PatchNet alone on {seq.name}")
    metrics = {
        "sequence": seq.name,
        "frames": n,
        "frames_evaluated": m["frames_evaluated"],
        "success_auc": m["success_auc"],
        "precision_20": m["precision_20"],
        "mean_iou": m["mean_iou"],
        "mean_confidence": float(conf[1:].mean()) if n > 1 else 1.0,
        "tracker_fps": float((n - 1) / track_time) if n > 1 and track_time > 0 else None,
        "torch_threads": torch.get_num_threads(),
        "model": type(getattr(model, "model", model)).__name__,
        "weights": (None if weights is None else str(weights) if isinstance(weights, (str, Path))
                    else "in-memory model"),
        "tracker": {"template_update": tracker.template_update, "search_update": tracker.search_update,
                    "size_damping": tracker.size_damping, "update_threshold": tracker.update_threshold},
        "definitions": "OTB (got10k toolkit): frame 0 = ground truth, absent frames left out; success AUC = "
                       "mean share of frames with IoU > t, t = 0, 0.05, ..., 1; precision_20 = share of "
                       "frames with centre error <= 20 px",
    }
    metrics_file = out / "metrics.json"
    metrics_file.write_text(json.dumps({k: _jsonable(v) for k, v in metrics.items()}, indent=2) + "\n")
    np.savetxt(out / f"{seq.name}_pred.txt", pred, fmt="%.2f", delimiter=",")

    result = dict(metrics, video=str(writer.path), plot=str(plot), metrics_file=str(metrics_file))
    if verbose:
        fps = f"{metrics['tracker_fps']:.0f} fps" if metrics["tracker_fps"] else "n/a"
        print(f"{seq.name}: {n} frames, success AUC {metrics['success_auc']:.3f}, precision@20 "
              f"{metrics['precision_20']:.3f}, mean IoU {metrics['mean_iou']:.3f}, tracker {fps} "
              f"({metrics['torch_threads']} threads)\n  video: {writer.path}\n  plot: {plot}\n"
              f"  metrics: {metrics_file}")
    return result


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m patchnet_zoo.demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--data", default=None, help="data root (default $PATCHNET_ZOO_DATA or ../shared/data)")
    p.add_argument("--sequence", default=None,
                   help=f"sequence path relative to the data root (default {DEFAULT_SEQUENCE})")
    p.add_argument("--weights", default=None, help="model folder, weights file or registry name (default: pretrained)")
    p.add_argument("--max-frames", type=int, default=None)
    a = p.parse_args(argv)
    return run_demo(a.out, a.data, a.sequence, a.weights, a.max_frames)


if __name__ == "__main__":
    main()
