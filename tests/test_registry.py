"""Registry, weights records, strict loading and checkpoint export."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from patchnet_zoo import hub, registry
from patchnet_zoo.registry import Weights, WeightsIntegrityError, create_model, list_models

ARCHS = ["gated_siamese", "patchnet", "patchnet_k4", "patchnet_k4_zero_mean", "patchnet_no_box_regression",
         "patchnet_no_fourier", "patchnet_patch_aggregation", "patchnet_zero_mean"]


@pytest.fixture
def empty_weights_dir(tmp_path, monkeypatch):
    """Point the registry at an empty weights folder, whatever is packaged."""
    d = tmp_path / "weights"
    d.mkdir()
    monkeypatch.setattr(registry, "WEIGHTS_DIR", d)
    monkeypatch.setattr(hub, "WEIGHTS_DIR", d)
    return d


def make_checkpoint(path, seed=0, **task_kwargs):
    """A real Lightning-style checkpoint of a PatchNetTask with non-default weights."""
    from patchnet_zoo.lightning.patchnet_task import PatchNetTask

    task = PatchNetTask(**task_kwargs)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in task.parameters():
            p.add_(torch.randn(p.shape, generator=g))
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}, path)
    return task


def test_package_import_is_light():
    code = ("import sys, patchnet_zoo; "
            "heavy = [m for m in ('torch', 'lightning', 'cv2') if m in sys.modules]; "
            "assert not heavy, heavy; "
            "assert patchnet_zoo.list_models('patchnet') == ['patchnet']; "
            "assert 'lightning' not in sys.modules and 'cv2' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_list_models_patterns(empty_weights_dir):
    assert list_models() == ARCHS
    assert list_models("patchnet") == ["patchnet"]
    assert list_models("*no_*") == ["patchnet_no_box_regression", "patchnet_no_fourier"]
    assert list_models("resnet*") == []
    assert list_models(pretrained=True) == []


def test_list_models_pretrained_lists_records(tmp_path, empty_weights_dir):
    make_checkpoint(tmp_path / "a.ckpt")
    hub.export_checkpoint(tmp_path / "a.ckpt", "patchnet.mine", recipe="recipes/patchnet.yaml", data="test")
    assert list_models(pretrained=True) == ["patchnet.mine"]
    assert list_models("*.mine", pretrained=True) == ["patchnet.mine"]
    assert list_models("patchnet_no*", pretrained=True) == []
    assert list_models() == ARCHS  # architectures are unchanged


@pytest.mark.parametrize("bad", ["resnet50", "patchnet.nope", "patchnet_no_fourier.", "Patchnet"])
def test_unknown_name_lists_valid_names(bad, empty_weights_dir):
    with pytest.raises(ValueError) as e:
        create_model(bad)
    msg = str(e.value)
    assert repr(bad) in msg
    for arch in ARCHS:
        assert arch in msg
    assert "patchnet.shared_train" in msg


def test_arch_configs_and_overrides():
    agg = create_model("patchnet_patch_aggregation")
    assert (agg.fourier, agg.box_regression, agg.offset_convs) == (False, False, None)
    assert create_model("patchnet_no_fourier").fourier is False
    assert create_model("patchnet_no_box_regression").offset_convs is None
    full = create_model("patchnet")
    assert full.fourier and full.box_regression and full.offset_convs is not None
    assert create_model("patchnet", response_size=5).geometry.response_size == 5
    assert create_model("patchnet.shared_train").geometry.response_size == 7  # tag without weights: untrained


def test_strict_load_rejects_extra_missing_and_misshaped_keys(tmp_path):
    model = create_model("patchnet")
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    good = tmp_path / "good.safetensors"
    save_file(sd, str(good))
    create_model("patchnet", weights_path=good)  # loads

    extra = tmp_path / "extra.safetensors"
    save_file({**sd, "head.weight": torch.zeros(3)}, str(extra))
    with pytest.raises(ValueError, match=r"unexpected keys \['head.weight'\]"):
        create_model("patchnet", weights_path=extra)

    dropped = sorted(sd)[0]
    missing = tmp_path / "missing.safetensors"
    save_file({k: v for k, v in sd.items() if k != dropped}, str(missing))
    with pytest.raises(ValueError, match="missing keys") as e:
        create_model("patchnet", weights_path=missing)
    assert dropped in str(e.value)

    shaped = tmp_path / "shape.safetensors"
    save_file({**sd, "pixel_mean": torch.zeros(1, 4, 1, 1)}, str(shaped))
    with pytest.raises(ValueError, match="shape mismatch"):
        create_model("patchnet", weights_path=shaped)

    # an ablation's weights do not silently load into the full model (its offset convs are absent)
    with pytest.raises(ValueError, match="missing keys"):
        create_model("patchnet", weights_path=_saved(create_model("patchnet_patch_aggregation"), tmp_path / "agg.st"))

    with pytest.raises(FileNotFoundError):
        create_model("patchnet", weights_path=tmp_path / "absent.safetensors")


def _saved(model, path):
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_pretrained_without_record_says_what_was_looked_for(empty_weights_dir):
    with pytest.raises(FileNotFoundError) as e:
        create_model("patchnet_no_fourier", pretrained=True)
    msg = str(e.value)
    assert str(empty_weights_dir / "patchnet_no_fourier.shared_train.json") in msg
    assert "patchnet_no_fourier.shared_train.safetensors" in msg
    assert "offline" in msg and "local path" in msg


def test_export_round_trip_is_bit_exact(tmp_path, empty_weights_dir):
    task = make_checkpoint(tmp_path / "run.ckpt", seed=3, fourier=False)
    out = tmp_path / "out"
    metrics = {"val/miss_rate": 0.25}
    rec_path = hub.export_checkpoint(tmp_path / "run.ckpt", "patchnet_no_fourier.t1", recipe="recipes/x.yaml",
                                     data="../shared/data splits/train.txt", metrics=metrics,
                                     speed={"match_ms": 1.5}, out_dir=out)
    assert rec_path == out / "patchnet_no_fourier.t1.json"
    rec = Weights.from_json(rec_path)
    assert rec.name == "patchnet_no_fourier.t1" and rec.arch == "patchnet_no_fourier" and rec.tag == "t1"
    assert rec.file == "patchnet_no_fourier.t1.safetensors"
    assert rec.sha256 == registry.sha256_file(out / rec.file)
    assert rec.config["fourier"] is False and rec.config["patch_size"] == 8
    assert dict(rec.metrics) == metrics and rec.recipe == "recipes/x.yaml"
    assert rec.speed["match_ms"] == 1.5 and rec.speed["device"]  # the device is always named
    assert json.loads(rec_path.read_text())["sha256"] == rec.sha256

    # only the model's tensors are in the file, under their nn.Module names
    assert set(load_file(str(out / rec.file))) == set(task.model.state_dict())

    expected = task.model.state_dict()
    for model in (create_model("patchnet_no_fourier.t1", pretrained=True, weights_dir=out),
                  create_model("patchnet_no_fourier", weights_path=out / rec.file)):
        got = model.state_dict()
        assert set(got) == set(expected)
        for k in expected:
            assert torch.equal(got[k], expected[k]), k
    # the recorded config alone rebuilds the same architecture and pixel mean
    untrained = create_model("patchnet_no_fourier.t1", weights_dir=out)
    assert torch.equal(untrained.pixel_mean, expected["pixel_mean"]) and untrained.fourier is False
    assert list(rec.config["pixel_mean"]) == [123.675, 116.28, 103.53]
    # and the perturbation really made it through (not the default init)
    fresh = create_model("patchnet_no_fourier").state_dict()
    assert any(not torch.equal(fresh[k], expected[k]) for k in expected)


def test_records_are_immutable(tmp_path):
    make_checkpoint(tmp_path / "a.ckpt")
    rec = Weights.from_json(hub.export_checkpoint(tmp_path / "a.ckpt", "patchnet.a", "r", "d", out_dir=tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.sha256 = "0" * 64
    with pytest.raises(TypeError):
        rec.config["fourier"] = False
    assert Weights.from_dict(rec.to_dict()) == rec


def test_sha256_mismatch_is_an_error(tmp_path, empty_weights_dir):
    make_checkpoint(tmp_path / "a.ckpt")
    hub.export_checkpoint(tmp_path / "a.ckpt", "patchnet.a", recipe="r", data="d")
    create_model("patchnet.a", pretrained=True)  # intact: loads
    f = empty_weights_dir / "patchnet.a.safetensors"
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x01  # one bit of one weight
    f.write_bytes(bytes(raw))
    with pytest.raises(WeightsIntegrityError, match="sha256"):
        create_model("patchnet.a", pretrained=True)
    with pytest.raises(WeightsIntegrityError):
        registry.load_state_dict_strict(create_model("patchnet"), f,
                                        expected_sha256=registry.get_weights("patchnet.a").sha256)
    # the same bytes load when no digest is asked for: the check, not the file format, refused them
    registry.load_state_dict_strict(create_model("patchnet"), f)


def test_export_rejects_a_checkpoint_of_another_arch(tmp_path):
    make_checkpoint(tmp_path / "nf.ckpt", fourier=False)
    with pytest.raises(ValueError, match="fourier"):
        hub.export_checkpoint(tmp_path / "nf.ckpt", "patchnet.x", "r", "d", out_dir=tmp_path)
    with pytest.raises(ValueError, match="arch.tag"):
        hub.export_checkpoint(tmp_path / "nf.ckpt", "patchnet_no_fourier", "r", "d", out_dir=tmp_path)
    assert not list(tmp_path.glob("*.json"))


def test_resolve_weights_order_and_offline_message(tmp_path, empty_weights_dir):
    make_checkpoint(tmp_path / "a.ckpt")
    rec = Weights.from_json(hub.export_checkpoint(tmp_path / "a.ckpt", "patchnet.a", "r", "d", out_dir=tmp_path / "x"))
    rec = dataclasses.replace(rec, hf_repo_id="someone/patchnet", hf_revision="0" * 40)
    # not packaged, no local path, offline: nothing downloaded, every place named
    with pytest.raises(FileNotFoundError) as e:
        hub.resolve_weights(rec)
    msg = str(e.value)
    assert str(empty_weights_dir / rec.file) in msg and "someone/patchnet" in msg and "offline" in msg
    # a local folder or file is used when nothing is packaged
    assert hub.resolve_weights(rec, local_path=tmp_path / "x") == tmp_path / "x" / rec.file
    assert hub.resolve_weights(rec, local_path=tmp_path / "x" / rec.file) == tmp_path / "x" / rec.file
    # the packaged file wins over the local one
    (empty_weights_dir / rec.file).write_bytes((tmp_path / "x" / rec.file).read_bytes())
    assert hub.resolve_weights(rec, local_path=tmp_path / "x") == empty_weights_dir / rec.file


def test_tune_cpu_allocator_is_idempotent():
    import platform

    from patchnet_zoo._runtime import set_threads, tune_cpu_allocator

    first = tune_cpu_allocator()
    assert tune_cpu_allocator() == first
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert first.get("trim_threshold") == 1 << 30 and first.get("mmap_threshold", 0) >= 32 << 20
    else:
        assert first == {}
    n = torch.get_num_threads()
    assert set_threads(None) == n and torch.get_num_threads() == n


def test_export_is_reproducible_byte_for_byte(tmp_path):
    # records are immutable: exporting one checkpoint twice must give the same file and sha256
    make_checkpoint(tmp_path / "run.ckpt", seed=5)
    shas = []
    for i in range(3):
        rec = hub.export_checkpoint(tmp_path / "run.ckpt", "patchnet.rep", recipe="r.yaml", data="d",
                                    out_dir=tmp_path / f"out{i}")
        shas.append(Weights.from_json(rec).sha256)
    assert len(set(shas)) == 1


def test_export_records_the_runs_last_validation_metrics(tmp_path):
    """Without --metrics-json, `patchnet-zoo export` records the last epoch's val/* metrics from the
    CSV log of the checkpoint's run (how `make weights` keeps them in every record)."""
    from patchnet_zoo.cli import main

    version = tmp_path / "logs" / "version_0"
    (version / "checkpoints").mkdir(parents=True)
    ckpt = version / "checkpoints" / "epoch=1.ckpt"
    make_checkpoint(ckpt)
    (version / "metrics.csv").write_text(
        "epoch,step,train/loss_epoch,train/loss_step,val/loss,val/miss_rate\n"
        "0,9,,4.1,,\n0,9,,,3.9,0.2\n0,9,4.05,,,\n1,19,,3.6,,\n1,19,,,3.51234,0.18\n1,19,3.7,,,\n")
    assert main(["export", str(ckpt), "--name", "patchnet.t2", "--recipe", "r.yaml", "--out-dir", str(tmp_path)]) == 0
    rec = Weights.from_json(tmp_path / "patchnet.t2.json")
    assert {k: v for k, v in rec.metrics.items() if k != "note"} == {
        "epoch": 1.0, "val/loss": 3.5123, "val/miss_rate": 0.18, "train/loss_epoch": 3.7}


def test_weights_path_takes_the_config_of_the_record_beside_it(tmp_path):
    """A setting that is not a tensor (input_mean) cannot be read from the safetensors file; the
    record export writes beside it carries it, and a file without one builds the arch's defaults."""
    import shutil

    make_checkpoint(tmp_path / "a.ckpt", input_mean="box")
    rec = Weights.from_json(hub.export_checkpoint(tmp_path / "a.ckpt", "patchnet.boxy", "r", "d", out_dir=tmp_path))
    assert rec.config["input_mean"] == "box"
    assert create_model("patchnet", weights_path=tmp_path / rec.file).input_mean == "box"
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(tmp_path / rec.file, lone / rec.file)
    assert create_model("patchnet", weights_path=lone / rec.file).input_mean == "dataset"
