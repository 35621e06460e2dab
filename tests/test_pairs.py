"""Training pairs on real video: fixed sizes, batches > 1, and targets that decode to the truth."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from patchnet_zoo.data.pairs import PairConfig, PairDataset, valid_frames
from patchnet_zoo.data.readers import read_sequences
from patchnet_zoo.geometry import box_iou
from patchnet_zoo.models.patchnet import decode


@pytest.fixture(scope="module")
def seqs(data_root):
    return [s for s in read_sequences(data_root, "train") if s.name in ("car1", "pedestrian1")]


def test_pairs_batch_and_targets_decode_to_ground_truth(seqs):
    ds = PairDataset(seqs, 24, config=PairConfig(augment=False, min_side=8, min_area_ratio=0.0005), seed=3)
    batch = next(iter(DataLoader(ds, batch_size=8)))
    assert batch["template"].shape == (8, 3, 64, 64) and batch["search"].shape == (8, 3, 119, 119)
    assert batch["cell"].abs().max() <= 3
    # a perfect response (peak at the target cell, offsets = targets) decodes to the true box
    score = torch.zeros(8, 1, 7, 7)
    score[torch.arange(8), 0, batch["cell"][:, 1] + 3, batch["cell"][:, 0] + 3] = 1
    off = batch["offsets"].view(8, 4, 1, 1).expand(8, 4, 7, 7)
    boxes = decode(score, off, batch["search_box"]).boxes
    # rebuild the ground truth from the dataset's own sampling
    for i in range(8):
        rng = ds._rng(i)
        s = rng.choice(len(ds.sequences), p=ds.weights)
        seq, valid = ds.sequences[s], ds.valid[s]
        t = int(rng.choice(valid))
        t2 = int(rng.choice(valid[np.abs(valid - t) <= ds.cfg.max_gap]))
        assert box_iou(boxes[i], seq.boxes[t2]).item() > 0.999


def test_augmented_pairs_are_valid(seqs):
    ds = PairDataset(seqs, 16, config=PairConfig(min_side=8, min_area_ratio=0.0005), seed=1)
    for i in range(16):
        x = ds[i]
        assert torch.isfinite(x["template"]).all() and torch.isfinite(x["search"]).all()
        assert x["template"].min() >= 0 and x["template"].max() <= 255
        assert x["cell"].abs().max() <= 3


def test_paper_filter(seqs):
    cfg = PairConfig()
    car1 = [s for s in seqs if s.name == "car1"][0]
    idx = valid_frames(car1, cfg, (480, 640))
    b = car1.boxes[idx]
    assert len(idx) > 0 and (b[:, 2:].min() >= 20) and ((b[:, 2] * b[:, 3] / (480 * 640)) >= 0.01).all()
