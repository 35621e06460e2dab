"""Every recipe trains for one step on the real data through ``patchnet-zoo fit``."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from patchnet_zoo import cli

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
OVERLAYS = sorted(p.name for p in RECIPES.glob("patchnet_*.yaml"))
EXPECTED = {  # (fourier, box_regression, patch size, input mean, patch norm) each recipe must produce
    "patchnet.yaml": (True, True, 8, "dataset", "energy"),
    "patchnet_box_centred.yaml": (True, True, 8, "box", "energy"),
    "patchnet_patch_aggregation.yaml": (False, False, 8, "dataset", "energy"),
    "patchnet_no_fourier.yaml": (False, True, 8, "dataset", "energy"),
    "patchnet_no_box_regression.yaml": (True, False, 8, "dataset", "energy"),
    "patchnet_k4.yaml": (True, True, 4, "dataset", "energy"),
    "patchnet_zero_mean.yaml": (True, True, 8, "dataset", "zero_mean"),
    "patchnet_k4_zero_mean.yaml": (True, True, 4, "dataset", "zero_mean"),
}


def test_every_recipe_is_covered():
    assert (RECIPES / "patchnet.yaml").is_file()
    assert set(["patchnet.yaml", *OVERLAYS]) == set(EXPECTED)


@pytest.mark.parametrize("overlay", [None, *OVERLAYS])
def test_recipe_fast_dev_run(overlay, data_root, tmp_path, monkeypatch):
    captured = {}
    real = cli.run_lightning

    def spy(argv):
        captured["cli"] = real(argv)
        return captured["cli"]

    monkeypatch.setattr(cli, "run_lightning", spy)
    configs = ["-c", str(RECIPES / "patchnet.yaml")] + (["-c", str(RECIPES / overlay)] if overlay else [])
    # the bare recipe uses the --data DIR shorthand, the overlays the LightningCLI spelling
    data = ["--data", str(data_root)] if overlay is None else [f"--data.data_root={data_root}"]
    rc = cli.main(["fit", *configs, "--trainer.fast_dev_run=true", "--data.samples_per_epoch", "8",
                   "--data.val_samples", "4", "--data.batch_size", "4", *data,
                   f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}",
                   "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"])
    assert rc == 0
    lcli = captured["cli"]
    trainer, task = lcli.trainer, lcli.model
    assert trainer.state.finished and trainer.global_step == 1
    assert Path(lcli.datamodule.root) == data_root
    g = task.model.geometry
    got = (task.model.fourier, task.model.box_regression, g.patch_size, task.model.input_mean, task.model.patch_norm)
    assert got == EXPECTED[overlay or "patchnet.yaml"]
    assert lcli.datamodule.geometry == g  # the crops fit the model
    assert (task.model.offset_convs is not None) == task.model.box_regression
    metrics = trainer.callback_metrics
    train_loss = metrics.get("train/loss_epoch", metrics.get("train/loss"))
    assert train_loss is not None, sorted(metrics)
    assert math.isfinite(float(train_loss)) and float(train_loss) > 0
    assert math.isfinite(float(metrics["val/loss"]))
    assert 0.0 <= float(metrics["val/miss_rate"]) <= 1.0
    # the optimiser really stepped
    assert trainer.optimizers and len(trainer.optimizers[0].state) > 0


def test_patchnet_task_learning_rate_schedules():
    """``constant`` is the paper's Adam without a schedule; ``cosine`` reaches lr / 100 at the last epoch."""
    import types

    import torch

    from patchnet_zoo.lightning.patchnet_task import PatchNetTask

    assert isinstance(PatchNetTask().configure_optimizers(), torch.optim.Adam)
    task = PatchNetTask(lr=1e-3, lr_schedule="cosine")
    task.trainer = types.SimpleNamespace(max_epochs=5)
    cfg = task.configure_optimizers()
    opt, sched = cfg["optimizer"], cfg["lr_scheduler"]["scheduler"]
    assert cfg["lr_scheduler"]["interval"] == "epoch"
    rates = []
    for _ in range(5):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-5)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ValueError):
        PatchNetTask(lr_schedule="step")
