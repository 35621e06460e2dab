"""Where PatchNet and full-template NCC differ on the short-range pairs: per sequence, the share of
pairs whose target stays inside the search window, and the miss rates on all pairs, on those
reachable pairs alone and on the pairs whose target lies in the one-cell band just beyond the
window's edge (the numbers behind "Where PatchNet loses to NCC" in docs/design.md).

    PYTHONPATH=. python benchmarks/short_range_breakdown.py [--response-size 7] [--data DIR] [--split val]
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from patchnet_zoo._runtime import cap_openmp_spinning

cap_openmp_spinning()  # before torch loads: docs/design.md, "Two cores"
import torch  # noqa: E402

from patchnet_zoo.data.readers import default_data_root, read_sequences
from patchnet_zoo.eval.short_range import MISS_IOU, build_matchers, reachable, short_range_pairs
from patchnet_zoo.geometry import box_iou


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="data root (default: $PATCHNET_ZOO_DATA or ../shared/data)")
    p.add_argument("--split", default="val")
    p.add_argument("--gap", type=int, default=10)
    p.add_argument("--response-size", type=int, default=7)
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    sequences = read_sequences(a.data or default_data_root(), a.split)
    matchers, _, baselines = build_matchers(["patchnet", "ncc"], response_size=a.response_size)
    patchnet, ncc = matchers["patchnet"], baselines["ncc"]
    rows = defaultdict(list)  # sequence -> [(reachable, iou patchnet, iou ncc, in the band past the edge)]
    for seq, t in short_range_pairs(sequences, a.gap):
        key_frame, frame = seq.frame(t), seq.frame(t + a.gap)
        key_box = np.asarray(seq.boxes[t], dtype=np.float64)
        gt = np.asarray(seq.boxes[t + a.gap], dtype=np.float64)[None]
        p_box = patchnet(key_frame, key_box[None], frame).boxes[0].numpy()[None]
        n_box = np.asarray(ncc.match(key_frame, key_box, frame), dtype=np.float64)[None]
        inside = bool(reachable(key_box[None], gt, a.response_size)[0])
        band = not inside and bool(reachable(key_box[None], gt, a.response_size + 2)[0])
        rows[seq.name].append((inside, float(box_iou(p_box, gt)[0]), float(box_iou(n_box, gt)[0]), band))

    def line(name: str, r: np.ndarray) -> str:
        reach = r[:, 0] > 0
        inside = (f"{np.mean(r[reach, 1] < MISS_IOU):.3f} | {np.mean(r[reach, 2] < MISS_IOU):.3f} | "
                  f"{r[reach, 1].mean():.3f} | {r[reach, 2].mean():.3f}") if reach.any() else "- | - | - | -"
        band = r[:, 3] > 0
        past = (f"{int(band.sum())} | {np.mean(r[band, 1] < MISS_IOU):.3f} | {np.mean(r[band, 2] < MISS_IOU):.3f}"
                if band.any() else "0 | - | -")
        return (f"| {name} | {len(r)} | {reach.mean():.2f} | {np.mean(r[:, 1] < MISS_IOU):.3f} | "
                f"{np.mean(r[:, 2] < MISS_IOU):.3f} | {inside} | {past} |")

    print(f"Gap {a.gap}, {a.response_size}x{a.response_size} response, split {a.split}; miss = IoU < {MISS_IOU}\n")
    print("| sequence | pairs | reachable | miss PatchNet | miss NCC | reachable: miss PatchNet | miss NCC "
          "| mean IoU PatchNet | mean IoU NCC | pairs in the band past the edge | band: miss PatchNet | miss NCC |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(line(name, np.asarray(r, dtype=np.float64)))
    print(line("all", np.concatenate([np.asarray(r, dtype=np.float64) for r in rows.values()])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
