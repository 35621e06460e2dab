"""How long one PatchNet match takes, crops and decoding included, on real frames.

Writes docs/results/match_speed.{md,json}. Four timings per setting, medians over many repeats:
encode + match of 1 box (a short-range jump), match of 1 box with its template already encoded (one
inter frame of skip-frame tracking), and the same two for 16 boxes of one frame (detection-style
propagation; 15 boxes of the ground truth's size spread over the frame plus the ground truth),
reported per box. Frames are decoded before timing. The issue's bars: <= 3 ms alone, <= 1.5 ms per
box in a batch of 16.

    PYTHONPATH=. python benchmarks/match_speed.py [--threads 1,2] [--response-sizes 7,13] [--models patchnet,patchnet_k4] [--compiled]
"""
from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from patchnet_zoo._runtime import cap_openmp_spinning  # noqa: E402

cap_openmp_spinning()  # before torch loads: docs/design.md, "Two cores"
import torch  # noqa: E402

from patchnet_zoo._runtime import tune_cpu_allocator  # noqa: E402
from patchnet_zoo.data.readers import default_data_root, read_folder_sequence  # noqa: E402
from patchnet_zoo.eval.machine import machine_info  # noqa: E402
from patchnet_zoo.matching import PatchMatcher  # noqa: E402
from patchnet_zoo.registry import create_model  # noqa: E402

SEQUENCES = ("sot/Surfer", "sot/boat5")  # 480x360 and 1280x720 val frames


def _boxes16(box: np.ndarray, hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = hw
    others = [[rng.uniform(0, w - box[2]), rng.uniform(0, h - box[3]), box[2], box[3]] for _ in range(15)]
    return np.vstack([box[None], np.asarray(others)])


def timed_calls(matcher: PatchMatcher, f0, f1, box, rng) -> dict:
    """The four calls timed per setting; per-box figures are divided by 16 afterwards."""
    boxes = _boxes16(box, f0.shape[:2], rng)
    one, many = matcher.encode(f0, box), matcher.encode(f0, boxes)
    return {
        "b1_encode_match": lambda: matcher.match(matcher.encode(f0, box), f1),
        "b1_match": lambda: matcher.match(one, f1),
        "b16_encode_match": lambda: matcher.match(matcher.encode(f0, boxes), f1),
        "b16_match": lambda: matcher.match(many, f1),
    }


def interleaved_medians(calls: dict, repeats: int) -> dict:
    """Median ms of every call, the calls taking turns (round robin) so that the machine's slow and
    fast spells fall on all of them alike: on a shared 2-core machine the speed drifts by tens of
    per cent within a minute, which would otherwise decide which setting looks faster."""
    for fn in calls.values():
        for _ in range(5):
            fn()
    times = {k: [] for k in calls}
    for _ in range(repeats):
        for k, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v) * 1000) for k, v in times.items()}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None)
    p.add_argument("--threads", default="1,2", help="torch thread counts to time")
    p.add_argument("--response-sizes", default="7,13")
    p.add_argument("--models", default="patchnet,patchnet_k4", help="packaged PatchNet weights to time")
    p.add_argument("--repeats", type=int, default=60)
    p.add_argument("--compiled", action="store_true",
                   help="also time PatchMatcher(compiled=True): a one-box match compiled whole, the score "
                        "path of a batched one (compiles on each new shape's first call, during the "
                        "warm-up calls)")
    p.add_argument("--default-allocator", action="store_true",
                   help="skip patchnet_zoo._runtime.tune_cpu_allocator (to see what it buys)")
    p.add_argument("--json", default="docs/results/match_speed.json")
    p.add_argument("--md", default="docs/results/match_speed.md")
    a = p.parse_args(argv)
    if not a.default_allocator:
        tune_cpu_allocator()
    root = Path(a.data) if a.data else default_data_root()
    models = {name: create_model(name, pretrained=True) for name in a.models.split(",")}
    rng = np.random.default_rng(0)
    rows = []
    for threads in (int(t) for t in a.threads.split(",")):
        torch.set_num_threads(threads)
        if a.compiled:  # a new thread count compiles anew: start from an empty cache, within torch's limit
            torch._dynamo.reset()
        calls, meta = {}, []
        for seq_path in SEQUENCES:
            seq = read_folder_sequence(root / seq_path)
            f0, f1, box = seq.frame(0), seq.frame(1), np.asarray(seq.boxes[0])
            for (name, model), r in itertools.product(models.items(), (int(x) for x in a.response_sizes.split(","))):
                variants = [("eager", PatchMatcher(model, response_size=r))]
                if a.compiled:  # one box: the whole match compiled; 16: the score path
                    variants.append(("compiled", PatchMatcher(model, response_size=r, compiled=True)))
                for mode, matcher in variants:
                    key = len(meta)
                    meta.append({"model": name, "sequence": seq.name, "frame": f"{f0.shape[1]}x{f0.shape[0]}",
                                 "threads": threads, "response_size": r, "mode": mode})
                    for call, fn in timed_calls(matcher, f0, f1, box, rng).items():
                        calls[(key, call)] = fn
        medians = interleaved_medians(calls, a.repeats)
        for key, row in enumerate(meta):
            for name in ("b1_encode_match", "b1_match", "b16_encode_match", "b16_match"):
                row[name] = round(medians[(key, name)] / (16 if name.startswith("b16") else 1), 3)
            rows.append(row)
            print(row, flush=True)
    out = {"command": "python benchmarks/match_speed.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:])),
           "machine": machine_info(), "rows": rows}
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    lines = [
        "# PatchNet match time (crops and decoding included)"
        + (", eager and compiled" if a.compiled else ""), "",
        f"Command: `{out['command']}`", "",
        f"Machine: {out['machine'].get('cpu', 'CPU')}, {out['machine']['cpu_count']} cores, torch {out['machine']['torch']}. "
        "Medians over the repeats, all calls of one thread count taking turns; frames decoded before "
        "timing; a shared machine, so compare rows of one run.", "",
        "Bars (issue): one box alone <= 3 ms; <= 1.5 ms per box in a batch of 16.", "",
        *(["Mode \"compiled\": `PatchMatcher(compiled=True)`. A call with one box runs its whole match "
           "after the crop, to the decoded box, as one compiled graph (the same boxes to float "
           "rounding); a call with 16 compiles the score path alone (the same boxes, bit for bit). It "
           "compiles during the warm-up calls, before the timing. See docs/design.md, \"A compiled "
           "score path\" and \"A compiled match\".", ""] if a.compiled else []),
        "| model | frame | threads | response | mode | 1 box: encode + match | 1 box: match (template cached) | 16 boxes: encode + match, per box | 16 boxes: match, per box |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['sequence']} {r['frame']} | {r['threads']} | {r['response_size']}x{r['response_size']} | {r['mode']} | "
                     f"{r['b1_encode_match']:.2f} ms | {r['b1_match']:.2f} ms | {r['b16_encode_match']:.2f} ms | {r['b16_match']:.2f} ms |")
    Path(a.md).write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    main()
