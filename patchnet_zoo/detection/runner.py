"""Run a detector, per frame or skip-frame, over MOTChallenge sequences and score it.

Used by ``patchnet-zoo benchmark detection`` and ``benchmarks/detection.py``. Frames are decoded
before the clock starts; a run's time is the wall-clock of the detector calls (detector +
propagation + bookkeeping). Sequences are grouped by the part of their name before the first
``-`` (``MOT17-02-FRCNN`` ... -> ``MOT17``): a group's mAP is the mean over its sequences, and the
summary's mAP is the mean over groups, so seven 4-8-frame MOT17 clips weigh as one sequence.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .detections import Detections
from .mot_eval import FrameTruth, evaluate_map, load_mot_ground_truth, mot_frame_paths

__all__ = ["MotSequence", "find_mot_sequences", "load_mot_sequences", "run_frames", "score_run",
           "benchmark_detection", "identity_scores", "group_name"]


@dataclass
class MotSequence:
    name: str
    frames: list = field(repr=False)  # RGB uint8 arrays, decoded up front
    truths: list[FrameTruth] = field(repr=False)
    fps: float | None = None

    @property
    def group(self) -> str:
        return group_name(self.name)


def group_name(name: str) -> str:
    return name.split("-")[0]


def find_mot_sequences(root: str | Path) -> list[Path]:
    """MOTChallenge folders (``gt/gt.txt`` + images) at ``root`` or in its ``mot/`` subfolder or below it."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    if (root / "gt" / "gt.txt").is_file():
        return [root]
    base = root / "mot" if (root / "mot").is_dir() else root
    found = sorted(p for p in base.iterdir() if p.is_dir() and (p / "gt" / "gt.txt").is_file())
    if not found:
        raise FileNotFoundError(f"no MOTChallenge sequences (folders with gt/gt.txt) in {base}")
    return found


def load_mot_sequences(paths, max_frames: int | None = None, progress: bool = False) -> list[MotSequence]:
    import configparser

    from tqdm.auto import tqdm

    from ..data.readers import _imread_rgb

    out = []
    for p in tqdm(list(paths), desc="decoding", unit="seq", disable=not progress, leave=False):
        files = mot_frame_paths(p)[:max_frames]
        frames = [_imread_rgb(f) for f in files]
        truths = load_mot_ground_truth(p, frame_hw=frames[0].shape[:2], num_frames=len(files))
        info = configparser.ConfigParser()
        if (Path(p) / "seqinfo.ini").is_file():
            info.read(Path(p) / "seqinfo.ini")
        out.append(MotSequence(Path(p).name, frames, truths, info.getfloat("Sequence", "frameRate", fallback=None)))
    return out


def run_frames(detector, frames, reset: bool = True) -> tuple[list[Detections], float]:
    """Detections of every frame and the wall-clock seconds of the calls; ``reset()`` first when
    the detector has one (a ``SkipFrameDetector``: a new video). A detector with look-ahead runs
    through its ``process`` (which resets it), timed as a whole."""
    perf = time.perf_counter
    if getattr(detector, "lookahead", False):
        t0 = perf()
        out = list(detector.process(frames))
        return out, perf() - t0
    if reset and hasattr(detector, "reset"):
        detector.reset()
    out = []
    seconds = 0.0
    for f in frames:
        t0 = perf()
        d = detector(f)
        seconds += perf() - t0
        out.append(d)
    return out, seconds


def score_run(runs: dict[str, list[Detections]], sequences: list[MotSequence], class_id: int = 0) -> dict:
    """``{"map50", "map", "per_group": {...}, "per_sequence": {...}}`` for the detections of each
    sequence (only class ``class_id`` is scored)."""
    per_seq = {}
    for s in sequences:
        dets = [d.filter(class_ids=[class_id]) for d in runs[s.name]]
        per_seq[s.name] = evaluate_map(dets, s.truths)
    groups: dict[str, list[str]] = {}
    for s in sequences:
        groups.setdefault(s.group, []).append(s.name)
    per_group = {g: {"map50": float(np.mean([per_seq[n]["map50"] for n in names])),
                     "map": float(np.mean([per_seq[n]["map"] for n in names])), "sequences": names}
                 for g, names in groups.items()}
    return {"map50": float(np.mean([v["map50"] for v in per_group.values()])),
            "map": float(np.mean([v["map"] for v in per_group.values()])),
            "per_group": per_group, "per_sequence": per_seq}


def benchmark_detection(make, sequences: list[MotSequence], class_id: int = 0, progress: bool = False) -> dict:
    """Run ``make()`` (a fresh detector, per frame or skip-frame) over every sequence.

    Returns the scores of ``score_run`` plus ``frames``, ``key_frames``, ``seconds``,
    ``ms_per_frame``, ``detector_ms_per_frame``, ``propagation_ms_per_box`` and ``boxes_per_frame``.
    """
    from tqdm.auto import tqdm

    det = make()
    runs, seconds, frames = {}, 0.0, 0
    stats = {"key_frames": 0, "detector_s": 0.0, "propagation_s": 0.0, "boxes_propagated": 0}
    boxes = 0
    for s in tqdm(sequences, desc=getattr(det, "name", "detector"), unit="seq", disable=not progress, leave=False):
        dets, sec = run_frames(det, s.frames)
        runs[s.name] = dets
        seconds += sec
        frames += len(s.frames)
        boxes += sum(len(d) for d in dets)
        st = getattr(det, "stats", None)
        if isinstance(st, dict):
            for k in stats:
                stats[k] += st.get(k, 0)
        else:
            stats["key_frames"] += len(s.frames)
            stats["detector_s"] += sec
    result = score_run(runs, sequences, class_id)
    result.update({
        "frames": frames,
        "key_frames": int(stats["key_frames"]),
        "seconds": seconds,
        "ms_per_frame": 1000 * seconds / frames if frames else float("nan"),
        "detector_ms_per_frame": 1000 * stats["detector_s"] / frames if frames else float("nan"),
        "detector_ms_per_key_frame": 1000 * stats["detector_s"] / stats["key_frames"] if stats["key_frames"] else float("nan"),
        "propagation_ms_per_box": (1000 * stats["propagation_s"] / stats["boxes_propagated"]
                                   if stats["boxes_propagated"] else None),
        "boxes_propagated": int(stats["boxes_propagated"]),
        "boxes_per_frame": boxes / frames if frames else float("nan"),
    })
    result["_detections"] = runs
    return result


def identity_scores(runs: dict[str, list[Detections]], sequences: list[MotSequence], class_id: int = 0) -> dict:
    """``{"pooled": ..., "per_sequence": {...}}``: CLEAR MOT and IDF1 (``mot_identity``) of the
    tracked boxes of class ``class_id`` in each sequence (every box with a track id), and the counts
    of all sequences pooled (``mot_identity.pool``)."""
    from .mot_identity import identity_metrics, pool

    per_seq = {s.name: identity_metrics([d.filter(class_ids=[class_id]) for d in runs[s.name]], s.truths)
               for s in sequences}
    return {"pooled": pool(list(per_seq.values())), "per_sequence": per_seq}

