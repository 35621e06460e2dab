"""Track ids from skip-frame detection: identity metrics on real MOTChallenge sequences.

"Detect every N frames and track in between" is asked for identities, not only boxes. With
``SkipFrameDetector(track_ids=True)`` a carried box keeps the id of the key-frame detection it came
from, and a key frame's detections take the ids of the carried boxes they overlap
(``accel.track_ids.KeyFrameIdentities``: IoU >= 0.3, one-to-one, within a class; a box missed on one
key frame is remembered for the next).

* **Data** -- TUD-Campus (71 frames, 25 fps) and PETS09-S3-MF1 (7 fps) of ``../shared/data/mot``,
  with their ground-truth identities; the MOT17 clips (4-8 frames) are too short for identities.
* **Detector** -- FastestDet (``../shared/weights/fastestdet``), person class, score >= 0.5 (the
  usual confidence cut of IoU trackers; the detection benchmark's 0.3 suits mAP, which ranks by
  score, but every box of a tracking result counts).
* **Rows** -- the detector on every frame with the same association (an IoU tracker: the peer that
  needs no carrier), and the detector every N = 3, 5, 8 frames with PatchNet (``SkipFrameDetector``'s
  default carrier), hold or KCF (one OpenCV KCF per box) in between, and PatchNet with look-ahead.
* **Metrics** (``detection.mot_identity``, checked against py-motmetrics in the tests): IDF1, MOTA,
  identity switches, false positives, misses, hypothesis tracks against ground-truth tracks; the
  mean over the two sequences (each weighs the same); time per frame of the whole loop and the
  speed-up over the per-frame row of the same run.

    PYTHONPATH=. python benchmarks/identities.py        # docs/results/identities.{md,json,png}
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
from patchnet_zoo.data.readers import default_data_root  # noqa: E402
from patchnet_zoo.detection import FastestDet  # noqa: E402
from patchnet_zoo.detection.mot_identity import identity_metrics  # noqa: E402
from patchnet_zoo.detection.runner import load_mot_sequences, run_frames  # noqa: E402
from patchnet_zoo.eval.machine import machine_info  # noqa: E402

SEQUENCES = ("TUD-Campus", "PETS09-S3-MF1")
SCORE = 0.5
PERSON = 0
CARRIERS = {"patchnet": "PatchNet (default carrier)", "hold": "hold", "kcf": "KCF (one per box)",
            "patchnet-lookahead": "PatchNet, look-ahead"}
METRICS = ("idf1", "mota", "id_switches", "false_positives", "misses", "hypothesis_tracks")


def configurations(intervals) -> dict[str, tuple[int, str]]:
    """``{key: (N, carrier)}``, the per-frame row first."""
    out = {"per-frame": (1, "patchnet")}
    for n in intervals:
        for carrier in CARRIERS:
            out[f"{carrier}/N{n}"] = (n, carrier)
    return out


def build(detector, n: int, carrier: str) -> SkipFrameDetector:
    inter = "patchnet" if carrier.startswith("patchnet") else carrier
    return SkipFrameDetector(detector, key_frame_interval=n, inter=inter, track_ids=True,
                             lookahead=carrier.endswith("lookahead"))


def run(data_root: Path, intervals, max_frames: int | None = None, repeats: int = 2) -> dict:
    """Every configuration on every sequence (interleaved, fastest of ``repeats`` runs timed)."""
    fd = FastestDet(score_threshold=SCORE)

    def persons(frame):
        return fd(frame).filter(class_ids=[PERSON])

    seqs = load_mot_sequences([data_root / "mot" / s for s in SEQUENCES], max_frames=max_frames, progress=True)
    configs = configurations(intervals)
    runs: dict[str, dict] = {k: {"per_sequence": {}} for k in configs}
    for s in seqs:
        for k, (n, carrier) in configs.items():
            best = None
            for _ in range(repeats):
                det = build(persons, n, carrier)
                out, seconds = run_frames(det, s.frames)
                best = seconds if best is None else min(best, seconds)
            m = identity_metrics(out, s.truths)
            m["ms_per_frame"] = 1000 * best / len(s.frames)
            m["key_frames"] = int(det.stats["key_frames"])
            runs[k]["per_sequence"][s.name] = m
            print(f"  {s.name} {k}: IDF1 {m['idf1']:.3f} MOTA {m['mota']:.3f} switches {m['id_switches']} "
                  f"{m['ms_per_frame']:.1f} ms/frame", flush=True)
    for k, r in runs.items():
        ps = r["per_sequence"].values()
        r.update({m: float(np.mean([p[m] for p in ps])) for m in METRICS + ("ms_per_frame",)})
        r["key_frame_interval"], r["carrier"] = configs[k]
    base = runs["per-frame"]["ms_per_frame"]
    for r in runs.values():
        r["speedup"] = base / r["ms_per_frame"]
    return {"runs": runs, "sequences": [s.name for s in seqs], "frames": {s.name: len(s.frames) for s in seqs},
            "score_threshold": SCORE, "intervals": list(intervals)}


def to_markdown(result: dict, command: str) -> str:
    runs = result["runs"]
    m = result["machine"]
    lines = [
        "# Track ids from skip-frame detection: identity metrics on MOTChallenge sequences", "",
        f"Command: `{command}`", "",
        f"Machine: {m.get('cpu', '?')}, {m.get('cpu_count')} CPUs, torch {m.get('torch')} on "
        f"{result['threads']} thread(s), Python {m.get('python')}.", "",
        "FastestDet (person class, score >= 0.5) on key frames; `SkipFrameDetector(track_ids=True)`: a carried "
        "box keeps its key-frame detection's id, a key frame's detections take the ids of the carried boxes they "
        "overlap (IoU >= 0.3, one-to-one, the larger overlap with a box where it was last seen and where it was "
        "carried into the key frame; a box missed on one key frame is remembered for the next; with look-ahead, "
        "settled in the first frame carried backwards). The "
        "per-frame row is the detector on every frame with the same association: an IoU tracker. "
        "Sequences: " + ", ".join(f"{s} ({result['frames'][s]} frames)" for s in result["sequences"]) +
        "; each weighs the same in the means. Metrics: IDF1 and MOTA at IoU 0.5 (CLEAR MOT, IDF1 as the "
        "MOTChallenge toolkit; `patchnet_zoo.detection.mot_identity`, checked against py-motmetrics in the "
        "tests). Time: the whole loop per frame, frames decoded beforehand, fastest of "
        f"{result['repeats']} runs; speed-up over the per-frame row of this run.", "",
        "| key frames | between | IDF1 | MOTA | id switches | false positives | misses | tracks (ground truth: "
        f"{_gt_tracks(result)}) | ms / frame | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, r in runs.items():
        n = r["key_frame_interval"]
        lines.append(f"| {_every(n)} | "
                     f"{'—' if n == 1 else CARRIERS[r['carrier']]} | {r['idf1']:.3f} | {r['mota']:.3f} | "
                     f"{r['id_switches']:.1f} | {r['false_positives']:.1f} | {r['misses']:.1f} | "
                     f"{r['hypothesis_tracks']:.1f} | {r['ms_per_frame']:.2f} | {r['speedup']:.2f}x |")
    lines += ["", "## Per sequence", "", "| sequence | key frames | between | IDF1 | MOTA | id switches | tracks |",
              "|---|---|---|---|---|---|---|"]
    for s in result["sequences"]:
        for k, r in runs.items():
            p, n = r["per_sequence"][s], r["key_frame_interval"]
            lines.append(f"| {s} | {_every(n)} | "
                         f"{'—' if n == 1 else CARRIERS[r['carrier']]} | {p['idf1']:.3f} | {p['mota']:.3f} | "
                         f"{p['id_switches']} | {p['hypothesis_tracks']} / {p['gt_tracks']} |")
    lines += ["", "Means of counts are over the two sequences. Plot: [IDF1 against the key-frame interval]"
              "(identities.png).", "",
              "FastestDet costs less than carrying a frame's boxes, so with it skip-frame detection is not "
              "faster (as in [detection](detection.md), whose EfficientDet-D0 rows show the wall-clock saving "
              "where the detector's cost dominates); here the key frames save detector calls "
              "(1 in N frames), and the question is what the identities keep.", ""]
    return "\n".join(lines)


def _every(n: int) -> str:
    return "every frame" if n == 1 else f"every {n}{'rd' if n == 3 else 'nd' if n == 2 else 'th'}"


def _gt_tracks(result: dict) -> str:
    per = next(iter(result["runs"].values()))["per_sequence"]
    return ", ".join(f"{s} {per[s]['gt_tracks']}" for s in result["sequences"])


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    fig, axes = plt.subplots(1, len(result["sequences"]) + 1, figsize=(4.2 * (len(result["sequences"]) + 1), 3.6))
    panels = [("mean", None)] + [(s, s) for s in result["sequences"]]
    for ax, (title, seq) in zip(axes, panels):
        value = (lambda r: r["idf1"]) if seq is None else (lambda r, s=seq: r["per_sequence"][s]["idf1"])
        ax.axhline(value(runs["per-frame"]), color="black", ls="--", lw=1, label="detector on every frame")
        for carrier, label in CARRIERS.items():
            pts = sorted((r["key_frame_interval"], value(r)) for r in runs.values()
                         if r["carrier"] == carrier and r["key_frame_interval"] > 1)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_title(title)
        ax.set_xlabel("key-frame interval N")
        ax.set_xticks(result["intervals"])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("IDF1")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="data root (default: $PATCHNET_ZOO_DATA or ../shared/data)")
    p.add_argument("--intervals", default="3,5,8", help="key-frame intervals (default: %(default)s)")
    p.add_argument("--max-frames", type=int, default=None, help="only the first N frames of each sequence")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per configuration, the fastest counts")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    p.add_argument("--out", default="docs/results", help="output folder (default: %(default)s)")
    p.add_argument("--from-json", default=None, metavar="JSON",
                   help="run nothing: re-write the markdown and the plot (into --out) from a JSON this script wrote")
    a = p.parse_args(argv)
    out = Path(a.out)
    if a.from_json:
        result = json.loads(Path(a.from_json).read_text())
        write(result, out)
        return result
    set_threads(a.threads)
    tune_cpu_allocator()
    intervals = [int(v) for v in a.intervals.split(",") if v.strip()]
    t0 = time.time()
    result = run(Path(a.data) if a.data else default_data_root(), intervals, a.max_frames, a.repeats)
    result.update({"machine": machine_info(), "threads": a.threads, "repeats": a.repeats,
                   "wall_seconds": time.time() - t0,
                   "command": "PYTHONPATH=. python benchmarks/identities.py" + (" " + shlex.join(argv) if argv else "")})
    write(result, out)
    return result


def write(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "identities.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    plot(result, out / "identities.png")
    (out / "identities.md").write_text(to_markdown(result, result["command"]))
    print(f"wrote {out / 'identities.md'}")


if __name__ == "__main__":
    main()
