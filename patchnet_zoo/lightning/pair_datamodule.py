"""Training pairs from any root in the shared-data layout (or a GOT-10k root) for ``PatchNetTask``."""
from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from torch.utils.data import DataLoader

from ..data.pairs import PairConfig, PairDataset
from ..data.readers import default_data_root, read_sequences
from ..models.patchnet import PatchNetGeometry

__all__ = ["PairDataModule", "SplitPairDataModule"]


class SplitPairDataModule(pl.LightningDataModule):
    """What every pair datamodule shares: the data root, and loaders over ``train_set`` / ``val_set``
    (built by the subclass's ``setup`` from ``data_root/splits``)."""

    train_set = val_set = None

    @property
    def root(self) -> Path:
        return Path(self.hparams.data_root) if self.hparams.data_root else default_data_root()

    def _loader(self, ds, shuffle: bool) -> DataLoader:
        h = self.hparams
        return DataLoader(ds, batch_size=h.batch_size, shuffle=shuffle, num_workers=h.num_workers,
                          persistent_workers=h.num_workers > 0, drop_last=shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True)

    def val_dataloader(self):
        return self._loader(self.val_set, False) if self.val_set is not None else []


class PairDataModule(SplitPairDataModule):
    """Args:
        data_root: data location (default: ``$PATCHNET_ZOO_DATA`` or ``../shared/data``).
        train_split / val_split: split files or names in ``data_root/splits``; ``val_split=None``
            skips validation.
        samples_per_epoch: random pairs per training epoch; ``val_samples``: fixed validation pairs.
        min_side / min_area_ratio / max_area_ratio: the frame filter (defaults: the paper's).
        one_based_boxes: the sequence folders' box files are 1-based (OTB-style); ours are 0-based.
    """

    def __init__(self, data_root: str | None = None, train_split: str = "train", val_split: str | None = "val",
                 samples_per_epoch: int = 8192, val_samples: int = 512, batch_size: int = 32,
                 num_workers: int = 0, max_gap: int = 11, augment: bool = True, seed: int = 0,
                 min_side: float = 20.0, min_area_ratio: float = 0.01, max_area_ratio: float = 0.5,
                 one_based_boxes: bool = False,
                 patch_size: int = 8, patches_per_side: int = 8, response_size: int = 7):
        super().__init__()
        self.save_hyperparameters()
        self.geometry = PatchNetGeometry(patch_size, patches_per_side, response_size)
        self.train_set = self.val_set = None

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        if self.train_set is None and stage in (None, "fit"):
            self.train_set = PairDataset(read_sequences(self.root, h.train_split, h.one_based_boxes), h.samples_per_epoch, self.geometry,
                                         self._pair_config(h.augment), seed=h.seed)
        if self.val_set is None and h.val_split and stage in (None, "fit", "validate"):
            self.val_set = PairDataset(read_sequences(self.root, h.val_split, h.one_based_boxes), h.val_samples, self.geometry,
                                       self._pair_config(False), seed=h.seed + 1, fixed=True)

    def _pair_config(self, augment: bool) -> PairConfig:
        h = self.hparams
        return PairConfig(max_gap=h.max_gap, augment=augment, min_side=h.min_side,
                          min_area_ratio=h.min_area_ratio, max_area_ratio=h.max_area_ratio)
