"""How long one PatchNet match takes, crops and decoding included, on real frames.

Writes docs/results/match_speed.{md,json}. Four timings per setting, medians over many repeats:
encode + match of 1 box (a short-range jump), match of 1 box with its template already encoded (one
inter frame of skip-frame tracking), and the same two for 16 boxes of one frame (detection-style
propagation; 15 boxes of the ground truth's size spread over the frame plus the ground truth),
reported per box. Frames are decoded before timing. The issue's bars: <= 3 ms alone, <= 1.5 ms per
box in a batch of 16.

    PYTHONPATH=. python benchmarks/match_speed.py [--threads 1,2] [--response-sizes 7,13] [--compile]
"""
from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from patchnet_zoo._runtime import tune_cpu_allocator  # noqa: E402
from patchnet_zoo.data.readers import default_data_root, read_folder_sequence  # noqa: E402
from patchnet_zoo.eval.machine import machine_info  # noqa: E402
from patchnet_zoo.matching import PatchMatcher  # noqa: E402
from patchnet_zoo.registry import create_model  # noqa: E402

SEQUENCES = ("sot/Surfer", "sot/boat5")  # 480x360 and 1280x720 val frames


def _median_ms(fn, repeats: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def _boxes16(box: np.ndarray, hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = hw
    others = [[rng.uniform(0, w - box[2]), rng.uniform(0, h - box[3]), box[2], box[3]] for _ in range(15)]
    return np.vstack([box[None], np.asarray(others)])


def measure(matcher: PatchMatcher, f0, f1, box, repeats: int, rng) -> dict:
    boxes = _boxes16(box, f0.shape[:2], rng)
    one, many = matcher.encode(f0, box), matcher.encode(f0, boxes)
    return {
        "b1_encode_match": _median_ms(lambda: matcher.match(matcher.encode(f0, box), f1), repeats),
        "b1_match": _median_ms(lambda: matcher.match(one, f1), repeats),
        "b16_encode_match": _median_ms(lambda: matcher.match(matcher.encode(f0, boxes), f1), repeats) / 16,
        "b16_match": _median_ms(lambda: matcher.match(many, f1), repeats) / 16,
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None)
    p.add_argument("--threads", default="1,2", help="torch thread counts to time")
    p.add_argument("--response-sizes", default="7,13")
    p.add_argument("--repeats", type=int, default=60)
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd matching (slow to start)")
    p.add_argument("--default-allocator", action="store_true",
                   help="skip patchnet_zoo._runtime.tune_cpu_allocator (to see what it buys)")
    p.add_argument("--json", default="docs/results/match_speed.json")
    p.add_argument("--md", default="docs/results/match_speed.md")
    a = p.parse_args(argv)
    if not a.default_allocator:
        tune_cpu_allocator()
    root = Path(a.data) if a.data else default_data_root()
    model = create_model("patchnet", pretrained=True)
    rng = np.random.default_rng(0)
    rows = []
    for seq_path in SEQUENCES:
        seq = read_folder_sequence(root / seq_path)
        f0, f1, box = seq.frame(0), seq.frame(1), np.asarray(seq.boxes[0])
        for threads in (int(t) for t in a.threads.split(",")):
            torch.set_num_threads(threads)
            for r in (int(x) for x in a.response_sizes.split(",")):
                variants = [("eager", PatchMatcher(model, response_size=r))]
                if a.compile:  # a shallow copy, so the eager matcher keeps the plain method
                    twin = copy.copy(model.with_response_size(r))
                    twin.match_filters = torch.compile(twin.match_filters, dynamic=False)
                    variants.append(("compiled", PatchMatcher(twin)))
                for mode, matcher in variants:
                    res = measure(matcher, f0, f1, box, a.repeats, rng)
                    rows.append({"sequence": seq.name, "frame": f"{f0.shape[1]}x{f0.shape[0]}", "threads": threads,
                                 "response_size": r, "mode": mode, **{k: round(v, 3) for k, v in res.items()}})
                    print(rows[-1], flush=True)
    out = {"command": "python benchmarks/match_speed.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:])),
           "machine": machine_info(), "rows": rows}
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    lines = [
        "# PatchNet match time (crops and decoding included)", "",
        f"Command: `{out['command']}`", "",
        f"Machine: {out['machine'].get('cpu', 'CPU')}, {out['machine']['cpu_count']} cores, torch {out['machine']['torch']}. "
        "Medians; frames decoded before timing; shared machine, so compare rows of one run.", "",
        "Bars (issue): one box alone <= 3 ms; <= 1.5 ms per box in a batch of 16.", "",
        "| frame | threads | response | mode | 1 box: encode + match | 1 box: match (template cached) | 16 boxes: encode + match, per box | 16 boxes: match, per box |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['sequence']} {r['frame']} | {r['threads']} | {r['response_size']}x{r['response_size']} | {r['mode']} | "
                     f"{r['b1_encode_match']:.2f} ms | {r['b1_match']:.2f} ms | {r['b16_encode_match']:.2f} ms | {r['b16_match']:.2f} ms |")
    Path(a.md).write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    main()
