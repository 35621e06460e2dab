"""The demo: a real validation clip tracked with PatchNet alone; video, metrics and plot written."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from patchnet_zoo.data.readers import iter_video
from patchnet_zoo.demo import load_patchnet, run_demo, sequence_metrics
from patchnet_zoo.models.patchnet import PatchNet


def test_run_demo_writes_video_metrics_and_plot(data_root, tmp_path, capsys):
    out = tmp_path / "demo"
    result = run_demo(out, data_root=data_root, sequence="sot/Crossing", weights=PatchNet(), show_progress=False)
    video, plot, metrics_file = (Path(result[k]) for k in ("video", "plot", "metrics_file"))
    for path in (video, plot, metrics_file):
        assert path.is_file() and path.parent == out
    assert video.suffix in (".mp4", ".avi")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sequence"] == "Crossing" and metrics["frames"] == 120 == metrics["frames_evaluated"]
    for key in ("success_auc", "precision_20", "mean_iou", "mean_confidence"):
        assert 0.0 <= metrics[key] <= 1.0, key
    # a fresh PatchNet follows the pedestrian for a while: clearly better than nothing
    assert metrics["success_auc"] > 0.1 and metrics["precision_20"] > 0.2
    assert metrics["tracker_fps"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frames = list(iter_video(video))
    assert len(frames) == 120 and frames[0].shape == (240, 360, 3)
    printed = capsys.readouterr().out
    assert "Crossing" in printed and "success AUC" in printed


def test_demo_on_a_video_file(data_root, tmp_path):
    result = run_demo(tmp_path, data_root=data_root, sequence="videos/tld/pedestrian1.mpg", weights=PatchNet(),
                      max_frames=10, show_progress=False, verbose=False)
    assert result["frames"] == 10 and 0 <= result["success_auc"] <= 1
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "iou_confidence.png").is_file()


def test_demo_without_weights_says_what_to_do(monkeypatch, data_root, tmp_path):
    import patchnet_zoo.registry as registry

    def no_weights(name, pretrained=False, **kw):
        raise FileNotFoundError("no record")

    monkeypatch.setattr(registry, "create_model", no_weights)
    with pytest.raises(FileNotFoundError, match="pass a model"):
        run_demo(tmp_path, data_root=data_root)


def test_demo_missing_sequence(data_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_clip"):
        run_demo(tmp_path, data_root=data_root, sequence="sot/no_such_clip", weights=PatchNet())


def test_load_patchnet_from_files(tmp_path):
    model = PatchNet()
    with torch.no_grad():
        next(p for p in model.parameters()).add_(0.5)  # not the default values
    want = model.state_dict()

    def same(m):
        got = m.state_dict()
        return got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)

    model.save_pretrained(tmp_path / "folder")
    assert same(load_patchnet(tmp_path / "folder"))
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in want.items()}, str(tmp_path / "w.safetensors"))
    assert same(load_patchnet(tmp_path / "w.safetensors"))
    torch.save({"state_dict": {f"model.{k}": v for k, v in want.items()},
                "hyper_parameters": {"patch_size": 8, "lr": 1e-3}}, tmp_path / "task.ckpt")
    assert same(load_patchnet(tmp_path / "task.ckpt"))
    assert load_patchnet(model) is model
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_patchnet(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {"model.unexpected": torch.zeros(1)}}, tmp_path / "bad.ckpt")
    with pytest.raises(RuntimeError):  # strict loading: no silent half-loaded model
        load_patchnet(tmp_path / "bad.ckpt")


def test_sequence_metrics_definitions():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4, [0, 0, 10, 10]], float)
    pred = np.array([[50, 50, 5, 5], [0, 0, 10, 10], [0, 0, 1, 1], [30, 0, 10, 10]], float)
    m = sequence_metrics(pred, gt)
    assert m["frames_evaluated"] == 3  # the absent frame is left out
    np.testing.assert_allclose(m["iou"][[0, 1, 3]], [1.0, 1.0, 0.0])  # frame 0 takes the ground truth
    assert np.isnan(m["iou"][2])
    assert m["precision_20"] == pytest.approx(2 / 3) and m["mean_iou"] == pytest.approx(2 / 3)
    assert m["success_auc"] == pytest.approx((2 / 3 * 20 + 0) / 21 + 0 / 21)


def test_demo_default_runs_the_shipped_weights_on_surfer(data_root, tmp_path):
    # what `make demo` runs: the packaged PatchNet weights on the default val clip (first 80 frames)
    result = run_demo(tmp_path, data_root=data_root, max_frames=80, show_progress=False, verbose=False)
    assert result["sequence"] == "Surfer" and result["frames"] == 80
    assert result["success_auc"] > 0.5 and result["precision_20"] > 0.8
