"""``GatedTrackerTask``: trains a ``GatedSiameseTracker`` in the poster's two phases. The model stays
a plain ``nn.Module`` (``task.model``) that knows nothing of Lightning.

* Phase 1 trains the backbone (stages after ``freeze_stages``) and the per-depth temperatures on
  the sum over depths of the Gaussian-target softmax cross-entropy. BatchNorm statistics stay
  frozen (ImageNet's): batches of 16 crop pairs are too small and too correlated to re-estimate them.
* Phase 2 starts from the phase-1 checkpoint, freezes everything but the gates, first fits the
  gate-feature standardisation on ``feature_fit_batches`` training batches, then trains the gates
  on ``sum_d p_d CE_d + lambda * sum_d cost_d p_d`` where ``cost_d`` is the measured MACs of
  stopping at depth d under the hard policy, relative to the fixed depth-5 cost (or the given
  ``depth_costs``).
"""
from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn as nn

from ..models.gated_siamese import N_DEPTHS, GatedSiameseTracker, count_depth_macs, policy_macs

__all__ = ["GatedTrackerTask", "gaussian_ce"]


def gaussian_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy of (B, ..., G, G) logits against (B, G*G) target distributions,
    per sample and per leading map: returns (B, ...)."""
    flat = logits.flatten(-2)
    logp = torch.log_softmax(flat, -1)
    t = target.view(target.shape[0], *([1] * (flat.ndim - 2)), target.shape[-1])
    return -(t * logp).sum(-1)


class GatedTrackerTask(pl.LightningModule):
    """Args:
        phase: 1 (backbone) or 2 (gates).
        imagenet_weights: the backbone's starting weights (``GatedSiameseTracker``'s ``backbone_weights``:
            ``"imagenet"``, a path, or ``None``); phase 2 ignores it (it starts from phase 1).
        key_size / search_size / dilate_last / gate_threshold: ``GatedSiameseTracker``'s.
        init_checkpoint: phase 2: the phase-1 Lightning checkpoint to start from (required).
        freeze_stages: phase 1: the first N backbone stages keep their ImageNet weights.
        lr / temperature_lr / weight_decay: Adam settings (phase 1: backbone / temperatures;
            phase 2: ``lr`` for the gates).
        lam: weight of the compute term (phase 2).
        depth_costs: relative cost of exiting at each depth; ``None`` = measured MACs.
        target_variance: Gaussian target variance in search-crop px^2 (20, as the poster's code).
        feature_fit_batches: phase 2: batches used to fit the gate-feature standardisation.
    """

    def __init__(self, phase: int = 1, imagenet_weights: str | None = "imagenet", key_size: int = 128,
                 search_size: int = 256, dilate_last: bool = True, gate_threshold: float = 0.25,
                 init_checkpoint: str | None = None, freeze_stages: int = 2, lr: float = 1e-4,
                 temperature_lr: float = 1e-2, weight_decay: float = 1e-5, lam: float = 1.0,
                 depth_costs: list[float] | None = None, target_variance: float = 20.0,
                 feature_fit_batches: int = 16):
        super().__init__()
        if phase not in (1, 2):
            raise ValueError(f"phase must be 1 or 2, got {phase}")
        if phase == 2 and not init_checkpoint:
            raise ValueError("phase 2 needs init_checkpoint (the phase-1 checkpoint)")
        if not 0 <= freeze_stages <= N_DEPTHS:
            raise ValueError(f"freeze_stages must be in 0..{N_DEPTHS}, got {freeze_stages}")
        if depth_costs is not None and len(depth_costs) != N_DEPTHS:
            raise ValueError(f"depth_costs needs {N_DEPTHS} values, got {len(depth_costs)}")
        self.save_hyperparameters()
        self.model = GatedSiameseTracker(backbone_weights=None if phase == 2 else imagenet_weights,
                                         key_size=key_size, search_size=search_size, dilate_last=dilate_last,
                                         gate_threshold=gate_threshold)
        if phase == 2:
            self._load_phase1(init_checkpoint)
        if depth_costs is None:
            counts = count_depth_macs(self.model)
            hard = [policy_macs(counts, d, "hard") for d in range(1, N_DEPTHS + 1)]
            full = policy_macs(counts, N_DEPTHS, "fixed")
            depth_costs = [h / full for h in hard]
        self.register_buffer("depth_costs", torch.tensor(depth_costs, dtype=torch.float32), persistent=False)
        self._set_trainable()

    # ------------------------------------------------------------------------------ setup
    def _load_phase1(self, path: str) -> None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"phase-1 checkpoint {p} not found; run recipes/gated_phase1.yaml first")
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
        state = {k[len("model."):]: v for k, v in ckpt.get("state_dict", ckpt).items() if k.startswith("model.")}
        if not state:
            raise ValueError(f"{p} holds no GatedTrackerTask weights (no 'model.*' keys)")
        self.model.load_state_dict(state, strict=True)

    def _set_trainable(self) -> None:
        m, h = self.model, self.hparams
        for p in m.parameters():
            p.requires_grad_(False)
        if h.phase == 1:
            for i, st in enumerate(m.stages):
                for p in st.parameters():
                    p.requires_grad_(i >= h.freeze_stages)
            m.log_scale.requires_grad_(True)
        else:
            m.gate_weight.requires_grad_(True)
            m.gate_bias.requires_grad_(True)

    def _freeze_norms(self) -> None:
        for mod in self.model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.eval()
        if self.hparams.phase == 2 or self.hparams.freeze_stages > 0:
            for i in range(self.hparams.freeze_stages if self.hparams.phase == 1 else N_DEPTHS):
                self.model.stages[i].eval()

    def on_train_epoch_start(self) -> None:
        self._freeze_norms()
        ds = getattr(self.trainer.train_dataloader, "dataset", None)
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(self.current_epoch)

    def on_fit_start(self) -> None:
        from .._runtime import tune_cpu_allocator

        tune_cpu_allocator()
        if self.hparams.phase == 2:
            self._fit_feature_standardisation()

    @torch.no_grad()
    def _fit_feature_standardisation(self) -> None:
        """Mean / std of each gate's 13 features over training maps, so the linear gates start
        on well-scaled inputs (kurtosis runs into the hundreds, entropies stay below 1)."""
        from tqdm.auto import tqdm

        dm = self.trainer.datamodule
        loader = dm.train_dataloader() if dm is not None else self.trainer.train_dataloader
        feats = []
        self.model.eval()
        for i, batch in enumerate(tqdm(loader, total=self.hparams.feature_fit_batches,
                                       desc="gate feature statistics", leave=False)):
            if i >= self.hparams.feature_fit_batches:
                break
            out = self.model(batch["key"].to(self.device), batch["search"].to(self.device))
            feats.append(out.features[:, : N_DEPTHS - 1])
        f = torch.cat(feats)
        self.model.feature_mean.copy_(f.mean(0))
        self.model.feature_std.copy_(f.std(0).clamp(min=1e-3))
        self.model.train()

    # ------------------------------------------------------------------------------ steps
    def forward(self, key, search):
        return self.model(key, search)

    def _step(self, batch, stage: str):
        out = self.model(batch["key"], batch["search"])
        target = self.model.gaussian_target(batch["disp"], self.hparams.target_variance)
        ce = gaussian_ce(out.logits, target)  # (B, 5)
        bs = ce.shape[0]
        if self.hparams.phase == 1:
            loss = ce.mean(0).sum()
        else:
            pred = (out.probs * ce.detach()).sum(1).mean()
            comp = (out.probs * self.depth_costs).sum(1).mean()
            loss = pred + self.hparams.lam * comp
            self.log(f"{stage}/pred_loss", pred, batch_size=bs, on_epoch=True, on_step=False)
            self.log(f"{stage}/expected_cost", comp, prog_bar=True, batch_size=bs, on_epoch=True, on_step=False)
            for d in range(N_DEPTHS):
                self.log(f"{stage}/p{d + 1}", out.probs[:, d].mean(), batch_size=bs, on_epoch=True, on_step=False)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=bs, on_epoch=True, on_step=(stage == "train"))
        if stage == "val":
            disp, _ = self.model.displacement(out.logits.flatten(0, 1))
            err = (disp.view(bs, N_DEPTHS, 2) - batch["disp"].unsqueeze(1)).norm(dim=-1)  # (B, 5) px
            for d in range(N_DEPTHS):
                self.log(f"val/ce{d + 1}", ce[:, d].mean(), batch_size=bs)
                self.log(f"val/centre_err{d + 1}", err[:, d].mean(), batch_size=bs)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        h, m = self.hparams, self.model
        if h.phase == 1:
            backbone = [p for p in m.stages.parameters() if p.requires_grad]
            groups = [{"params": backbone, "lr": h.lr, "weight_decay": h.weight_decay},
                      {"params": [m.log_scale], "lr": h.temperature_lr, "weight_decay": 0.0}]
        else:
            groups = [{"params": [m.gate_weight, m.gate_bias], "lr": h.lr, "weight_decay": 0.0}]
        opt = torch.optim.Adam(groups)
        epochs = max(1, int(self.trainer.max_epochs or 1)) if self._trainer is not None else 1
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=h.lr * 0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
