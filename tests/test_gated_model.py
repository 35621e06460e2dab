"""GatedSiameseTracker: gate features, cascade, policies (real early exit), FLOP counts, shipped
weights and both training recipes."""
from __future__ import annotations

import math

import pytest
import torch

from patchnet_zoo.models.gate_features import gate_features, histogram_entropy, kurtosis, top_peaks
from patchnet_zoo.models.gated_siamese import (N_DEPTHS, GatedSiameseTracker, count_depth_macs,
                                               find_mobilenet_v2_weights, policy_macs)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GatedSiameseTracker(backbone_weights=None).eval()


# ----------------------------------------------------------------------------------- gate features
@pytest.mark.parametrize("name, sample, expected", [
    ("normal", lambda g, n: torch.randn(n, generator=g, dtype=torch.float64), 3.0),
    ("uniform", lambda g, n: torch.rand(n, generator=g, dtype=torch.float64), 1.8),
    ("laplace", lambda g, n: torch.distributions.Laplace(0.0, 1.0).sample((n,)).double(), 6.0),
    ("two-point", lambda g, n: (torch.rand(n, generator=g) < 0.5).double(), 1.0),
])
def test_kurtosis_is_the_standardised_fourth_moment(name, sample, expected):
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    x = sample(g, 400_000)
    assert kurtosis(x.unsqueeze(0)).item() == pytest.approx(expected, rel=0.03), name
    # invariant to shift and scale (the original mean^4 / var^2 is not)
    assert kurtosis((5 + 3 * x).unsqueeze(0)).item() == pytest.approx(kurtosis(x.unsqueeze(0)).item(), rel=1e-6)


def test_kurtosis_of_a_constant_is_zero_not_nan():
    assert kurtosis(torch.full((2, 50), 0.3)).tolist() == [0.0, 0.0]


def test_histogram_entropy_is_normalised():
    assert histogram_entropy(torch.full((1, 500), 0.42)).item() == pytest.approx(0.0, abs=1e-9)
    centres = (torch.arange(100, dtype=torch.float64) + 0.5) / 100  # one value per bin
    assert histogram_entropy(centres.repeat(3).unsqueeze(0)).item() == pytest.approx(1.0, abs=1e-9)
    two = torch.tensor([[0.05] * 10 + [0.95] * 10], dtype=torch.float64)
    assert histogram_entropy(two).item() == pytest.approx(math.log(2) / math.log(100), abs=1e-9)
    with pytest.raises(ValueError):
        histogram_entropy(two, bins=1)


def test_top_peaks_finds_local_maxima_and_their_centre_distances():
    m = torch.zeros(1, 9, 9)
    m[0, 4, 4] = 1.0  # centre
    m[0, 0, 8] = 0.6  # a corner: distance (4^2 + 4^2) / 4^2 = 2
    m[0, 4, 6] = 0.3  # two cells right of the centre: 4 / 16
    m[0, 4, 7] = 0.2  # next to it, not a local maximum
    vals, dist = top_peaks(m, 5)
    assert vals[0, :3].tolist() == pytest.approx([1.0, 0.6, 0.3])
    assert dist[0, :3].tolist() == pytest.approx([0.0, 2.0, 0.25])
    # the zero plateau counts as maxima too, but below the real peaks
    assert (vals[0, 3:] == 0).all()
    f = gate_features(m, depth=3)
    assert f.shape == (1, 13) and f[0, 2].item() == 3.0
    with pytest.raises(ValueError):
        gate_features(m[0], depth=1)


# ----------------------------------------------------------------------------------- cascade
def test_cascade_sums_to_one_and_follows_the_poster():
    g = torch.rand(64, N_DEPTHS - 1, generator=torch.Generator().manual_seed(0))
    p = GatedSiameseTracker.cascade(g)
    assert p.shape == (64, N_DEPTHS)
    assert torch.allclose(p.sum(1), torch.ones(64), atol=1e-6)
    assert (p >= 0).all()
    assert torch.allclose(p[:, 0], g[:, 0])
    assert torch.allclose(p[:, 2], (1 - p[:, 0] - p[:, 1]) * g[:, 2])


# ----------------------------------------------------------------------------------- policies
def _count_stage_calls(model):
    calls = [0] * N_DEPTHS
    hooks = [st.register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
             for i, st in enumerate(model.stages)]
    return calls, hooks


def _filters(model):
    torch.manual_seed(2)
    with torch.inference_mode():
        return model.embed_key(torch.rand(1, 3, model.key_size, model.key_size) * 255)


@pytest.mark.parametrize("bias, exit_depth", [(10.0, 1), (-10.0, N_DEPTHS)])
def test_hard_policy_really_skips_the_later_stages(model, bias, exit_depth):
    filters = _filters(model)
    search = torch.rand(1, 3, model.search_size, model.search_size) * 255
    saved = model.gate_bias.detach().clone()
    calls, hooks = _count_stage_calls(model)
    try:
        with torch.no_grad():
            model.gate_bias.fill_(bias)
        with torch.inference_mode():
            step = model.track(filters, search, "hard", threshold=0.25)
    finally:
        for h in hooks:
            h.remove()
        with torch.no_grad():
            model.gate_bias.copy_(saved)
    assert int(step.depth[0]) == exit_depth
    assert calls == [1] * exit_depth + [0] * (N_DEPTHS - exit_depth)
    assert torch.isnan(step.probs[0, exit_depth:]).all() and not torch.isnan(step.probs[0, :exit_depth]).any()


def test_fixed_soft_hard_shapes_and_costs(model):
    filters = _filters(model)
    search = torch.rand(1, 3, model.search_size, model.search_size) * 255
    G = model.grid
    with torch.inference_mode():
        for d in range(1, N_DEPTHS + 1):
            calls, hooks = _count_stage_calls(model)
            step = model.track(filters, search, "fixed", depth=d)
            for h in hooks:
                h.remove()
            assert step.logits.shape == (1, 1, G, G) and int(step.depth[0]) == d
            assert calls == [1] * d + [0] * (N_DEPTHS - d)
        soft = model.track(filters, search, "soft")
        assert soft.logits.shape == (1, 1, G, G) and soft.ran == N_DEPTHS
        assert soft.probs.sum().item() == pytest.approx(1.0, abs=1e-5)
        hard = model.track(filters, search, "hard")
        assert hard.logits.shape == (1, 1, G, G)
    with pytest.raises(ValueError):
        model.track(filters, search, "fixed")
    with pytest.raises(ValueError):
        model.track(filters, search, "greedy")
    with pytest.raises(ValueError):
        model.track(filters, torch.rand(2, 3, 256, 256), "hard")


def test_training_forward_shapes(model):
    with torch.no_grad():
        out = model(torch.rand(2, 3, 128, 128) * 255, torch.rand(2, 3, 256, 256) * 255)
    G = model.grid
    assert out.logits.shape == (2, N_DEPTHS, G, G) and out.maps.shape == (2, N_DEPTHS, G, G)
    assert out.features.shape == (2, N_DEPTHS, 13) and out.probs.shape == (2, N_DEPTHS)
    assert float(out.maps.min()) >= 0 and float(out.maps.max()) <= 1 + 1e-6
    t = model.gaussian_target(torch.tensor([[0.0, 0.0], [40.0, -20.0]]))
    assert torch.allclose(t.sum(1), torch.ones(2))
    # the target peaks where the displacement is, and displacement() reads it back
    disp, _ = model.displacement(torch.log(t.view(2, G, G)))
    assert disp.tolist() == [pytest.approx([0.0, 0.0], abs=0.5), pytest.approx([40.0, -20.0], abs=0.5)]


def test_bad_arguments():
    with pytest.raises(ValueError):
        GatedSiameseTracker(backbone="resnet50", backbone_weights=None)
    with pytest.raises(ValueError):
        GatedSiameseTracker(key_size=100, backbone_weights=None)
    with pytest.raises(ValueError):
        GatedSiameseTracker(gate_threshold=1.5, backbone_weights=None)
    with pytest.raises(FileNotFoundError):
        GatedSiameseTracker(backbone_weights="no/such/file.pth")


# ----------------------------------------------------------------------------------- FLOPs
def test_flop_table_matches_what_a_step_really_runs(model):
    """The per-depth table, summed the way the policies run, equals FlopCounterMode around the
    real step; the depths get clearly more expensive."""
    from torch.utils.flop_counter import FlopCounterMode

    counts = count_depth_macs(model)
    fixed = [policy_macs(counts, d, "fixed") for d in range(1, N_DEPTHS + 1)]
    assert all(b > a for a, b in zip(fixed, fixed[1:]))
    assert fixed[2] < 0.5 * fixed[4]  # exiting at depth 3 saves more than half
    filters = [f[:1] for f in _filters(model)]
    search = torch.rand(1, 3, model.search_size, model.search_size) * 255
    with torch.inference_mode():
        for d in (1, 3, 5):
            with FlopCounterMode(display=False) as fc:
                model.track(filters, search, "fixed", depth=d)
            assert fc.get_total_flops() // 2 == fixed[d - 1]
        with torch.no_grad():
            saved = model.gate_bias.detach().clone()
            model.gate_bias.fill_(-10.0)
        try:
            with FlopCounterMode(display=False) as fc:
                model.track(filters, search, "hard")
        finally:
            with torch.no_grad():
                model.gate_bias.copy_(saved)
        assert fc.get_total_flops() // 2 == policy_macs(counts, N_DEPTHS, "hard")


# ----------------------------------------------------------------------------------- shipped weights
def test_shipped_weights_load_strictly_and_have_trained_gates():
    from patchnet_zoo.registry import create_model, get_weights

    rec = get_weights("gated_siamese")
    assert rec.arch == "gated_siamese" and rec.recipe
    m = create_model("gated_siamese", pretrained=True)
    assert isinstance(m, GatedSiameseTracker)
    # trained: the gates and their feature standardisation are no longer at their initial values
    assert m.gate_weight.abs().sum() > 0 and not torch.allclose(m.feature_std, torch.ones_like(m.feature_std))
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    sd.pop("gate_bias")
    with pytest.raises(RuntimeError):
        GatedSiameseTracker(backbone_weights=None).load_state_dict(sd, strict=True)


# ----------------------------------------------------------------------------------- recipes
def _small_split(tmp_path, name, entries):
    p = tmp_path / f"{name}.txt"
    p.write_text("\n".join(entries) + "\n")
    return str(p)


def test_both_recipes_fast_dev_run(tmp_path, repo_root, data_root, monkeypatch):
    """Phase 1 then phase 2 from a phase-1 checkpoint, through the real CLI and data (two short
    sequences, to keep it quick)."""
    from patchnet_zoo.cli import main

    monkeypatch.chdir(repo_root)
    train = _small_split(tmp_path, "train", ["sot/S0601", "sot/car1"])
    val = _small_split(tmp_path, "val", ["sot/bag"])
    common = [f"--data.data_root={data_root}", f"--data.train_split={train}", f"--data.val_split={val}",
              "--data.batch_size=2", "--data.samples_per_epoch=4", "--data.val_samples=2",
              "--trainer.fast_dev_run=1", f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
              "--trainer.callbacks=null"]
    try:
        find_mobilenet_v2_weights()
        p1 = []
    except FileNotFoundError:  # the recipe's ImageNet start is optional here: a random backbone tests the same code
        p1 = ["--model.init_args.imagenet_weights=null"]
    assert main(["fit", "-c", "recipes/gated_phase1.yaml", *common, *p1]) == 0
    # phase 2 needs a phase-1 checkpoint: a task-style state dict of an untrained model
    ckpt = tmp_path / "phase1.ckpt"
    m = GatedSiameseTracker(backbone_weights=None)
    torch.save({"state_dict": {f"model.{k}": v for k, v in m.state_dict().items()}}, ckpt)
    assert main(["fit", "-c", "recipes/gated_phase2.yaml", *common, f"--model.init_args.init_checkpoint={ckpt}",
                 "--model.init_args.feature_fit_batches=1"]) == 0


def test_phase2_without_checkpoint_fails_clearly(tmp_path):
    from patchnet_zoo.lightning.gated_task import GatedTrackerTask

    with pytest.raises(ValueError, match="init_checkpoint"):
        GatedTrackerTask(phase=2)
    with pytest.raises(FileNotFoundError, match="phase-1"):
        GatedTrackerTask(phase=2, init_checkpoint=str(tmp_path / "missing.ckpt"))
