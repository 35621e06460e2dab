"""``PatchNetTask``: trains a ``PatchNet`` with the paper's losses. The model stays a plain
``nn.Module`` (``task.model``) that knows nothing of Lightning."""
from __future__ import annotations

import lightning.pytorch as pl
import torch

from ..geometry import box_iou
from ..losses import patchnet_loss
from ..models.patchnet import PatchNet, decode

__all__ = ["PatchNetTask"]


class PatchNetTask(pl.LightningModule):
    """Args mirror ``PatchNet``'s (so a recipe names one model) plus the optimiser settings of the
    paper: Adam, lr 1e-3, weight decay 5e-4, no schedule (``lr_schedule="constant"``);
    ``"cosine"`` anneals the rate per epoch to ``lr / 100`` at the last epoch, for longer runs."""

    def __init__(self, patch_size: int = 8, patches_per_side: int = 8, response_size: int = 7,
                 fourier: bool = True, box_regression: bool = True, lr: float = 1e-3,
                 weight_decay: float = 5e-4, miss_iou: float = 0.7, lr_schedule: str = "constant",
                 input_mean: str = "dataset", patch_norm: str = "energy"):
        super().__init__()
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
        self.save_hyperparameters()
        self.model = PatchNet(patch_size=patch_size, patches_per_side=patches_per_side,
                              response_size=response_size, fourier=fourier, box_regression=box_regression,
                              input_mean=input_mean, patch_norm=patch_norm)

    def forward(self, template, search):
        return self.model(template, search)

    def _step(self, batch, stage: str):
        score, offsets = self.model(batch["template"], batch["search"])
        losses = patchnet_loss(score, offsets, batch["cell"], batch["offsets"], self.hparams.box_regression)
        bs = batch["template"].shape[0]
        for k, v in losses.items():
            self.log(f"{stage}/{k}", v, prog_bar=(k == "loss"), batch_size=bs, on_epoch=True, on_step=(stage == "train"))
        return losses, score, offsets

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")[0]["loss"]

    def validation_step(self, batch, batch_idx):
        losses, score, offsets = self._step(batch, "val")
        # miss rate of the decoded box against the ground truth (same criterion as the benchmark)
        sb = batch["search_box"]
        dec = decode(score, offsets, sb)
        cs = sb[:, 2:] / 8
        lo = sb[:, :2] - sb[:, 2:] / 2 + (batch["cell"] + batch["offsets"][:, :2]) * cs
        hi = sb[:, :2] + sb[:, 2:] / 2 + (batch["cell"] + batch["offsets"][:, 2:]) * cs
        gt = torch.cat([lo, hi - lo], 1)
        iou = box_iou(dec.boxes, gt)
        bs = score.shape[0]
        self.log("val/miss_rate", (iou < self.hparams.miss_iou).float().mean(), prog_bar=True, batch_size=bs)
        self.log("val/mean_iou", iou.float().mean(), batch_size=bs)
        self.log("val/centre_hit", (dec.cell == batch["cell"]).all(1).float().mean(), batch_size=bs)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.model.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if self.hparams.lr_schedule == "constant":
            return opt
        epochs = max(1, int(self.trainer.max_epochs or 1))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs - 1), eta_min=self.hparams.lr / 100)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_train_epoch_start(self) -> None:
        dl = self.trainer.train_dataloader
        ds = getattr(dl, "dataset", None)
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(self.current_epoch)
