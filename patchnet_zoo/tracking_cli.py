"""The tracking commands of ``patchnet-zoo``: ``benchmark ope`` and ``track``.

    patchnet-zoo benchmark ope --data DIR [--split FILE] --tracker SPEC [--key-frame-interval N]
                               [--inter METHOD] [--conf-threshold T] --json OUT.json
    patchnet-zoo track VIDEO (--box x,y,w,h | --gt FILE) --tracker SPEC [--key-frame-interval N]
                       [--inter METHOD] --out DIR

``cli.py`` only wires the parsers in (``add_ope_parser``, ``add_track_parser``); this module holds
what the commands do. Importing it is cheap: OpenCV, torch and the trackers are imported by the
command that runs. Errors that are the user's to fix raise ``ValueError`` / ``OSError`` with a
one-line message, which ``cli.main`` prints and answers with exit status 2.

Tracker specs are those of ``trackers.opencv_trackers.make_base_tracker`` (``nanotrack``, ``csrt``,
``kcf``, ``mosse``, ``patchnet``, ...). With ``--key-frame-interval N`` the base tracker runs at least
every N frames (key frames) inside an ``accel.SkipFrameTracker`` and ``--inter`` carries the box in
between; with PatchNet a confidence below ``--conf-threshold`` makes the current frame a key frame
at once (``--conf-threshold 0`` switches that off).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ._argtypes import float_in, non_negative_int, positive_int as _positive_int, unit_float as _unit_float
from .accel.skip_frame_tracker import DEFAULT_MOTION_PRIOR, DEFAULT_RESPONSE_SIZE, INTER_METHODS

__all__ = ["parse_box", "read_ground_truth", "add_ope_parser", "add_track_parser", "cmd_benchmark_ope", "cmd_track",
           "track_file"]

INTER_CHOICES = INTER_METHODS
TRACKER_HELP = ("base tracker: nanotrack, csrt, kcf, mosse, patchnet, gated[:POLICY] (the gated "
                "Siamese tracker; POLICY hard, hard0.4, soft or fixed1..fixed5) (anything "
                "trackers.opencv_trackers.make_base_tracker accepts)")


# ----------------------------------------------------------------------------------- arguments
def parse_box(text: str) -> "list[float]":
    """``"x,y,w,h"`` (0-based pixels, floats allowed) -> ``[x, y, w, h]``; ``ValueError`` otherwise."""
    hint = f"--box must be x,y,w,h (four numbers, 0-based pixels, w and h > 0), got {text!r}"
    parts = [p.strip() for p in str(text).replace(";", ",").split(",")]
    if len(parts) != 4 or any(p == "" for p in parts):
        raise ValueError(hint)
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise ValueError(hint) from None
    if not all(math.isfinite(v) for v in vals) or vals[2] <= 0 or vals[3] <= 0:
        raise ValueError(hint)
    return vals


def _add_tracker_arguments(p: argparse.ArgumentParser, tracker_required: bool) -> None:
    p.add_argument("--tracker", required=tracker_required, default=None if tracker_required else "nanotrack",
                   metavar="SPEC", help=TRACKER_HELP + ("" if tracker_required else " (default: %(default)s)"))
    p.add_argument("--key-frame-interval", type=_positive_int, default=None, metavar="N",
                   help="run the base tracker at least every N frames and --inter in between "
                        "(default: the base tracker on every frame)")
    p.add_argument("--inter", choices=INTER_CHOICES, default="patchnet", metavar="METHOD",
                   help="inter-frame method with --key-frame-interval: " + ", ".join(INTER_CHOICES)
                        + " (hold repeats the key-frame box; kcf is KCF with its failure gate off) "
                          "(default: %(default)s)")
    p.add_argument("--conf-threshold", type=_unit_float, default=0.8, metavar="T",
                   help="inter-frame confidence below which the frame becomes a key frame at once "
                        "(PatchNet's peak ratio; KCF/MOSSE: 0 when they report a loss); 0 = off "
                        "(default: %(default)s)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="local safetensors file for the PatchNet of --inter (default: the packaged weights)")
    p.add_argument("--untrained", action="store_true",
                   help="use a freshly initialised PatchNet (checks that the pipeline runs; not a result)")
    p.add_argument("--response-size", type=_positive_int, default=DEFAULT_RESPONSE_SIZE, metavar="R",
                   help="PatchNet's search extent between key frames in response cells, odd (default: "
                        "%(default)s; 7 = the paper's window of +-37.5 %% of the box)")
    p.add_argument("--motion-prior", type=float_in(0.0, 2.0), default=DEFAULT_MOTION_PRIOR, metavar="M",
                   help="share of the target's last displacement by which PatchNet's search window leads "
                        "the last box between key frames, 0-2 (default: %(default)s; 0 = centred on it)")
    p.add_argument("--relocate", choices=tuple(RELOCATE_CHOICES), default="auto",
                   help="how the base tracker is moved to PatchNet's estimate before a key frame: auto = "
                        "through its own relocate where it has one (NanoTrack, the gated tracker), else "
                        "by shifting the frame it is shown (OpenCV's trackers); shift = always by "
                        "shifting the frame; off = not at all (default: %(default)s; docs/design.md, "
                        "\"Relocating a tracker with private state\")")
    add_decoding_arguments(p)
    p.add_argument("--max-frames", type=_positive_int, default=None, metavar="N",
                   help="only the first N frames" + (" of each sequence" if tracker_required else ""))


#: ``--relocate`` -> ``SkipFrameTracker(relocate_base=...)``
RELOCATE_CHOICES = {"auto": True, "shift": "shift", "off": False}


def add_decoding_arguments(p: argparse.ArgumentParser) -> None:
    """PatchMatcher's decoding options (docs/design.md, "Sub-cell shrinkage" and "Following a peak
    past the window's edge"); the defaults are the paper's decoding."""
    p.add_argument("--select-alpha", type=float_in(1e-3, 1e6), default=None, metavar="A",
                   help="PatchNet's soft-select temperature at inference (default: the learned ones)")
    p.add_argument("--centre-gain", type=float_in(0.0, 10.0), default=1.0, metavar="K",
                   help="factor on PatchNet's regressed centre shift within the peak cell (default: %(default)s)")
    p.add_argument("--edge-follow", type=non_negative_int, default=0, metavar="N",
                   help="more searches for a peak on the window's edge, each centred on the last answer "
                        "(default: %(default)s)")
    p.add_argument("--rigid-centre", action="store_true",
                   help="place the box's centre at the best whole-template placement in the peak "
                        "cell instead of the regressed offsets (docs/design.md, \"Rigid centre\")")
    p.add_argument("--compiled", action="store_true",
                   help="compile PatchNet's matches (a one-box match after its crop as one graph, "
                        "compiled ahead of time, the boxes the same to float rounding, in less time; "
                        "needs a C++ compiler; the first match of a model and window compiles for some "
                        "seconds, later runs load it from torch's compile cache; docs/design.md, "
                        "\"A compiled match\")")


#: the paper's decoding, run eagerly (``compiled`` changes the speed, a box only by float rounding)
_PAPER_DECODING = {"select_alpha": None, "centre_gain": 1.0, "edge_follow": 0, "rigid_centre": False,
                   "compiled": False}


def decoding_options(a: argparse.Namespace) -> dict:
    """The ``PatchMatcher`` options that the arguments of ``add_decoding_arguments`` change from
    the paper's decoding (empty: none)."""
    return {k: getattr(a, k, paper) for k, paper in _PAPER_DECODING.items() if getattr(a, k, paper) != paper}


def add_ope_parser(bsub, data_help: str = "data root") -> argparse.ArgumentParser:
    """``benchmark ope`` under the ``benchmark`` subparsers ``bsub``."""
    o = bsub.add_parser(
        "ope", help="OTB one-pass evaluation of a (skip-frame) tracker: success, precision, fps",
        description="One-pass evaluation: one fresh tracker per sequence, initialised with the ground "
                    "truth in frame 0; OTB success score (AUC over 21 IoU thresholds) and precision at "
                    "20 px, sequences weighing equally; fps of the tracking alone (frames decoded "
                    "beforehand); with --key-frame-interval the effective key-frame interval. Writes JSON.")
    o.add_argument("--data", default=None, metavar="DIR", help=data_help)
    o.add_argument("--split", default="val", metavar="FILE",
                   help="split file, or a name in DATA/splits (default: %(default)s)")
    _add_tracker_arguments(o, tracker_required=True)
    o.add_argument("--json", required=True, metavar="OUT", help="where to write the results")
    o.add_argument("--plot", default=None, metavar="PNG", help="also write the success and precision plots")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    o.set_defaults(func=cmd_benchmark_ope)
    return o


def add_track_parser(sub) -> argparse.ArgumentParser:
    """``track`` under the top-level subparsers ``sub``."""
    t = sub.add_parser(
        "track", help="track one box through any video file; annotated video + per-frame results",
        description="Track the box given for the first frame through VIDEO (any file OpenCV decodes) and "
                    "write DIR/annotated.mp4 (key frames: solid green box; propagated frames: dashed "
                    "orange), DIR/results.csv (frame, x, y, w, h, key_frame, confidence) and "
                    "DIR/summary.json. With --gt the ground truth is drawn too (white), scored the OTB way "
                    "(success, precision, mean IoU in summary.json, IoU per frame in results.csv) and "
                    "plotted against the frame (DIR/iou.png).")
    t.add_argument("video", metavar="VIDEO", help="video file")
    t.add_argument("--box", default=None, metavar="x,y,w,h",
                   help="the target in the first frame, 0-based pixels (e.g. --box 120,80,40,60); "
                        "default with --gt: its first box")
    t.add_argument("--gt", default=None, metavar="FILE",
                   help="ground truth to score against: one x,y,w,h line per frame (0-based pixels; "
                        "comma, tab or space separated; nan,nan,nan,nan = target absent)")
    _add_tracker_arguments(t, tracker_required=False)
    t.add_argument("--out", required=True, metavar="DIR", help="output folder")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_track)
    return t


def _factory_from_args(a: argparse.Namespace):
    from .eval.ope import build_tracker_factory

    return build_tracker_factory(
        a.tracker, key_frame_interval=a.key_frame_interval, inter=a.inter, conf_threshold=a.conf_threshold,
        weights=a.weights, untrained=a.untrained, response_size=a.response_size, motion_prior=a.motion_prior,
        decoding=decoding_options(a), relocate_base=RELOCATE_CHOICES[a.relocate])


# ---------------------------------------------------------------------------------- benchmark ope
def cmd_benchmark_ope(a: argparse.Namespace) -> int:
    from .cli import _data_root, _write_json
    from .data.readers import read_sequences
    from .eval.machine import machine_info
    from .eval.ope import curves_for_plot, run_ope, summary_line

    sequences = read_sequences(_data_root(a.data), a.split)  # bad data fails before the trackers load
    if not sequences:
        raise ValueError(f"split {a.split!r} lists no sequences")
    factory = _factory_from_args(a)
    result = run_ope(factory, sequences, progress=not a.no_progress, max_frames=a.max_frames)
    result["split"] = str(a.split)
    result["machine"] = machine_info()  # fps mean little without the machine and its thread counts
    print(f"# {factory.name} on {a.split} ({result['sequences']} sequences, {result['frames']} frames)")
    print(summary_line(result))
    width = max(len(n) for n in result["per_sequence"])
    for name, r in result["per_sequence"].items():
        print(f"  {name:<{width}}  success {r['success']:.3f}  precision {r['precision']:.3f}  "
              f"{r['fps']:8.1f} fps  interval {r['effective_interval']:.2f}")
    print(f"wrote {_write_json(a.json, result)}", file=sys.stderr)
    if a.plot:
        from .eval.otb import plot_success_precision

        path = plot_success_precision({factory.name: curves_for_plot(result)}, a.plot,
                                      title=f"OPE on {a.split}")
        print(f"wrote {path}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------ track
def _first_frame(path: Path):
    """The open frame iterator and its first frame; clear errors for a missing or unreadable file."""
    from .data.readers import iter_video

    if not path.exists():
        raise FileNotFoundError(f"no video file at {path}")
    if not path.is_file():
        raise OSError(f"{path} is not a file")
    frames = iter_video(path)
    try:
        first = next(frames)
    except StopIteration:
        raise OSError(f"cannot decode video {path}: no frames") from None
    return frames, first


def _frame_count(path: Path) -> int | None:
    try:
        import cv2

        cap = cv2.VideoCapture(str(path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # a hint for the progress bar only
        cap.release()
        return n if n > 0 else None
    except Exception:  # noqa: BLE001 - cosmetic
        return None


def _label(key: bool, config: dict, conf: float) -> str:
    if key:  # a finite confidence on a key frame: the low match that forced it
        return f"KEY {config['tracker']}" + (f" (forced, conf {conf:.2f})" if math.isfinite(conf) and conf < 1 else "")
    text = str(config.get("inter", "propagated"))
    return f"{text} {conf:.2f}" if math.isfinite(conf) else text


def read_ground_truth(path) -> "np.ndarray":
    """A ``--gt`` file as (T, 4) x,y,w,h rows (NaN = absent), with one-line errors for a missing,
    unreadable or empty file."""
    from .data.readers import read_boxes

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ground-truth file at {path}")
    try:
        gt = read_boxes(path)
    except ValueError as e:
        raise ValueError(f"--gt: {e}") from None
    if not len(gt):
        raise ValueError(f"--gt: {path} holds no boxes")
    return gt


#: a warm-up at least this long (compiling, mostly) is named beside the fps
WARMUP_NOTE_SECONDS = 1.0


def warmup_note(seconds: float) -> str:
    """`` (after a 12.3 s warm-up, not counted)`` where the warm-up was long enough to matter."""
    return f" (after a {seconds:.1f} s warm-up, not counted)" if seconds >= WARMUP_NOTE_SECONDS else ""


#: untimed updates of the warm-up tracker on the first frame (the first inter frame's match compiles)
WARMUP_UPDATES = 2


def _warm_up(factory, frame: np.ndarray, box: list[float]) -> float:
    """Seconds of ``eval.ope.warm_up_tracker`` on the first frame (``init``, then ``WARMUP_UPDATES``
    updates), so that one-time costs stay out of ``tracking_fps``. A tracker that fails here is
    left to fail, and be reported, in the real run."""
    from .eval.ope import warm_up_tracker

    t0 = time.perf_counter()
    try:
        return warm_up_tracker(factory, frame, box, [frame] * WARMUP_UPDATES)
    except Exception:  # noqa: BLE001 - the timed run meets the same error and reports it
        return time.perf_counter() - t0


def track_file(video, box, factory, out_dir, max_frames: int | None = None, progress: bool = True,
               gt=None) -> dict:
    """Track ``box`` (x,y,w,h in the first frame) through ``video`` with a tracker from ``factory``.

    Writes ``annotated.mp4`` (or ``.avi`` where no mp4 encoder opens), ``results.csv`` and
    ``summary.json`` into ``out_dir``; returns the summary. Frames are decoded, tracked, drawn and
    written one at a time, so videos of any length fit in memory. With ``gt`` ((T, 4) x,y,w,h per
    frame, NaN rows = absent) the ground truth is drawn, the track is scored the OTB way on the
    frames both cover (``summary["ground_truth"]``, an ``iou`` column) and ``iou.png`` is plotted.
    """
    from tqdm.auto import tqdm

    from .data.readers import video_fps
    from .eval.ope import _confidence, _is_skip_frame
    from .viz import GT_STYLE, VideoWriter, draw_boxes, draw_text

    video, out_dir = Path(video), Path(out_dir)
    box = [float(v) for v in box]
    gt = None if gt is None else np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    frames, first = _first_frame(video)
    h, w = first.shape[:2]
    x, y, bw, bh = box
    if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
        frames.close()
        raise ValueError(f"--box {x:g},{y:g},{bw:g},{bh:g} lies wholly outside the first frame ({w}x{h})")
    config = dict(getattr(factory, "config", {"tracker": getattr(factory, "name", "tracker")}))
    out_dir.mkdir(parents=True, exist_ok=True)
    total = _frame_count(video)
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)
    warmup_seconds = _warm_up(factory, first, box)
    tracker = factory()
    skip = False
    rows: list[tuple] = []
    seconds = 0.0
    writer = VideoWriter(out_dir / "annotated.mp4", fps=video_fps(video))
    bar = tqdm(total=total, desc=f"tracking {video.name}", unit="frame", disable=not progress, leave=False)
    perf = time.perf_counter
    try:
        i, frame = 0, first
        while True:
            t0 = perf()
            if i == 0:
                tracker.init(frame, list(box))
                skip = _is_skip_frame(tracker)
                current, key, conf = list(box), True, 1.0
            else:
                current = [float(v) for v in tracker.update(frame)]
                key = bool(tracker.last_was_key) if skip else True
                conf = _confidence(tracker)
            seconds += perf() - t0
            rows.append((i, *current, int(key), conf))
            img = frame if gt is None or i >= len(gt) else draw_boxes(frame, gt[i], style=GT_STYLE)
            img = draw_boxes(img, current, labels=[_label(key, config, conf)], key_frame=key)
            draw_text(img, f"frame {i}" + ("  key frame" if key else "  propagated"), (4, 4))
            writer.write(img)
            bar.update(1)
            i += 1
            if max_frames is not None and i >= max_frames:
                break
            frame = next(frames, None)
            if frame is None:
                break
    finally:
        bar.close()
        frames.close()
        video_path = writer.close()
    n, keys = len(rows), sum(r[5] for r in rows)
    scores = None if gt is None else _score(rows, gt)
    csv_path = out_dir / "results.csv"
    with csv_path.open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["frame", "x", "y", "w", "h", "key_frame", "confidence"] + ([] if gt is None else ["iou"]))
        for r in rows:
            extra = [] if scores is None else [_fmt(scores["iou"][r[0]])]
            wr.writerow([r[0], *(f"{v:.3f}" for v in r[1:5]), r[5], _fmt(r[6])] + extra)
    summary = {
        "video": video.name,
        "frames": n,
        "frame_size": [int(w), int(h)],
        "key_frames": int(keys),
        "effective_interval": n / keys,
        "tracking_seconds": seconds,
        "tracking_fps": n / seconds if seconds > 0 else None,
        "warmup_seconds": warmup_seconds,
        "tracker": getattr(factory, "name", config.get("tracker")),
        "config": config,
        "init_box": box,
        "last_box": list(rows[-1][1:5]),
        "outputs": {"video": video_path.name, "results": csv_path.name, "summary": "summary.json"},
    }
    if skip and isinstance(getattr(tracker, "stats", None), dict):
        summary["stats"] = {k: v for k, v in tracker.stats.items() if isinstance(v, (int, float, str, bool))}
    if scores is not None:
        from .viz.plots import plot_iou_over_time

        threshold = config.get("conf_threshold") if skip else None
        plot = plot_iou_over_time(scores.pop("iou"), [r[6] for r in rows], out_dir / "iou.png",
                                  key_frames=[r[0] for r in rows if r[5]], confidence_threshold=threshold,
                                  title=f"{summary['tracker']} on {video.name}")
        summary["ground_truth"] = scores
        summary["outputs"]["plot"] = plot.name
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _fmt(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:.4f}"


def _score(rows: list, gt: "np.ndarray") -> dict:
    """OTB scores of the tracked frames that the ground truth covers (``demo.sequence_metrics``:
    frame 0 takes the ground truth, absent frames are left out) and the IoU of every tracked frame
    (NaN where the target is absent or the file has no line)."""
    from .demo import sequence_metrics

    pred = np.asarray([r[1:5] for r in rows], dtype=np.float64)
    m = min(len(pred), len(gt))
    metrics = sequence_metrics(pred[:m], gt[:m])
    iou = np.full(len(pred), np.nan)
    iou[:m] = metrics["iou"]
    none = lambda v: v if math.isfinite(v) else None  # noqa: E731 - JSON has no NaN
    return {"success": none(metrics["success_auc"]), "precision": none(metrics["precision_20"]),
            "mean_iou": none(metrics["mean_iou"]), "frames_scored": metrics["frames_evaluated"],
            "frames_absent": int(m - metrics["frames_evaluated"]), "frames_without_line": int(len(pred) - m),
            "iou": iou}


def cmd_track(a: argparse.Namespace) -> int:
    gt = None if a.gt is None else read_ground_truth(a.gt)
    if a.box is not None:
        box = parse_box(a.box)  # a bad box fails before anything is loaded
    elif gt is None:
        raise ValueError("give the target's first box: --box x,y,w,h, or --gt FILE to take its first line")
    elif not (np.isfinite(gt[0]).all() and gt[0, 2] > 0 and gt[0, 3] > 0):
        raise ValueError(f"the first line of --gt {a.gt} is no box (target absent?): give --box x,y,w,h")
    else:
        box = [float(v) for v in gt[0]]
    video = Path(a.video)
    if not video.exists():
        raise FileNotFoundError(f"no video file at {video}")
    _first_frame(video)[0].close()  # an unreadable video fails before the trackers load
    factory = _factory_from_args(a)
    summary = track_file(video, box, factory, a.out, max_frames=a.max_frames, progress=not a.no_progress, gt=gt)
    out = Path(a.out)
    print(f"{summary['tracker']}: {summary['frames']} frames, {summary['key_frames']} key frames "
          f"(effective interval {summary['effective_interval']:.2f}), "
          f"{summary['tracking_fps'] or float('nan'):.1f} fps tracking"
          + warmup_note(summary["warmup_seconds"]))
    g = summary.get("ground_truth")
    if g is not None:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"against {Path(a.gt).name}: success {fmt(g['success'])}, precision {fmt(g['precision'])}, "
              f"mean IoU {fmt(g['mean_iou'])} over {g['frames_scored']} frames"
              + (f" ({g['frames_without_line']} tracked frames have no line in it)" if g["frames_without_line"] else ""))
    for kind in ("video", "results", "summary", "plot"):
        if kind in summary["outputs"]:
            print(f"wrote {out / summary['outputs'][kind]}")
    return 0
