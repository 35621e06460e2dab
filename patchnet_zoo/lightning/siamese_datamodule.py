"""Key/search crop pairs (``SiamesePairDataset``) from any root in the shared-data layout, for
``GatedTrackerTask``."""
from __future__ import annotations

from ..data.pairs import PairConfig
from ..data.readers import read_sequences
from ..data.siamese_pairs import SiamesePairConfig, SiamesePairDataset
from .pair_datamodule import SplitPairDataModule

__all__ = ["SiamesePairDataModule"]


class SiamesePairDataModule(SplitPairDataModule):
    """Args:
        data_root: data location (default: ``$PATCHNET_ZOO_DATA`` or ``../shared/data``).
        train_split / val_split: split files or names in ``data_root/splits``; ``val_split=None``
            skips validation.
        samples_per_epoch: random pairs per training epoch; ``val_samples``: fixed validation pairs.
        key_size / search_size: crop sides (must match the model's).
        max_gap: largest frame gap of a pair.
        min_side / min_area_ratio / max_area_ratio: the frame filter shared with PatchNet's pairs.
    """

    def __init__(self, data_root: str | None = None, train_split: str = "train", val_split: str | None = "val",
                 samples_per_epoch: int = 8192, val_samples: int = 256, batch_size: int = 16,
                 num_workers: int = 0, key_size: int = 128, search_size: int = 256, max_gap: int = 10,
                 augment: bool = True, seed: int = 0, min_side: float = 8.0, min_area_ratio: float = 0.0005,
                 max_area_ratio: float = 0.5):
        super().__init__()
        self.save_hyperparameters()
        self.train_set = self.val_set = None

    def _configs(self) -> tuple[SiamesePairConfig, PairConfig]:
        h = self.hparams
        return (SiamesePairConfig(key_size=h.key_size, search_size=h.search_size, max_gap=h.max_gap),
                PairConfig(min_side=h.min_side, min_area_ratio=h.min_area_ratio, max_area_ratio=h.max_area_ratio))

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        cfg, filt = self._configs()
        if self.train_set is None and stage in (None, "fit"):
            self.train_set = SiamesePairDataset(read_sequences(self.root, h.train_split), h.samples_per_epoch,
                                                cfg, filt, augment=h.augment, seed=h.seed)
        if self.val_set is None and h.val_split and stage in (None, "fit", "validate"):
            self.val_set = SiamesePairDataset(read_sequences(self.root, h.val_split), h.val_samples, cfg, filt,
                                              augment=False, seed=h.seed + 1, fixed=True)
