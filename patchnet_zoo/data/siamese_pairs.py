"""Key/search crop pairs for the gated Siamese tracker, SiamFC style.

The key crop is centred on the box at frame t with context: side ``sqrt((w + p)(h + p))`` with
``p = (w + h) / 4`` (that is ``(w + h) / 8`` on each side), resampled to ``key_size``. The search
crop at frame t + gap is centred where the target was at frame t (as in tracking: the tracker
looks around its last position) with twice the key's extent, resampled to ``search_size``. The
target is the displacement of the true centre at t + gap from the search centre, in search-crop
pixels. Augmentation: time reversal, horizontal flip, colour jitter, occasional grayscale, a
random shift and scale of the search window (so the net sees off-centre targets and size
changes). Frames come through the shared ``FrameCache``; boxes pass the same filter as PatchNet's
pairs (``usable_sequences``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..geometry import crop_windows
from .pairs import FrameCache, PairConfig, colour_jitter, usable_sequences
from .readers import Sequence

__all__ = ["SiamesePairConfig", "SiamesePairDataset", "context_side", "MEAN_FILL"]

MEAN_FILL = (123.675, 116.28, 103.53)


def context_side(w, h):
    """Side of the square key window around a w x h box: box plus (w + h) / 8 on each side."""
    p = (w + h) / 4.0
    return np.sqrt((w + p) * (h + p))


@dataclass
class SiamesePairConfig:
    key_size: int = 128
    search_size: int = 256
    max_gap: int = 10
    shift: float = 0.2  # uniform shift of the search centre, fraction of the key window side
    scale: float = 0.15  # log-uniform scale jitter of the search window
    flip: float = 0.5
    reverse: float = 0.5
    gray: float = 0.05
    colour: float = 0.2


class SiamesePairDataset(Dataset):
    """``samples_per_epoch`` random pairs (sequences drawn ~ sqrt(usable frames)); ``fixed=True``
    gives the same pairs every epoch (validation). Items: ``key`` (3, k, k), ``search`` (3, s, s)
    float 0-255, ``disp`` (2,) target displacement in search-crop pixels (x, y)."""

    def __init__(self, sequences: list[Sequence], samples_per_epoch: int = 4096,
                 config: SiamesePairConfig | None = None, filter_config: PairConfig | None = None,
                 augment: bool = True, seed: int = 0, fixed: bool = False, cache_bytes: int = 6 << 30):
        if samples_per_epoch <= 0:
            raise ValueError(f"samples_per_epoch must be positive, got {samples_per_epoch}")
        self.cfg = config or SiamesePairConfig()
        self.filter = filter_config or PairConfig()
        self.augment = augment
        self.seed, self.fixed, self.epoch = seed, fixed, 0
        self.samples_per_epoch = samples_per_epoch
        self.cache = FrameCache(cache_bytes)
        self.fill = torch.tensor(MEAN_FILL)
        self.sequences, self.valid, self.weights = usable_sequences(sequences, self.filter)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, index])
        cfg, aug = self.cfg, self.augment
        s = rng.choice(len(self.sequences), p=self.weights)
        seq, valid = self.sequences[s], self.valid[s]
        t = int(rng.choice(valid))
        t2 = int(rng.choice(valid[np.abs(valid - t) <= cfg.max_gap]))
        if aug and rng.random() < cfg.reverse:
            t, t2 = t2, t
        b1, b2 = seq.boxes[t], seq.boxes[t2]
        c1 = b1[:2] + b1[2:] / 2
        c2 = b2[:2] + b2[2:] / 2
        side = float(context_side(b1[2], b1[3]))
        search_side = 2 * side
        centre = c1.copy()
        if aug:
            centre = centre + rng.uniform(-cfg.shift, cfg.shift, 2) * side
            search_side *= float(np.exp(rng.uniform(-cfg.scale, cfg.scale)))
        f1, f2 = self.cache.get(s, seq, t), self.cache.get(s, seq, t2)
        key = crop_windows(f1, torch.tensor(np.array([c1]), dtype=torch.float32),
                           torch.tensor([[side, side]], dtype=torch.float32), cfg.key_size, self.fill)[0]
        search = crop_windows(f2, torch.tensor(np.array([centre]), dtype=torch.float32),
                              torch.tensor([[search_side, search_side]], dtype=torch.float32),
                              cfg.search_size, self.fill)[0]
        disp = torch.tensor((c2 - centre) * cfg.search_size / search_side, dtype=torch.float32)
        if aug:
            if rng.random() < cfg.flip:
                key, search = key.flip(-1), search.flip(-1)
                disp[0] = -disp[0]
            key, search = colour_jitter(key, search, cfg.gray, cfg.colour, rng)
        return {"key": key, "search": search, "disp": disp}
