"""The poster's Figure 6 on our data: accuracy versus compute of the gated Siamese tracker's policies.

For each policy -- fixed depth 1..5, soft gating, hard gating at several thresholds T -- and for
PatchNet between key frames of the hard-gated tracker (``SkipFrameTracker``), on the val split:

* OTB success (AUC) and precision (20 px) of a one-pass evaluation (``eval.ope.run_ope_many``,
  every configuration on each sequence in turn);
* mean IoU up to 1, 5 and 25 frames ahead: the tracker starts on the ground truth at frame t
  (every ``--stride`` frames) and tracks to t + 25; the IoU is averaged over t+1..t+k;
* GMACs per frame, summed per frame over what the tracker really ran (backbone stages up to the
  exit, correlations and gates visited, the two extra key scales at the depth used; PatchNet's
  match on inter frames), counted with ``FlopCounterMode`` (``models.gated_siamese.count_depth_macs``);
* the histogram of exit depths.

    PYTHONPATH=. python benchmarks/gated.py                      # docs/results/gated.{md,json,png}
    PYTHONPATH=. python benchmarks/gated.py --max-frames 20 --thresholds 0.3 --out-dir runs/gated_check
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
from patchnet_zoo.accel.skip_frame_tracker import PATCHNET_INTER_ARCH  # noqa: E402
from patchnet_zoo.data.readers import default_data_root, read_sequences  # noqa: E402
from patchnet_zoo.eval.machine import machine_info  # noqa: E402
from patchnet_zoo.eval.ope import decode_frames, run_ope_many  # noqa: E402
from patchnet_zoo.eval.otb import iou as box_ious  # noqa: E402
from patchnet_zoo.models.gated_siamese import N_DEPTHS  # noqa: E402
from patchnet_zoo.tracking_cli import add_decoding_arguments, decoding_options  # noqa: E402

HORIZONS = (1, 5, 25)
FLOPS_BAR, SUCCESS_BAR, SKIP_BAR = 0.5, 0.95, 0.97


class RecordingFactory:
    """A tracker factory that keeps every tracker it made (to read their per-frame costs)."""

    def __init__(self, make, name: str):
        self.make, self.name, self.made = make, name, []
        self.config = {"tracker": name}

    def __call__(self):
        t = self.make()
        self.made.append(t)
        return t


def _gated(model, spec: dict):
    from patchnet_zoo.trackers.gated_tracker import GatedTracker

    return GatedTracker(model, **spec)


def _skip(model, spec: dict, interval: int, conf: float | None, matcher):
    from patchnet_zoo.accel.skip_frame_tracker import SkipFrameTracker

    return SkipFrameTracker(_gated(model, spec), key_frame_interval=interval, conf_threshold=conf, matcher=matcher)


def _gated_of(tracker):
    return getattr(tracker, "base", tracker)


def short_horizon_iou(make, sequences, max_frames: int | None, stride: int, horizons=HORIZONS,
                      progress: bool = True) -> dict:
    """Mean IoU over t+1..t+k (k in ``horizons``) of a tracker started on the ground truth at t,
    for t every ``stride`` frames where the target is present; each start weighs the same."""
    from tqdm.auto import tqdm

    kmax = max(horizons)
    sums = {k: [] for k in horizons}
    for seq in tqdm(sequences, desc="short horizon", leave=False, disable=not progress):
        frames = decode_frames(seq, max_frames)
        gt = np.asarray(seq.boxes, dtype=np.float64)[: len(frames)]
        for t in range(0, len(frames) - 1, stride):
            if not np.isfinite(gt[t]).all():
                continue
            tracker = make()
            tracker.init(frames[t], gt[t].copy())
            ious = []
            for i in range(t + 1, min(len(frames), t + 1 + kmax)):
                box = tracker.update(frames[i])
                ious.append(float(box_ious(np.asarray(box)[None], gt[i][None])[0]) if np.isfinite(gt[i]).all()
                            else np.nan)
            ious = np.asarray(ious)
            for k in horizons:
                part = ious[:k]
                part = part[np.isfinite(part)]
                if len(part):
                    sums[k].append(float(part.mean()))
    return {f"iou@{k}": (float(np.mean(v)) if v else None) for k, v in sums.items()} | {"starts": len(sums[1])}


def _costs(factory: RecordingFactory, result: dict) -> dict:
    """GMACs per frame and exit-depth histogram from the trackers of one OPE run."""
    depths, gated_gmacs = [], []
    for t in factory.made:
        g = _gated_of(t)
        depths += list(getattr(g, "depths", []))
        gated_gmacs += list(getattr(g, "gmacs", []))
    frames = int(result["frames"])
    # frames tracked = updates + the init frames (init is not a per-frame cost, as in the OPE runner)
    updates = frames - int(result["sequences"])
    inter = result.get("gflops", {}) or {}
    inter_total = float(inter.get("inter_per_call") or 0.0) * int(inter.get("inter_calls") or 0)
    total = float(np.sum(gated_gmacs)) + inter_total
    hist = [int(np.sum(np.asarray(depths) == d)) for d in range(1, N_DEPTHS + 1)]
    return {"gmacs_per_frame": total / max(updates, 1), "gated_calls": len(gated_gmacs),
            "inter_gmacs_total": inter_total, "exit_depth_hist": hist}


def skip_row_matcher(args):
    """The skip-frame row's PatchNet: the packaged weights of ``args.inter`` over the skip-frame
    tracker's own window (a ``PatchMatcher`` given to it keeps its window), with the decoding options
    of ``args``."""
    from patchnet_zoo.accel.skip_frame_tracker import DEFAULT_RESPONSE_SIZE
    from patchnet_zoo.matching import PatchMatcher
    from patchnet_zoo.registry import create_model

    return PatchMatcher(create_model(PATCHNET_INTER_ARCH[args.inter], pretrained=True),
                        response_size=DEFAULT_RESPONSE_SIZE, **decoding_options(args))


def _per_sequence(ope_result: dict) -> dict:
    """Success per sequence: on nine sequences one lost target moves a mean by points."""
    return {name: round(float(v["success"]), 4) for name, v in ope_result.get("per_sequence", {}).items()}


def run(args, sequences) -> dict:
    import torch

    from patchnet_zoo.trackers.gated_tracker import load_gated_model

    model = load_gated_model(weights_path=args.weights)
    torch.manual_seed(0)
    configs: dict[str, dict] = {f"fixed{d}": {"policy": "fixed", "depth": d} for d in range(1, N_DEPTHS + 1)}
    configs["soft"] = {"policy": "soft"}
    for T in args.thresholds:
        configs[f"hard{T:g}"] = {"policy": "hard", "threshold": T}
    factories = {k: RecordingFactory(lambda s=spec: _gated(model, s), k) for k, spec in configs.items()}
    print(f"OPE: {len(factories)} configurations", flush=True)
    ope = run_ope_many(factories, sequences, progress=not args.no_progress, max_frames=args.max_frames,
                       warmup=False)
    rows: dict[str, dict] = {}
    for k, f in factories.items():
        r = ope[k]
        rows[k] = {"policy": configs[k], "success": r["success"], "precision": r["precision"], "fps": r["fps"],
                   "frames": r["frames"], "per_sequence": _per_sequence(r), **_costs(f, r)}
    # the threshold for the skip-frame row: the best hard policy within the FLOPs bar, else the cheapest
    full = rows["fixed5"]["gmacs_per_frame"]
    hard = [k for k in rows if k.startswith("hard")]
    within = [k for k in hard if rows[k]["gmacs_per_frame"] <= FLOPS_BAR * full]
    base_key = max(within, key=lambda k: rows[k]["success"]) if within else \
        min(hard, key=lambda k: rows[k]["gmacs_per_frame"])
    matcher = skip_row_matcher(args)
    conf = None if args.conf_threshold <= 0 else args.conf_threshold
    skip_key = f"{base_key}+patchnet@{args.interval}"
    sf = RecordingFactory(lambda: _skip(model, configs[base_key], args.interval, conf, matcher), skip_key)
    print(f"OPE: {skip_key}", flush=True)
    r = run_ope_many({skip_key: sf}, sequences, progress=not args.no_progress, max_frames=args.max_frames,
                     warmup=False)[skip_key]
    rows[skip_key] = {"policy": {**configs[base_key], "skip_frame": {"inter": args.inter, "interval": args.interval,
                                                                     "conf_threshold": conf}},
                      "success": r["success"], "precision": r["precision"], "fps": r["fps"], "frames": r["frames"],
                      "key_frames": r["key_frames"], "per_sequence": _per_sequence(r), **_costs(sf, r)}
    # short horizons
    for k in list(rows):
        if k == skip_key:
            make = lambda: _skip(model, configs[base_key], args.interval, conf, matcher)  # noqa: E731
        else:
            make = lambda s=configs[k]: _gated(model, s)  # noqa: E731
        print(f"short horizon: {k}", flush=True)
        rows[k].update(short_horizon_iou(make, sequences, args.max_frames, args.stride, progress=not args.no_progress))
    return {"rows": rows, "hard_for_skip": base_key, "skip_key": skip_key}


def done_checks(result: dict) -> list[str]:
    rows = result["rows"]
    d5, d1 = rows["fixed5"], rows["fixed1"]
    out = []
    hard = {k: v for k, v in rows.items() if k.startswith("hard") and "+" not in k}
    ok = [k for k, v in hard.items() if v["gmacs_per_frame"] <= FLOPS_BAR * d5["gmacs_per_frame"]
          and v["success"] >= SUCCESS_BAR * d5["success"]]
    best = max(hard, key=lambda k: hard[k]["success"] / max(d5["success"], 1e-9)
               - (hard[k]["gmacs_per_frame"] > FLOPS_BAR * d5["gmacs_per_frame"]))
    b = hard[best]
    out.append(f"[{'MET' if ok else 'NOT MET'}] hard gating >= {SUCCESS_BAR:.0%} of depth-5 success at <= "
               f"{FLOPS_BAR:.0%} of its GMACs: best {best}: success {b['success']:.3f} = "
               f"{b['success'] / d5['success']:.1%} of {d5['success']:.3f}, GMACs {b['gmacs_per_frame']:.3f} = "
               f"{b['gmacs_per_frame'] / d5['gmacs_per_frame']:.1%} of {d5['gmacs_per_frame']:.3f}"
               + (f" (meeting it: {', '.join(ok)})" if ok else ""))
    margin = d5["success"] - d1["success"]
    out.append(f"[{'MET' if margin >= 0.05 else 'NOT MET'}] depth 5 beats depth 1 by a clear margin (>= 0.05 AUC): "
               f"{d5['success']:.3f} vs {d1['success']:.3f} (+{margin:.3f})")
    s, base = rows[result["skip_key"]], rows[result["hard_for_skip"]]
    share = s["success"] / base["success"] if base["success"] else float("nan")
    out.append(f"[{'MET' if share >= SKIP_BAR else 'NOT MET'}] {result['skip_key']} keeps >= {SKIP_BAR:.0%} of "
               f"{result['hard_for_skip']}'s success: {s['success']:.3f} / {base['success']:.3f} = {share:.1%} "
               f"at {s['gmacs_per_frame']:.3f} vs {base['gmacs_per_frame']:.3f} GMACs per frame")
    return out


def to_markdown(result: dict) -> str:
    rows = result["rows"]
    full = rows["fixed5"]["gmacs_per_frame"]
    inter = rows[result["skip_key"]]["policy"]["skip_frame"]["inter"]
    lines = [
        "# Adaptive-depth gated Siamese tracker: accuracy versus compute (poster Figure 6, our data)",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Split `{result['split']}` ({result['sequences']} sequences"
        + (f", first {result['max_frames']} frames each" if result["max_frames"] else "")
        + f"), weights `{result['weights']}`, {result['threads']} thread(s), {result['machine'].get('cpu', '')}.",
        "Success = OTB AUC, precision = share of frames with centre error <= 20 px (one-pass evaluation, "
        "started on the first frame's ground truth). IoU@k = mean IoU over the k frames after a start on "
        f"the ground truth, starts every {result['stride']} frames. GMACs per frame = the mean over all updates "
        "of what really ran (1 MAC = 2 FLOPs; the key crops are embedded once per start and not counted, "
        "as in the OPE runner). `+patchnet@N`: `SkipFrameTracker` with PatchNet "
        + ("" if inter == "patchnet" else f"(`inter=\"{inter}\"`) ") + "between key frames, "
        "a key frame at least every N frames and whenever PatchNet's confidence drops below "
        f"{result['conf_threshold']}"
        + (f"; PatchNet's decoding `PatchMatcher({', '.join(f'{k}={v}' for k, v in result['decoding'].items())})`"
           if result.get("decoding") else "") + ".",
        "",
        "| policy | success | precision | IoU@1 | IoU@5 | IoU@25 | GMACs/frame | of depth 5 | exit depths 1/2/3/4/5 | fps |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f(v, fmt=".3f"):
        return "—" if v is None else format(v, fmt)

    for k, r in rows.items():
        hist = r["exit_depth_hist"]
        n = max(sum(hist), 1)
        hs = "/".join(f"{100 * h / n:.0f}%" for h in hist)
        lines.append(f"| {k} | {f(r['success'])} | {f(r['precision'])} | {f(r.get('iou@1'))} | {f(r.get('iou@5'))} | "
                     f"{f(r.get('iou@25'))} | {r['gmacs_per_frame']:.3f} | {r['gmacs_per_frame'] / full:.0%} | {hs} | "
                     f"{r['fps']:.1f} |")
    skip, base = rows.get(result.get("skip_key")), rows.get(result.get("hard_for_skip"))
    if skip and base and skip.get("per_sequence") and base.get("per_sequence"):
        names = list(base["per_sequence"])
        lines += ["", "Success per sequence of the skip-frame row and of the policy it runs on key frames "
                      "(on nine sequences one lost target moves the mean by several points):", "",
                  "| policy | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for k in (result["hard_for_skip"], result["skip_key"]):
            ps = rows[k]["per_sequence"]
            lines.append(f"| {k} | " + " | ".join(f(ps.get(n)) for n in names) + " |")
    c = result["macs"]
    lines += [
        "",
        "Cost per depth (one search crop, MACs counted with `torch.utils.flop_counter.FlopCounterMode`):",
        "",
        "| depth | backbone stage | correlation (1 key) | fixed-depth step | relative to depth 1 |",
        "|---|---|---|---|---|",
    ]
    for d in range(N_DEPTHS):
        lines.append(f"| {d + 1} | {c['stage'][d] / 1e6:.1f} M | {c['corr'][d] / 1e6:.2f} M | "
                     f"{c['fixed_depth_total'][d] / 1e6:.1f} M | {c['fixed_depth_total'][d] / c['fixed_depth_total'][0]:.2f}x |")
    lines += ["", "The tracker adds two correlations (the other key scales) at the depth it uses.", "",
              f"![accuracy versus compute]({result['plot']})", ""]
    rec = result.get("record") or {}
    if rec:
        sp = rec.get("speed", {})
        lines += ["## The weights", "",
                  f"`{rec.get('name')}` (sha256 `{rec.get('sha256', '')[:12]}...`), trained by `{rec.get('recipe')}` "
                  f"on {rec.get('data')}: phase 1 (depth-5 stage and the five temperatures on the summed per-depth "
                  f"loss) {sp.get('phase1_train_minutes_wall', '?')} min, phase 2 (the four gates on the gated loss, "
                  f"lambda = 1, measured per-depth costs) {sp.get('phase2_train_minutes_wall', '?')} min wall-clock "
                  f"on 2 CPU cores. `make gated-weights` re-runs both recipes (seeded, single process) and "
                  f"exports: on the machine that trained them it wrote the same file again (same sha256). "
                  f"Another CPU with the same torch build need not: its float results can differ in the last "
                  f"digits, and training amplifies that: the seeded 2-epoch recipe before this one gave a depth-5 "
                  f"success of 0.44 where it was first trained and 0.31 when re-run on another machine, whose "
                  f"float results differed from the first run's in the 7th digit.", ""]
    lines += ["## Design notes", "",
              "- Backbone: ImageNet MobileNetV2 split at its strides (2, 4, 8, 16, 32 -> depth 5 dilated to 16, "
              "so its map has 9x9 positions instead of 5x5). Depth 1's features are 2x2 average pooled before "
              "the correlation (a stride-2 correlation would cost more than the whole backbone). All maps are "
              "resampled to one 33x33 grid (4 px per cell of the 256-px search crop).",
              "- Key crop 128 px (box + (w+h)/8 per side), search crop 256 px (twice that), as in the poster's code; "
              "the key is embedded once at init at three scales, so the size search costs two correlations per frame.",
              "- Exit depths are per frame; the GMACs column is their mean, the key embedding at init is not included "
              "(it is paid once per start).", "", "## Done checks", ""]
    lines += [f"- {x}" for x in result["checks"]]
    return "\n".join(lines) + "\n"


def write_plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, metric, label in ((axes[0], "success", "OTB success (AUC)"), (axes[1], "iou@5", "mean IoU, 5 frames ahead")):
        for group, marker in (("fixed", "o"), ("soft", "s"), ("hard", "^"), ("+", "*")):
            keys = [k for k in rows if (group in k if group == "+" else k.startswith(group) and "+" not in k)]
            if not keys:
                continue
            xs = [rows[k]["gmacs_per_frame"] for k in keys]
            ys = [rows[k].get(metric) or np.nan for k in keys]
            ax.plot(xs, ys, marker=marker, linestyle="-" if group in ("fixed", "hard") else "none",
                    label={"+": "hard + PatchNet skip-frame"}.get(group, group))
            for k, x, y in zip(keys, xs, ys):
                ax.annotate(k.replace("+patchnet", "+PN"), (x, y), textcoords="offset points", xytext=(3, 3),
                            fontsize=7)
        ax.set_xlabel("GMACs per frame")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    hard = [k for k in rows if k.startswith("hard")]
    width = 0.8 / max(len(hard), 1)
    for i, k in enumerate(hard):
        h = np.asarray(rows[k]["exit_depth_hist"], dtype=float)
        axes[2].bar(np.arange(1, N_DEPTHS + 1) + (i - (len(hard) - 1) / 2) * width, h / max(h.sum(), 1), width,
                    label=k)
    axes[2].set_xlabel("exit depth")
    axes[2].set_ylabel("share of frames")
    axes[2].legend(fontsize=7)
    axes[2].set_title("exit depths (hard gating)")
    fig.suptitle(f"gated Siamese tracker on the {result['split']} split")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _record(weights: str | None) -> dict | None:
    """The packaged weights record (training recipe and time), when the packaged weights were used."""
    if weights and not str(weights).startswith("packaged"):
        return None
    from patchnet_zoo.registry import get_weights

    return get_weights("gated_siamese").to_dict()


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="data root (default: $PATCHNET_ZOO_DATA or ../shared/data)")
    p.add_argument("--split", default="val")
    p.add_argument("--weights", default=None, help="gated_siamese safetensors (default: the packaged weights)")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.03, 0.05, 0.1, 0.2, 0.3])
    p.add_argument("--max-frames", type=int, default=150, help="frames per sequence (default: 150; 0 = all)")
    p.add_argument("--stride", type=int, default=50, help="frames between short-horizon starts (default: 50)")
    p.add_argument("--interval", type=int, default=3, help="skip-frame key-frame interval (default: 3)")
    p.add_argument("--conf-threshold", type=float, default=0.8, help="skip-frame confidence fallback (0 = off)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-dir", default="docs/results")
    p.add_argument("--name", default="gated")
    p.add_argument("--no-progress", action="store_true")
    add_decoding_arguments(p)  # for the skip-frame row's PatchNet
    p.add_argument("--inter", default="patchnet", choices=sorted(PATCHNET_INTER_ARCH),
                   help="the PatchNet model of the skip-frame row (default: patchnet, the paper's)")
    p.add_argument("--render", metavar="JSON", default=None,
                   help="only rewrite the markdown and the plot from a JSON this script wrote")
    args = p.parse_args(argv)
    out = Path(args.out_dir)
    if args.render:
        out.mkdir(parents=True, exist_ok=True)
        result = json.loads(Path(args.render).read_text())
        result["record"] = _record(result.get("weights"))
        result["checks"] = done_checks(result)
        write_plot(result, out / f"{args.name}.png")
        (out / f"{args.name}.md").write_text(to_markdown(result))
        print(f"wrote {out / (args.name + '.md')}")
        return result
    if args.max_frames == 0:
        args.max_frames = None
    import torch

    from patchnet_zoo._runtime import tune_cpu_allocator
    from patchnet_zoo.trackers.gated_tracker import load_gated_model

    tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    root = Path(args.data) if args.data else default_data_root()
    sequences = read_sequences(root, args.split)
    t0 = time.time()
    result = run(args, sequences)
    out.mkdir(parents=True, exist_ok=True)
    result.update(command="PYTHONPATH=. python benchmarks/gated.py" + (" " + shlex.join(argv) if argv else ""),
                  split=str(args.split), sequences=len(sequences), max_frames=args.max_frames, stride=args.stride,
                  threads=args.threads, conf_threshold=args.conf_threshold, decoding=decoding_options(args),
                  weights=args.weights or "packaged gated_siamese.shared_train", machine=machine_info(),
                  macs=load_gated_model(weights_path=args.weights).macs_summary(), seconds=time.time() - t0,
                  plot=f"{args.name}.png")
    result["checks"] = done_checks(result)
    result["record"] = _record(result["weights"])
    write_plot(result, out / f"{args.name}.png")
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    (out / f"{args.name}.md").write_text(to_markdown(result))
    for line in result["checks"]:
        print(line)
    print(f"wrote {out / (args.name + '.md')}")
    return result


if __name__ == "__main__":
    main()
