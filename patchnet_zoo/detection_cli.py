"""The detection commands of ``patchnet-zoo``: ``detect`` and ``benchmark detection``.

    patchnet-zoo detect VIDEO --detector SPEC [--key-frame-interval N] [--inter METHOD] --out DIR
    patchnet-zoo benchmark detection [--data DIR] --detector SPEC --key-frame-interval N
                                     [--inter METHOD] --json OUT.json

``cli.py`` only wires the parsers in (``add_detect_parser``, ``add_benchmark_detection_parser``);
this module holds what the commands do. Detector specs are those of
``detection.adapters.make_detector``: ``fastestdet`` (the shared FastestDet weights),
``fastestdet:PATH``, ``onnx:PATH``, ``effdet:NAME[:CHECKPOINT]``, ``torchvision:NAME[:WEIGHTS]``,
``python:MODULE:FUNCTION``. Errors that are the user's to fix raise ``ValueError`` / ``OSError``
with a one-line message (``cli.main`` prints it and exits with 2).
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from ._argtypes import positive_int as _positive_int, unit_float as _unit_float
from .accel.skip_frame_detector import DEFAULT_CARRIER, DEFAULT_EDGE_FOLLOW, DEFAULT_TEMPLATE_UPDATE
from .tracking_cli import warmup_note

__all__ = ["add_detect_parser", "add_benchmark_detection_parser", "cmd_detect", "cmd_benchmark_detection",
           "detect_file"]

INTER_CHOICES = ("patchnet", "hold", "kcf", "mosse")
DETECTOR_HELP = ("detector: fastestdet (the shared FastestDet weights), fastestdet:PATH, onnx:PATH, "
                 "effdet:NAME[:CHECKPOINT], torchvision:NAME[:WEIGHTS], python:MODULE:FUNCTION")


def _class_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected class ids like 0 or 0,2; got {text!r}") from None


def _add_common(p: argparse.ArgumentParser, default_interval: int) -> None:
    p.add_argument("--detector", default="fastestdet", metavar="SPEC", help=DETECTOR_HELP + " (default: %(default)s)")
    p.add_argument("--key-frame-interval", type=_positive_int, default=default_interval, metavar="N",
                   help="run the detector every N frames and carry its boxes between (1 = every frame; "
                        "default: %(default)s)")
    p.add_argument("--inter", choices=INTER_CHOICES, default="patchnet", metavar="METHOD",
                   help="how boxes are carried between key frames: " + ", ".join(INTER_CHOICES) + " (default: %(default)s)")
    p.add_argument("--policy", choices=("fixed", "adaptive"), default="fixed",
                   help="fixed: a key frame every N frames; adaptive: at most every N, sooner on a scene change "
                        "or when many carried boxes lose PatchNet's confidence (default: %(default)s)")
    p.add_argument("--score-threshold", type=_unit_float, default=0.3, metavar="S",
                   help="detections scoring below S are dropped (default: %(default)s)")
    p.add_argument("--response-size", type=_positive_int, default=None, metavar="R",
                   help="PatchNet response size, odd (default: the model's 7 = the paper's window)")
    p.add_argument("--patchnet", default=DEFAULT_CARRIER, metavar="NAME",
                   help="the pretrained PatchNet that carries boxes (default: %(default)s, 4x4-pixel patches; "
                        "patchnet = the paper's model)")
    p.add_argument("--template-update", type=_unit_float, default=None, metavar="U",
                   help=f"PatchNet's online template update rate: confident matches blend their template "
                        f"towards the current frame by U (default: {DEFAULT_TEMPLATE_UPDATE}; 0 = the key-frame "
                        f"template, as in the paper)")
    p.add_argument("--rigid-centre", action="store_true",
                   help="PatchNet centres each carried box on the best whole-template placement in its "
                        "peak cell instead of the regressed offsets (docs/design.md, \"Rigid centre\")")
    p.add_argument("--lookahead", action="store_true",
                   help="carry each frame's boxes from the nearer key frame, the later half of every gap "
                        "backwards: the same detector calls, boxes carried half as far; a frame's answer "
                        "waits for the next key frame (for video files, not live streams)")


def add_detect_parser(sub) -> argparse.ArgumentParser:
    """``detect`` under the top-level subparsers ``sub``."""
    d = sub.add_parser(
        "detect", help="detect objects in a video, the detector on key frames only; annotated video + MOT results",
        description="Run a detector on every N-th frame of VIDEO and carry its boxes (class and score kept) "
                    "through the frames between. Writes DIR/annotated.mp4 (key-frame boxes solid green, "
                    "carried boxes dashed orange), DIR/detections.txt (MOTChallenge: frame,id,x,y,w,h,score,"
                    "class,key_frame; frames 1-based, boxes 1-based; id -1 unless --track-ids) and "
                    "DIR/summary.json.")
    d.add_argument("video", metavar="VIDEO", help="video file (anything OpenCV decodes) or a folder of images")
    _add_common(d, default_interval=5)
    d.add_argument("--classes", type=_class_list, default=None, metavar="IDS",
                   help="keep only these class ids, comma-separated (e.g. 0 = person for the COCO detectors)")
    d.add_argument("--out", required=True, metavar="DIR", help="output folder")
    d.add_argument("--max-frames", type=_positive_int, default=None, metavar="N", help="only the first N frames")
    d.add_argument("--track-ids", action="store_true",
                   help="give every box a track id (a carried box keeps its key-frame detection's; a key "
                        "frame's detections take those of the carried boxes they overlap), written in the "
                        "id column: the file is then a MOTChallenge tracking result")
    d.add_argument("--no-video", action="store_true", help="skip the annotated video")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_detect)
    return d


def add_benchmark_detection_parser(bsub, data_help: str = "data root") -> argparse.ArgumentParser:
    """``benchmark detection`` under the ``benchmark`` subparsers ``bsub``."""
    b = bsub.add_parser(
        "detection", help="skip-frame detection mAP and speed-up on MOTChallenge sequences",
        description="Per-frame and skip-frame detection on the MOTChallenge sequences of DATA (DATA/mot/* or "
                    "DATA itself): mAP@0.5 and mAP@[.5:.95] of the person class (class 0), ms per frame and "
                    "speed-up over the per-frame detector measured in the same run. Writes JSON.")
    b.add_argument("--data", default=None, metavar="DIR", help=data_help)
    _add_common(b, default_interval=5)
    b.add_argument("--class-id", type=int, default=0, metavar="C", help="class scored (default: %(default)s = person)")
    b.add_argument("--max-frames", type=_positive_int, default=None, metavar="N", help="only the first N frames of each sequence")
    b.add_argument("--track-ids", action="store_true",
                   help="also give every box a track id and score the identities against the ground truth's: "
                        "IDF1, MOTA and identity switches, pooled over the sequences, beside those of the "
                        "per-frame detector with the same association (an IoU tracker)")
    b.add_argument("--json", required=True, metavar="OUT", help="where to write the results")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_benchmark_detection)
    return b


# -------------------------------------------------------------------------------------- helpers
def _build(a: argparse.Namespace, classes=None):
    """(per-frame detector, factory of the detector the command runs)."""
    from .accel.skip_frame_detector import SkipFrameDetector
    from .detection.adapters import make_detector

    kw = {"score_threshold": a.score_threshold}
    if classes is not None and a.detector.split(":", 1)[0].lower() == "fastestdet":
        kw["classes"] = classes
    try:
        base = make_detector(a.detector, **kw)
    except TypeError as e:  # an adapter that takes no such option
        raise ValueError(f"detector {a.detector!r}: {e}") from None
    track_ids = bool(getattr(a, "track_ids", False))
    if a.key_frame_interval == 1 and not track_ids:
        return base, lambda: base
    matcher = None
    if a.inter == "patchnet":
        from .trackers.patchnet_tracker import load_pretrained_patchnet

        matcher = load_pretrained_patchnet(a.patchnet)
        if a.rigid_centre:
            from .matching import PatchMatcher

            matcher = PatchMatcher(matcher, rigid_centre=True, edge_follow=DEFAULT_EDGE_FOLLOW)
    return base, lambda: SkipFrameDetector(base, key_frame_interval=a.key_frame_interval, policy=a.policy,
                                           inter=a.inter, matcher=matcher, response_size=a.response_size,
                                           template_update=a.template_update if a.inter == "patchnet" else None,
                                           lookahead=a.lookahead, track_ids=track_ids)


def _frames(path: Path):
    """(iterator of RGB frames, frame count or None, fps)."""
    from .data.readers import IMAGE_EXTS, _imread_rgb, iter_video, video_fps

    if not path.exists():
        raise FileNotFoundError(f"no video file or image folder at {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in IMAGE_EXTS)
        if not files:
            raise OSError(f"{path} holds no images")
        return (_imread_rgb(f) for f in files), len(files), 25.0
    frames = iter_video(path)
    try:
        first = next(frames)
    except StopIteration:
        raise OSError(f"cannot decode video {path}: no frames") from None

    def chain():
        yield first
        yield from frames

    n = None
    try:
        import cv2

        cap = cv2.VideoCapture(str(path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None  # a hint for the progress bar only
        cap.release()
    except Exception:  # noqa: BLE001 - cosmetic
        pass
    return chain(), n, video_fps(path)


def _detection_stream(det, frames):
    """(frame, detections, is key frame, seconds spent in the detector) for every frame, in order.
    A detector with look-ahead runs through its ``process``; it answers a frame only after reading
    the frames up to the next key frame, so the frames wait in a queue until their answer comes."""
    perf = time.perf_counter
    if not getattr(det, "lookahead", False):
        if hasattr(det, "reset"):
            det.reset()
        for frame in frames:
            t0 = perf()
            d = det(frame)
            yield frame, d, bool(getattr(det, "last_was_key", True)), perf() - t0
        return
    held = collections.deque()
    reading = [0.0]  # seconds spent decoding frames inside process(), which are not the detector's

    def feed():
        source = iter(frames)
        while True:
            t0 = perf()
            frame = next(source, None)
            reading[0] += perf() - t0
            if frame is None:
                return
            held.append(frame)
            yield frame

    answers = det.process(feed())
    seen = 0  # key frames already passed (process() resets the detector, which refills its list)
    for i in itertools.count():
        t0, read_before = perf(), reading[0]
        d = next(answers, None)
        if d is None:
            return
        sec = perf() - t0 - (reading[0] - read_before)
        key = seen < len(det.key_frame_indices) and det.key_frame_indices[seen] == i
        seen += key
        yield held.popleft(), d, key, sec


def _warm_up(det, frame: np.ndarray) -> float:
    """Seconds of an untimed pass over the first frame, twice (a key frame, then for a skip-frame
    detector one carried frame), before ``reset()``: one-time costs (a model's first call, a compiled
    match's compiling) then stay out of ``ms_per_frame``. An error is left to the real run to meet."""
    t0 = time.perf_counter()
    try:
        if getattr(det, "lookahead", False):
            for _ in det.process(iter([frame, frame])):
                pass
        else:
            det(frame)
            det(frame)
    except Exception:  # noqa: BLE001 - the timed run meets the same error and reports it
        pass
    if hasattr(det, "reset"):
        det.reset()
    return time.perf_counter() - t0


def detect_file(video, make_detector_fn, out_dir, classes=None, max_frames: int | None = None,
                progress: bool = True, write_video: bool = True, class_names=None) -> dict:
    """Run ``make_detector_fn()`` over ``video`` and write the annotated video, the MOTChallenge-format
    detections and a summary into ``out_dir``; returns the summary. Frames stream one at a time (with
    look-ahead, the frames up to the next key frame wait in memory)."""
    from tqdm.auto import tqdm

    from .viz import VideoWriter, draw_boxes, draw_text

    video, out_dir = Path(video), Path(out_dir)
    frames, total, fps = _frames(video)
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)
    out_dir.mkdir(parents=True, exist_ok=True)
    det = make_detector_fn()
    first = next(frames, None)
    if first is not None:
        frames = itertools.chain([first], frames)
    warmup_seconds = _warm_up(det, first) if first is not None else 0.0
    writer = VideoWriter(out_dir / "annotated.mp4", fps=fps) if write_video else None
    txt = out_dir / "detections.txt"
    n = boxes_total = keys = 0
    track_ids: set[int] = set()
    seconds = 0.0
    hw = None
    bar = tqdm(total=total, desc=f"detecting {video.name}", unit="frame", disable=not progress, leave=False)
    if max_frames is not None:
        frames = itertools.islice(frames, max_frames)
    try:
        with txt.open("w") as f:
            for i, (frame, d, key, sec) in enumerate(_detection_stream(det, frames)):
                hw = frame.shape[:2]
                seconds += sec
                if classes is not None:
                    d = d.filter(class_ids=classes)
                keys += key
                for (x, y, w, h), s, c, tid in zip(d.xywh, d.scores, d.class_ids, d.track_ids):
                    f.write(f"{i + 1},{int(tid)},{x + 1:.2f},{y + 1:.2f},{w:.2f},{h:.2f},{s:.4f},{int(c)},{int(key)}\n")
                boxes_total += len(d)
                track_ids.update(int(t) for t in d.track_ids if t >= 0)
                if writer is not None:
                    names = [(class_names[c] if class_names and 0 <= c < len(class_names) else str(c)) for c in d.class_ids]
                    img = frame.copy()
                    for kf in (False, True):
                        sel = d.from_key_frame == kf
                        if sel.any():
                            img = draw_boxes(img, d.xywh[sel], key_frame=kf,
                                             labels=[("" if t < 0 else f"#{t} ") + f"{nm} {s:.2f}" for nm, s, t in
                                                     zip(np.array(names)[sel], d.scores[sel], d.track_ids[sel])])
                    draw_text(img, f"frame {i}" + ("  key frame" if key else "  propagated"), (4, 4))
                    writer.write(img)
                bar.update(1)
                n += 1
    finally:
        bar.close()
        video_path = writer.close() if writer is not None else None
    if n == 0:
        raise OSError(f"no frames read from {video}")
    summary = {
        "video": video.name,
        "frames": n,
        "frame_size": [int(hw[1]), int(hw[0])],
        "key_frames": int(keys),
        "boxes": int(boxes_total),
        "tracks": len(track_ids) if track_ids else None,  # distinct track ids (None: no ids assigned)
        "seconds": seconds,
        "ms_per_frame": 1000 * seconds / n,
        "warmup_seconds": warmup_seconds,
        "detector": getattr(det, "name", "detector"),
        "outputs": {"video": video_path.name if video_path else None, "detections": txt.name, "summary": "summary.json"},
    }
    stats = getattr(det, "stats", None)
    if isinstance(stats, dict):
        summary["stats"] = stats
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary


# ------------------------------------------------------------------------------------- commands
def cmd_detect(a: argparse.Namespace) -> int:
    video = Path(a.video)
    if not video.exists():
        raise FileNotFoundError(f"no video file or image folder at {video}")
    base, make = _build(a, a.classes)
    s = detect_file(video, make, a.out, classes=a.classes, max_frames=a.max_frames, progress=not a.no_progress,
                    write_video=not a.no_video, class_names=getattr(base, "class_names", None))
    print(f"{s['detector']}: {s['frames']} frames, {s['key_frames']} key frames, {s['boxes']} boxes, "
          + (f"{s['tracks']} tracks, " if s["tracks"] else "") +
          f"{s['ms_per_frame']:.1f} ms per frame"
          + warmup_note(s["warmup_seconds"]))
    for kind, name in s["outputs"].items():
        if name:
            print(f"wrote {Path(a.out) / name}")
    return 0


def cmd_benchmark_detection(a: argparse.Namespace) -> int:
    from .cli import _data_root, _write_json
    from .detection.runner import benchmark_detection, find_mot_sequences, load_mot_sequences, run_frames
    from .eval.machine import machine_info

    paths = find_mot_sequences(_data_root(a.data))  # bad data fails before the detector loads
    base, make = _build(a)
    progress = not a.no_progress
    seqs = load_mot_sequences(paths, max_frames=a.max_frames, progress=progress)
    base(seqs[0].frames[0])  # warm-up outside the clock
    per_frame = benchmark_detection(lambda: base, seqs, class_id=a.class_id, progress=progress)
    if a.key_frame_interval == 1 and not a.track_ids:
        run = per_frame
    else:
        # the first PatchNet match of a process pays a one-off set-up cost
        run_frames(make(), seqs[0].frames[: min(3, len(seqs[0].frames))])
        run = benchmark_detection(make, seqs, class_id=a.class_id, progress=progress)
    result = {
        "map50": run["map50"], "map": run["map"], "ms_per_frame": run["ms_per_frame"],
        "speedup": per_frame["ms_per_frame"] / run["ms_per_frame"],
        "key_frames": run["key_frames"], "frames": run["frames"],
        "per_frame": {"map50": per_frame["map50"], "map": per_frame["map"], "ms_per_frame": per_frame["ms_per_frame"]},
        "propagation_ms_per_box": run["propagation_ms_per_box"],
        "per_group": run["per_group"], "per_sequence": run["per_sequence"],
        "config": {"detector": a.detector, "key_frame_interval": a.key_frame_interval, "inter": a.inter,
                   "policy": a.policy, "score_threshold": a.score_threshold, "class_id": a.class_id,
                   "response_size": a.response_size, "template_update": getattr(make(), "template_update", None),
                   "patchnet": a.patchnet if a.inter == "patchnet" else None,
                   "lookahead": a.lookahead, "rigid_centre": a.rigid_centre},
        "machine": machine_info(),
    }
    print(f"{a.detector} every {a.key_frame_interval} ({a.inter}): mAP@0.5 {result['map50']:.3f} "
          f"(per frame {per_frame['map50']:.3f}), mAP {result['map']:.3f}, {result['ms_per_frame']:.1f} ms/frame, "
          f"speed-up x{result['speedup']:.2f}, {result['key_frames']}/{result['frames']} key frames")
    if a.track_ids:
        from .accel.skip_frame_detector import SkipFrameDetector
        from .detection.runner import identity_scores

        iou_tracker = SkipFrameDetector(base, key_frame_interval=1, track_ids=True)
        tracked = {s.name: run_frames(iou_tracker, s.frames)[0] for s in seqs}
        result["identity"] = identity_scores(run["_detections"], seqs, a.class_id)
        result["identity"]["per_frame"] = identity_scores(tracked, seqs, a.class_id)["pooled"]
        ids, ref = result["identity"]["pooled"], result["identity"]["per_frame"]
        print(f"identities: IDF1 {ids['idf1']:.3f} (per frame {ref['idf1']:.3f}), MOTA {ids['mota']:.3f} "
              f"({ref['mota']:.3f}), {ids['id_switches']} identity switches ({ref['id_switches']})")
    result["config"]["track_ids"] = a.track_ids
    print(f"wrote {_write_json(a.json, result)}", file=sys.stderr)
    return 0

