"""Training pairs for PatchNet: (template crop at frame t, search crop at frame t + gap) with the
ground-truth cell and box offsets, all fixed-size so batches of any size stack.

Follows the paper's setup (frame gap 0-11, box side 20-500 px, box/image area 1-50 %, aspect 1/4-4)
and adds augmentations the original did not have: time reversal, horizontal flip, colour jitter,
occasional grayscale, a small template-box jitter (detector boxes are not exact) and a sub-cell
jitter of the search centre.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..geometry import crop_windows, to_frame_tensor
from ..losses import search_targets
from ..models.patchnet import IMAGENET_MEAN_255, PatchNetGeometry
from .readers import Sequence

__all__ = ["PairConfig", "PairDataset", "valid_frames"]


@dataclass
class PairConfig:
    max_gap: int = 11
    min_side: float = 20.0
    max_side: float = 500.0
    min_area_ratio: float = 0.01
    max_area_ratio: float = 0.5
    max_aspect: float = 4.0
    augment: bool = True
    template_jitter: float = 0.05  # fraction of the box: shift and log-scale jitter of the template box
    centre_jitter: float = 1.0  # cells: uniform shift of the search centre
    flip: float = 0.5
    reverse: float = 0.5
    gray: float = 0.05
    colour: float = 0.2  # brightness/contrast jitter amplitude


def valid_frames(seq: Sequence, cfg: PairConfig, frame_hw: tuple[int, int] | None) -> np.ndarray:
    """Indices of frames whose box passes the paper's filter."""
    b = seq.boxes
    ok = np.isfinite(b).all(1)
    w, h = np.where(ok, b[:, 2], 0), np.where(ok, b[:, 3], 0)
    ok &= (np.minimum(w, h) >= cfg.min_side) & (np.maximum(w, h) <= cfg.max_side)
    ok &= (np.maximum(w, h) <= cfg.max_aspect * np.minimum(w, h))
    if frame_hw is not None:
        area = w * h / float(frame_hw[0] * frame_hw[1])
        ok &= (area >= cfg.min_area_ratio) & (area <= cfg.max_area_ratio)
    return np.nonzero(ok)[0]


class FrameCache:
    """Decoded frames kept in memory up to a byte budget (least recently used leave first)."""

    def __init__(self, max_bytes: int = 6 << 30):
        self.max_bytes = max_bytes
        self.bytes = 0
        self.items: OrderedDict = OrderedDict()

    def get(self, seq_id: int, seq: Sequence, i: int) -> torch.Tensor:
        key = (seq_id, i)
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        t = to_frame_tensor(seq.frame(i))
        self.items[key] = t
        self.bytes += t.numel()
        while self.bytes > self.max_bytes and len(self.items) > 1:
            _, old = self.items.popitem(last=False)
            self.bytes -= old.numel()
        return t


def colour_jitter(a: torch.Tensor, b: torch.Tensor, gray: float, colour: float, rng) -> tuple[torch.Tensor, torch.Tensor]:
    """The same photometric change for both crops of a pair (0-255 scale): grey with probability
    ``gray``, then a contrast 1 +- ``colour`` and a brightness shift +- 64 ``colour``. Both training
    pair datasets use it, drawing from ``rng`` in this order."""
    if rng.random() < gray:
        a = a.mean(0, keepdim=True).expand(3, -1, -1).clone()
        b = b.mean(0, keepdim=True).expand(3, -1, -1).clone()
    if colour > 0:
        contrast = 1 + rng.uniform(-colour, colour)
        shift = rng.uniform(-colour, colour) * 64
        a = (a * contrast + shift).clamp(0, 255)
        b = (b * contrast + shift).clamp(0, 255)
    return a, b


def _frame_hw(seq: Sequence) -> tuple[int, int]:
    res = seq.meta.get("resolution") if seq.meta else None
    if res:
        return int(res[1]), int(res[0])
    f = seq.frame(0)
    return f.shape[0], f.shape[1]


def usable_sequences(sequences: list[Sequence], cfg: PairConfig) -> tuple[list[Sequence], list, np.ndarray]:
    """The sequences with at least two frames that pass the frame filter, their valid frame indices,
    and sampling weights ~ sqrt(valid frames) (long sequences count more, without drowning the rest)."""
    kept, valid = [], []
    for seq in sequences:
        idx = valid_frames(seq, cfg, _frame_hw(seq))
        if len(idx) >= 2:
            kept.append(seq)
            valid.append(idx)
    if not kept:
        raise ValueError("no sequence has two frames that pass the training-pair filter")
    w = np.sqrt([len(v) for v in valid])
    return kept, valid, w / w.sum()


class PairDataset(Dataset):
    """``samples_per_epoch`` random pairs; sequences drawn with probability ~ sqrt(usable frames)."""

    def __init__(self, sequences: list[Sequence], samples_per_epoch: int = 20000,
                 geometry: PatchNetGeometry | None = None, config: PairConfig | None = None,
                 seed: int = 0, fill=IMAGENET_MEAN_255, cache_bytes: int = 6 << 30, fixed: bool = False):
        self.cfg = config or PairConfig()
        self.geom = geometry or PatchNetGeometry(8, 8, 7)
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.fixed = fixed  # same pairs every epoch (validation)
        self.epoch = 0
        self.fill = torch.tensor(fill, dtype=torch.float32)
        self.cache = FrameCache(cache_bytes)
        self.sequences, self.valid, self.weights = usable_sequences(sequences, self.cfg)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rng(self, index: int) -> np.random.Generator:
        epoch = 0 if self.fixed else self.epoch
        return np.random.default_rng([self.seed, epoch, index])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self._rng(index)
        cfg = self.cfg
        s = rng.choice(len(self.sequences), p=self.weights)
        seq, valid = self.sequences[s], self.valid[s]
        t = int(rng.choice(valid))
        near = valid[(np.abs(valid - t) <= cfg.max_gap)]
        t2 = int(rng.choice(near))
        if cfg.augment and rng.random() < cfg.reverse:
            t, t2 = t2, t
        f1, f2 = self.cache.get(s, seq, t), self.cache.get(s, seq, t2)
        b1 = torch.tensor(seq.boxes[t], dtype=torch.float32)
        b2 = torch.tensor(seq.boxes[t2], dtype=torch.float32)
        # template box (jittered) and search window base (the previous box, as in tracking)
        tb = b1.clone()
        if cfg.augment and cfg.template_jitter > 0:
            j = cfg.template_jitter
            c = tb[:2] + tb[2:] / 2 + torch.from_numpy(rng.uniform(-j, j, 2)).float() * tb[2:]
            wh = tb[2:] * torch.from_numpy(np.exp(rng.uniform(-j, j, 2))).float()
            tb = torch.cat([c - wh / 2, wh])
        base = torch.cat([b1[:2] + b1[2:] / 2, b1[2:]]).unsqueeze(0)
        if cfg.augment and cfg.centre_jitter > 0:
            base[0, :2] += torch.from_numpy(rng.uniform(-cfg.centre_jitter, cfg.centre_jitter, 2)).float() * b1[2:] / 8
        centre, cell, off = search_targets(base, b2.unsqueeze(0), self.geom.max_shift_cells)
        g = self.geom
        template = crop_windows(f1, (tb[:2] + tb[2:] / 2).unsqueeze(0), tb[2:].unsqueeze(0), g.template_size, self.fill)[0]
        search = crop_windows(f2, centre, base[:, 2:] * g.search_scale, g.search_size, self.fill)[0]
        cell, off = cell[0], off[0]
        if cfg.augment:
            if rng.random() < cfg.flip:
                template, search = template.flip(-1), search.flip(-1)
                cell = cell * torch.tensor([-1, 1])
                off = torch.stack([-off[2], off[1], -off[0], off[3]])
            template, search = colour_jitter(template, search, cfg.gray, cfg.colour, rng)
        return {"template": template, "search": search, "cell": cell, "offsets": off.float(),
                "search_box": torch.cat([centre[0], base[0, 2:]])}
