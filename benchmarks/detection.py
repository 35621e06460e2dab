"""Skip-frame detection (the paper's Table 1 and Figure 10) on our data.

* **MOT** -- FastestDet (``../shared/weights/fastestdet``, score >= 0.3, person class) on
  TUD-Campus, PETS09-S3-MF1 and the seven MOT17 clips of ``../shared/data/mot``: per frame, and
  skip-frame with the detector every N = 2, 3, 5, 8 frames and hold, KCF (one OpenCV KCF per box,
  failure gate off, primed) or PatchNet (all boxes of a frame in one batched match, search window
  centred on the previous frame's box) in between; mAP@0.5 and mAP@[.5:.95], time per frame,
  speed-up over per-frame FastestDet in the same run. The PatchNet rows use ``SkipFrameDetector``'s
  default carrier (``DEFAULT_CARRIER``: the K4 model with 4x4-pixel patches, one more search for a
  peak on the window's edge, template update 0.25 for matches of confidence >= 0.6; chosen on these
  sequences). Extra rows: the paper's carrier (the K = 8 model, the key-frame template, one search),
  the default carrier without the template update, PatchNet's wider search window (response 13),
  the adaptive key-frame policy, and look-ahead rows for PatchNet, hold and KCF
  (``SkipFrameDetector(lookahead=True)``: the same key frames, each frame carried from the nearer
  one, the later half of every gap backwards -- for video files, where a frame may wait for the
  next key frame).
* **EfficientDet-D0 cost** -- the same loop on TUD-Campus with EfficientDet-D0 (``effdet``, random
  weights, ``pretrained_backbone=False``: only its cost matters) run on every key frame before
  FastestDet supplies the boxes, so the boxes carried are real persons and the time is
  EfficientDet-D0's: measured wall-clock speed-up at N = 5 (and 3, 8).
* **VID** -- the paper's detection demo on the two ImageNet VID snippets: the R-FCN ResNet-101
  detections (score >= 0.5) on every frame are the reference; the skip-frame runs replay them on
  key frames and carry them between; agreement = mAP@0.5 of the propagated frames against the
  reference of those frames (mean over the classes present), plus the mean IoU of each
  propagated box with its best reference box of the same class.
* **FLOPs** -- projected reduction versus key-frame interval, C / (C / N + (N - 1) / N * k * m),
  for FastestDet (counted from its graph), EfficientDet-D0 (2.5 G) and R-FCN ResNet-101 (169 G),
  with m = the default carrier's counted MACs per match and k = the objects per frame (measured here, and the
  paper's 4 and 7 on ImageNet VID).

    PYTHONPATH=. python benchmarks/detection.py                     # docs/results/detection.{md,json,png}
    PYTHONPATH=. python benchmarks/detection.py --quick --out runs/detection_quick
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

try:
    import patchnet_zoo  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from patchnet_zoo._runtime import cap_openmp_spinning  # noqa: E402

cap_openmp_spinning()  # before torch loads: docs/design.md, "Two cores"
from patchnet_zoo._runtime import set_threads, tune_cpu_allocator  # noqa: E402
from patchnet_zoo.accel import SkipFrameDetector  # noqa: E402
from patchnet_zoo.accel.skip_frame_detector import DEFAULT_CARRIER, DEFAULT_EDGE_FOLLOW  # noqa: E402
from patchnet_zoo.data.readers import _imread_rgb, default_data_root  # noqa: E402
from patchnet_zoo.detection import CallableAdapter, Detections, FastestDet  # noqa: E402
from patchnet_zoo.detection.mot_eval import box_iou_xyxy, evaluate_map, read_vid_detections  # noqa: E402
from patchnet_zoo.detection.runner import benchmark_detection, find_mot_sequences, load_mot_sequences  # noqa: E402
from patchnet_zoo.eval.machine import machine_info  # noqa: E402

# ../shared/ANCHORS.md: FastestDet mAP@0.5, per frame and key frame every N (independent code,
# "original" = the authors' PatchNet code and weights)
REF_PER_FRAME = {"TUD": 0.765, "PETS09": 0.754, "MOT17": 0.278}
REF_SKIP = {
    "TUD": {"hold": (0.741, 0.729, 0.588, 0.345), "kcf": (0.750, 0.741, 0.728, 0.700),
            "original PatchNet": (0.750, 0.733, 0.689, 0.531)},
    "PETS09": {"hold": (0.506, 0.308, 0.150, 0.088), "kcf": (0.672, 0.573, 0.441, 0.283),
               "original PatchNet": (0.698, 0.643, 0.504, 0.357)},
    "MOT17": {"hold": (0.266, 0.261, 0.257, 0.249), "kcf": (0.270, 0.267, 0.270, 0.258),
              "original PatchNet": (0.268, 0.263, 0.261, 0.262)},
}
REF_INTERVALS = (2, 3, 5, 8)
GROUP_LABEL = {"TUD": "TUD-Campus (25 fps)", "PETS09": "PETS09-S3-MF1 (7 fps)", "MOT17": "MOT17 clips (7 x 4-8 frames)"}
WARM_UP_BOXES = 48  # shared_matcher warms the matcher up at every batch size up to this many boxes
PAPER_COST = {"EfficientDet-D0": (2.5, 4), "R-FCN ResNet-101": (169.0, 7)}  # GMACs, objects per frame (ImageNet VID)
METHOD_LABEL = {"hold": "hold", "kcf": "KCF", "mosse": "MOSSE", "patchnet": "PatchNet",
                "patchnet-paper": "PatchNet, the paper's carrier (K = 8, key-frame template)",
                "patchnet-no-update": "PatchNet, key-frame template (no update)",
                "patchnet-r13": "PatchNet, window 13", "patchnet-adaptive": "PatchNet, adaptive",
                "patchnet-lookahead": "PatchNet, look-ahead", "hold-lookahead": "hold, look-ahead",
                "kcf-lookahead": "KCF, look-ahead"}


def _factory(detector, n: int, method: str, matcher=None, paper_matcher=None):
    if n == 1:
        return lambda: detector
    kw = {}
    inter = method
    if method.endswith("-lookahead"):
        inter, kw = method[: -len("-lookahead")], {"lookahead": True}
    if method == "patchnet-paper":  # the K = 8 model, the key-frame template, one search
        inter, matcher, kw = "patchnet", paper_matcher, {"template_update": 0.0}
    elif method == "patchnet-no-update":
        inter, kw = "patchnet", {"template_update": 0.0}
    elif method == "patchnet-r13":
        inter, kw = "patchnet", {"response_size": 13}
    elif method == "patchnet-adaptive":
        inter, kw = "patchnet", {"policy": "adaptive"}
    if inter == "patchnet":
        kw["matcher"] = matcher
    return lambda: SkipFrameDetector(detector, key_frame_interval=n, inter=inter, **kw)


def shared_matcher(frame: np.ndarray, arch: str = DEFAULT_CARRIER, weights: str | None = None, **decoding):
    """One pretrained PatchMatcher for every run (``weights``: a local safetensors file instead of
    the packaged one; ``decoding``: ``PatchMatcher`` options, by default the edge follow of
    ``SkipFrameDetector``'s default carrier), warmed up outside the clock at every batch size up to
    ``WARM_UP_BOXES`` (the first match of a process pays one-off set-up costs of several seconds,
    and the first calls at each new batch size run slower)."""
    from patchnet_zoo.matching import PatchMatcher
    from patchnet_zoo.registry import create_model
    from patchnet_zoo.trackers.patchnet_tracker import load_pretrained_patchnet

    decoding = {"edge_follow": DEFAULT_EDGE_FOLLOW, **decoding}
    m = PatchMatcher(create_model(arch, weights_path=weights) if weights else load_pretrained_patchnet(arch),
                     **decoding)
    h, w = frame.shape[:2]
    pair = np.array([[w / 4, h / 4, w / 8, h / 4], [w / 2, h / 2, w / 10, h / 5]], np.float32)
    for r in (None, 13):
        mm = m.with_response_size(r)
        # every batch size a frame of the MOT sequences may bring: the first calls at a new batch
        # size run noticeably longer (the CPU kernels set themselves up for that shape), which
        # would otherwise fall on whichever row happens to run first
        for n in range(1, WARM_UP_BOXES + 1):
            boxes = np.resize(pair, (n, 4))
            for _ in range(2):
                mm.match(mm.encode(frame, boxes), frame, boxes)
    return m


def _strip(r: dict) -> dict:
    return {k: v for k, v in r.items() if not k.startswith("_")}


# ----------------------------------------------------------------------------------------- MOT
def run_mot(data: Path, intervals, methods, extra, quick: bool, weights: str | None = None,
            decoding: dict | None = None) -> dict:
    seqs = load_mot_sequences(find_mot_sequences(data / "mot"), max_frames=12 if quick else None, progress=True)
    det = FastestDet(classes=[0])
    det(seqs[0].frames[0])  # warm-up
    matcher = shared_matcher(seqs[0].frames[0], weights=weights, **(decoding or {}))
    paper_matcher = shared_matcher(seqs[0].frames[0], "patchnet", **{**(decoding or {}), "edge_follow": 0})
    rows = {}
    base = benchmark_detection(_factory(det, 1, "per-frame"), seqs, progress=True)
    rows["per-frame"] = {1: _strip(base)}
    print(f"per frame: mAP@0.5 {base['map50']:.3f}  {base['ms_per_frame']:.1f} ms/frame", flush=True)
    for method in list(methods) + list(extra):
        rows[method] = {}
        for n in intervals:
            if method in extra and n not in (3, 5, 8):
                continue
            r = benchmark_detection(_factory(det, n, method, matcher, paper_matcher), seqs, progress=True)
            r["speedup"] = base["ms_per_frame"] / r["ms_per_frame"]
            rows[method][n] = _strip(r)
            g = r["per_group"]
            per_group = ", ".join(f"{k} {v['map50']:.3f}" for k, v in g.items())
            print(f"{method:18s} N={n}: mAP@0.5 {r['map50']:.3f} ({per_group})"
                  f"  {r['ms_per_frame']:.1f} ms/frame  x{r['speedup']:.2f}  "
                  f"prop {r['propagation_ms_per_box'] or 0:.2f} ms/box", flush=True)
    objects = base["boxes_per_frame"]
    return {"rows": rows, "objects_per_frame": objects, "fastestdet_gmacs": det.gflops_per_frame,
            "sequences": [s.name for s in seqs], "frames": sum(len(s.frames) for s in seqs)}


# ------------------------------------------------------------------------------- EfficientDet cost
class _CostOf:
    """Runs ``heavy`` on the frame (its time is the cost) and returns ``boxes``' detections."""

    def __init__(self, heavy, boxes, name: str):
        self.heavy, self.boxes, self.name = heavy, boxes, name
        self.gflops_per_frame = heavy.gflops_per_frame

    def __call__(self, frame) -> Detections:
        self.heavy(frame)
        return self.boxes(frame)


def run_effdet(data: Path, quick: bool, intervals=(3, 5, 8)) -> dict:
    import effdet

    from patchnet_zoo.detection import EffDetAdapter

    seqs = load_mot_sequences([data / "mot" / "TUD-Campus"], max_frames=12 if quick else None)
    bench = effdet.create_model("tf_efficientdet_d0", bench_task="predict", pretrained=False, pretrained_backbone=False)
    heavy = EffDetAdapter(bench, score_threshold=0.99)
    cost = CallableAdapter(_CostOf(heavy, FastestDet(classes=[0]), "effdet-d0-cost"), name="EfficientDet-D0 (cost)")
    cost.gflops_per_frame = heavy.gflops_per_frame
    cost(seqs[0].frames[0])  # warm-up
    matcher = shared_matcher(seqs[0].frames[0])
    base = benchmark_detection(lambda: cost, seqs)
    out = {"per_frame": _strip(base), "effdet_gmacs": heavy.gflops_per_frame, "rows": {}}
    print(f"EfficientDet-D0 cost per frame: {base['ms_per_frame']:.1f} ms", flush=True)
    for n in intervals:
        r = benchmark_detection(lambda: SkipFrameDetector(cost, key_frame_interval=n, matcher=matcher), seqs)
        r["speedup"] = base["ms_per_frame"] / r["ms_per_frame"]
        out["rows"][n] = _strip(r)
        print(f"EfficientDet-D0 + PatchNet N={n}: {r['ms_per_frame']:.1f} ms/frame  x{r['speedup']:.2f}  "
              f"prop {r['propagation_ms_per_box'] or 0:.2f} ms/box", flush=True)
    return out


# ------------------------------------------------------------------------------------------ VID
class _Replay:
    """Replays stored detections: ``index`` is set to the frame number before each call."""

    def __init__(self, dets):
        self.dets, self.index = dets, 0

    def __call__(self, frame) -> Detections:
        return self.dets[self.index].copy()


def _agreement(pred: list, ref: list, frames: list) -> dict:
    classes = sorted({int(c) for i in frames for c in ref[i].class_ids})
    aps = []
    for c in classes:
        r = evaluate_map([pred[i].filter(class_ids=[c]) for i in frames], [ref[i].filter(class_ids=[c]).boxes for i in frames])
        aps.append(r["map50"])
    ious = []
    for i in frames:
        for c in set(pred[i].class_ids.tolist()):
            p, q = pred[i].filter(class_ids=[c]), ref[i].filter(class_ids=[c])
            if len(p):
                ious.extend((box_iou_xyxy(p.boxes, q.boxes).max(1) if len(q) else np.zeros(len(p))).tolist())
    return {"map50": float(np.nanmean(aps)) if aps else float("nan"), "mean_iou": float(np.mean(ious)) if ious else float("nan"),
            "frames": len(frames), "boxes": len(ious)}


def run_vid(data: Path, intervals, methods, quick: bool) -> dict:
    out = {}
    for folder in sorted((data / "vid").iterdir()):
        if not folder.is_dir():
            continue
        paths = sorted((folder / "frames").glob("*.JPEG"))[: 24 if quick else None]
        frames = [_imread_rgb(p) for p in paths]
        ref = read_vid_detections(folder, min_score=0.5, num_frames=len(frames))
        res = {"frames": len(frames), "objects_per_frame": float(np.mean([len(d) for d in ref])), "rows": {}}
        matcher = shared_matcher(frames[0])
        for method in methods:
            res["rows"][method] = {}
            for n in intervals:
                replay = _Replay(ref)
                sfd = SkipFrameDetector(CallableAdapter(replay, name="R-FCN (replayed)"), key_frame_interval=n,
                                        inter=method, matcher=matcher if method == "patchnet" else None)
                pred, t0 = [], time.perf_counter()
                for i, f in enumerate(frames):
                    replay.index = i
                    pred.append(sfd(f))
                inter_frames = [i for i in range(len(frames)) if i % n != 0]
                r = _agreement(pred, ref, inter_frames)
                r["seconds"] = time.perf_counter() - t0
                res["rows"][method][n] = r
                print(f"{folder.name} {method:8s} N={n}: agreement mAP@0.5 {r['map50']:.3f}  mean IoU {r['mean_iou']:.3f}",
                      flush=True)
        out[folder.name] = res
    return out


# ---------------------------------------------------------------------------------------- FLOPs
def flops_projection(patchnet_gmacs: float, models: dict, intervals=range(1, 21)) -> dict:
    out = {}
    for name, (gmacs, objects) in models.items():
        red = [gmacs / (gmacs / n + (n - 1) / n * objects * patchnet_gmacs) for n in intervals]
        out[name] = {"gmacs": gmacs, "objects_per_frame": objects, "intervals": list(intervals), "reduction": red}
    return out


def plot_flops(proj: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, p in proj.items():
        ax.plot(p["intervals"], p["reduction"], marker="o", ms=3, label=f"{name} ({p['gmacs']:.3g} G, {p['objects_per_frame']:.1f} obj.)")
    ax.plot(list(proj.values())[0]["intervals"], list(proj.values())[0]["intervals"], "k:", lw=1, label="ideal (= N)")
    ax.set_xlabel("key-frame interval N")
    ax.set_ylabel("projected FLOPs reduction (x)")
    ax.set_title("Detector on key frames, PatchNet between")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_map(mot: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = mot["rows"]
    groups = list(rows["per-frame"][1]["per_group"])
    fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups) + 2.2, 3.4), squeeze=False)
    methods = [m for m in rows if m != "per-frame"]
    plain = [m for m in methods if not m.endswith("-lookahead")]
    colours = {m: f"C{i}" for i, m in enumerate(plain)}  # a look-ahead row: its method's colour, dashed
    for ax, g in zip(axes[0], groups):
        base = rows["per-frame"][1]["per_group"][g]["map50"]
        for m in methods:
            per_n = rows[m]
            ns = sorted(per_n)
            ahead = m.endswith("-lookahead")
            ax.plot([1] + ns, [base] + [per_n[n]["per_group"][g]["map50"] for n in ns], marker="o", ms=3,
                    ls="--" if ahead else "-", color=colours.get(m[: -len("-lookahead")] if ahead else m),
                    label=METHOD_LABEL.get(m, m))
        ax.set_title(GROUP_LABEL.get(g, g), fontsize=9)
        ax.set_xlabel("key-frame interval N")
        ax.set_ylabel("mAP@0.5")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))  # beside, not over, the lines
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------- markdown
def _f(v, d=3):
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{d}f}"


def write_markdown(res: dict, path: Path, command: str) -> None:
    mot, eff, vid, proj = res["mot"], res["effdet"], res["vid"], res["flops"]
    rows = mot["rows"]
    base = rows["per-frame"][1]
    groups = list(base["per_group"])
    ns = res["intervals"]
    L = ["# Skip-frame detection: FastestDet and EfficientDet-D0 on key frames, PatchNet between", "",
         f"Generated by `{command}` ({res['date']}, {res['machine'].get('cpu', '?')}, "
         f"{res['machine']['cpu_count']} cores, torch threads {res['threads']}, ONNX Runtime 1 thread). "
         "Times are wall-clock on a shared machine: treat them as rough, ratios within a table as meaningful "
         "(every ratio comes from one run). Each PatchNet matcher is warmed up outside the clock at every batch "
         f"size up to {WARM_UP_BOXES} boxes, so no row pays the first calls at a new batch size.", "",
         "Ground truth: MOT15 files (TUD-Campus, PETS09-S3-MF1) count every row; in the MOT17 clips "
         "pedestrians (class 1, consider = 1) with visibility >= 0.25 count, and less visible pedestrians, "
         "persons on vehicles, static persons, distractors and reflections are ignore regions (a detection "
         "on them is neither right nor wrong). Boxes are clipped to the frame. AP is COCO's (101 recall "
         "points, greedy matching by score); a group's mAP is the mean over its sequences, the mean row the "
         "mean over the three groups.", "",
         "## MOT: mAP@0.5 (FastestDet, person class, score >= 0.3)", "",
         "| sequence | per frame (reference) | method | " + " | ".join(f"N = {n}" for n in ns) + " |",
         "|---|---|---|" + "---|" * len(ns)]
    for g in groups:
        ref = REF_PER_FRAME.get(g)
        first = True
        for m, per_n in rows.items():
            if m == "per-frame":
                continue
            cells = [(_f(per_n[n]["per_group"][g]["map50"]) if n in per_n else "") for n in ns]
            head = f"| {GROUP_LABEL.get(g, g)} | {_f(base['per_group'][g]['map50'])} ({_f(ref)}) " if first else "| | "
            L.append(head + f"| {METHOD_LABEL.get(m, m)} | " + " | ".join(cells) + " |")
            first = False
        for m, vals in REF_SKIP.get(g, {}).items():
            cells = [(_f(vals[REF_INTERVALS.index(n)]) if n in REF_INTERVALS else "") for n in ns]
            L.append(f"| | | *reference: {m}* | " + " | ".join(cells) + " |")
    L += ["", "Mean over the three groups, mAP@0.5 / mAP@[.5:.95] / drop in mAP@0.5 points from per frame "
          f"({_f(base['map50'])} / {_f(base['map'])}):", "",
          "| method | " + " | ".join(f"N = {n}" for n in ns) + " |", "|---|" + "---|" * len(ns)]
    for m, per_n in rows.items():
        if m == "per-frame":
            continue
        cells = [(f"{_f(per_n[n]['map50'])} / {_f(per_n[n]['map'])} / {100 * (base['map50'] - per_n[n]['map50']):.1f}"
                  if n in per_n else "") for n in ns]
        L.append(f"| {METHOD_LABEL.get(m, m)} | " + " | ".join(cells) + " |")
    L += ["", "Reference mean drop at N = 3: original PatchNet 5.3 points, KCF 7.2."]
    if any(m.endswith("-lookahead") for m in rows):
        L += ["", "Look-ahead rows (`SkipFrameDetector(lookahead=True)`, `--lookahead`): the same key frames, "
              "but every frame carries the boxes of the nearer key frame, the later half of each gap "
              "backwards from the next key frame (after the last key frame of a sequence, forwards). No "
              "frame is carried twice, so the cost is that of the row without look-ahead; a frame's answer "
              "waits for the next key frame, so this is for video files, not live streams."]
    L += ["",
          "## MOT: time per frame and speed-up over per-frame FastestDet (same run)", "",
          f"Per-frame FastestDet: {_f(base['ms_per_frame'], 1)} ms per frame, {_f(base['boxes_per_frame'], 1)} persons "
          "per frame on average. Time = the whole loop (detector on key frames + carrying every box).", "",
          "| method | " + " | ".join(f"N = {n}" for n in ns) + " |", "|---|" + "---|" * len(ns)]
    for m, per_n in rows.items():
        if m == "per-frame":
            continue
        cells = [(f"{_f(per_n[n]['ms_per_frame'], 1)} ms · x{_f(per_n[n]['speedup'], 2)}"
                  + (f" · {_f(per_n[n]['propagation_ms_per_box'], 2)} ms/box"
                     if per_n[n].get("propagation_ms_per_box") and not m.startswith("hold") else "")
                  if n in per_n else "") for n in ns]
        L.append(f"| {METHOD_LABEL.get(m, m)} | " + " | ".join(cells) + " |")
    L += ["", "ms/box = time carrying boxes (template encoding on key frames + matching on inter frames) per "
          "box-frame carried. FastestDet costs far less than carrying a dozen boxes, so with it skip-frame "
          "detection is slower, not faster; the saving needs a detector whose cost dominates:", "",
          "## EfficientDet-D0 cost: measured wall-clock speed-up (TUD-Campus)", "",
          f"EfficientDet-D0 (`tf_efficientdet_d0`, 512 px, random weights: cost only; counted "
          f"{_f(eff['effdet_gmacs'], 2)} G MACs) runs on every key frame; the boxes carried are FastestDet's persons. "
          f"Per frame: {_f(eff['per_frame']['ms_per_frame'], 1)} ms.", "",
          "| N | ms per frame | speed-up | key frames | PatchNet ms per box |", "|---|---|---|---|---|"]
    for n, r in eff["rows"].items():
        L.append(f"| {n} | {_f(r['ms_per_frame'], 1)} | x{_f(r['speedup'], 2)} | {r['key_frames']} / {r['frames']} | "
                 f"{_f(r['propagation_ms_per_box'], 2)} |")
    L += ["", "## ImageNet VID snippets: agreement of propagated frames with per-frame R-FCN", "",
          "R-FCN ResNet-101 detections with score >= 0.5 on every frame are the reference; key frames replay "
          "them, the frames between carry them. Agreement = mAP@0.5 of the propagated frames against the "
          "reference on those frames; in brackets the mean IoU of each propagated box with its best reference "
          "box (the reference figures' measure).", "",
          "| snippet | method | " + " | ".join(f"N = {n}" for n in ns) + " |", "|---|---|" + "---|" * len(ns)]
    for name, r in vid.items():
        first = True
        for m, per_n in r["rows"].items():
            cells = [f"{_f(per_n[n]['map50'])} ({_f(per_n[n]['mean_iou'])})" for n in ns]
            L.append(f"| {name if first else ''} | {METHOD_LABEL.get(m, m)} | " + " | ".join(cells) + " |")
            first = False
    L += ["", "Reference (00142000, mean IoU): N = 3 hold 0.823, KCF 0.839, original PatchNet 0.839; N = 5 "
          "hold 0.770, KCF 0.794, original 0.802; N = 8 hold 0.744, KCF 0.795, original 0.808.", "",
          "## Projected FLOPs reduction versus key-frame interval (Figure 10)", "",
          f"Reduction = C / (C / N + (N - 1) / N * k * m), m = {_f(res['patchnet_gmacs'] * 1000, 1)} M MACs per "
          f"search of the default carrier (`patchnet-zoo flops --model {res.get('carrier', 'patchnet')}`; a box whose "
          "peak lies on its window's edge is searched once more, which this leaves out), k objects per frame, C the detector's MACs per frame. "
          "![FLOPs reduction](detection_flops.png)", "",
          "| detector | C (G MACs) | k | " + " | ".join(f"N = {n}" for n in (2, 3, 5, 8, 10)) + " |",
          "|---|---|---|" + "---|" * 5]
    for name, p in proj.items():
        L.append(f"| {name} | {p['gmacs']:.3g} | {p['objects_per_frame']:.1f} | "
                 + " | ".join(f"x{p['reduction'][n - 1]:.2f}" for n in (2, 3, 5, 8, 10)) + " |")
    L += ["", "Paper (Table 1, N = 5 on ImageNet VID): R-FCN 169 G -> 34.2 G (x4.9), EfficientDet-D0 2.5 G -> "
          "0.73 G (x3.4).", "", "![mAP versus interval](detection_map.png)", ""]
    path.write_text("\n".join(L))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="data root (default: $PATCHNET_ZOO_DATA, else ../shared/data)")
    p.add_argument("--out", default="docs/results", help="output folder (default: %(default)s)")
    p.add_argument("--intervals", type=int, nargs="+", default=[2, 3, 5, 8])
    p.add_argument("--methods", nargs="+", default=["patchnet", "hold", "kcf"])
    p.add_argument("--extra", nargs="*", default=["patchnet-paper", "patchnet-no-update", "patchnet-r13",
                                                  "patchnet-adaptive", "patchnet-lookahead", "hold-lookahead",
                                                  "kcf-lookahead"],
                   help="extra rows at N = 3, 5, 8 (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default: %(default)s; one is faster for these small batched matches "
                        "on a loaded 2-core machine, see docs/design.md)")
    p.add_argument("--quick", action="store_true", help="a few frames per sequence (checks the script, not a result)")
    p.add_argument("--skip", nargs="*", default=[], choices=["mot", "effdet", "vid"], help="parts to skip")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="local safetensors file for the default carrier's rows of the MOT grid (its export "
                        "record beside it gives the config; default: the packaged weights)")
    p.add_argument("--rigid-centre", action="store_true",
                   help="the MOT grid's PatchNet rows place each box's centre at the best whole-template "
                        "placement in the peak cell (docs/design.md, \"Rigid centre\")")
    a = p.parse_args(argv)
    tune_cpu_allocator()
    set_threads(a.threads)
    data = Path(a.data) if a.data else default_data_root()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/detection.py" + (" " + shlex.join(argv if argv is not None else sys.argv[1:])
                                                  if (argv if argv is not None else sys.argv[1:]) else "")
    from patchnet_zoo.eval.flops import flops_report
    from patchnet_zoo.registry import create_model

    patchnet_gmacs = flops_report(create_model(DEFAULT_CARRIER))["macs"] / 1e9
    t0 = time.time()
    res = {"date": time.strftime("%Y-%m-%d"), "machine": machine_info(), "threads": a.threads, "intervals": a.intervals,
           "command": command, "patchnet_gmacs": patchnet_gmacs, "carrier": DEFAULT_CARRIER}
    # the quick parts first; the MOT grid (one OpenCV KCF per box) takes longest
    res["effdet"] = run_effdet(data, a.quick) if "effdet" not in a.skip else None
    res["vid"] = run_vid(data, a.intervals, a.methods, a.quick) if "vid" not in a.skip else None
    decoding = {"rigid_centre": True} if a.rigid_centre else None
    res["mot"] = (run_mot(data, a.intervals, a.methods, a.extra, a.quick, a.weights, decoding)
                  if "mot" not in a.skip else None)
    models = {}
    if res["mot"]:
        models["FastestDet (MOT, measured)"] = (res["mot"]["fastestdet_gmacs"], res["mot"]["objects_per_frame"])
    models.update(PAPER_COST)
    if res["vid"]:
        k = float(np.mean([v["objects_per_frame"] for v in res["vid"].values()]))
        models["R-FCN ResNet-101 (k from our VID snippets)"] = (169.0, k)
    res["flops"] = flops_projection(patchnet_gmacs, models)
    res["seconds"] = time.time() - t0
    (out / "detection.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    plot_flops(res["flops"], out / "detection_flops.png")
    if res["mot"] and res["effdet"] and res["vid"]:
        plot_map(res["mot"], out / "detection_map.png")
        write_markdown(res, out / "detection.md", command)
    print(f"wrote {out / 'detection.json'} ({res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
