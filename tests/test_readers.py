"""Readers: every layout of the shared data, and a GOT-10k-style root made here."""
import numpy as np
import pytest
from PIL import Image

from patchnet_zoo.data.pairs import PairConfig, PairDataset
from patchnet_zoo.data.readers import find_sequences, read_boxes, read_sequences


def test_splits_of_the_shared_data(data_root):
    train = read_sequences(data_root, "train")
    val = read_sequences(data_root, "val")
    names = {s.name for s in train}
    assert {"david", "panda", "car1", "Biker"} <= names  # video files and folders
    assert any(n.startswith("TUD-Campus/track") for n in names)  # MOT15: every track a sequence
    assert any(n.startswith("PETS09-S3-MF1/track") for n in names)
    assert len(val) == 9 and not names & {s.name for s in val}
    panda = next(s for s in train if s.name == "panda")
    assert len(panda) == 3000 and np.isnan(panda.boxes).any(1).sum() == 270
    f = panda.frame(0)
    assert f.shape == (233, 312, 3) and f.dtype == np.uint8


def test_mot_boxes_become_zero_based(data_root):
    seqs = read_sequences(data_root / "mot" / "TUD-Campus", None)
    track1 = next(s for s in seqs if s.name.endswith("track1"))
    raw = np.loadtxt(data_root / "mot" / "TUD-Campus" / "gt" / "gt.txt", delimiter=",")
    first = raw[(raw[:, 1] == 1)][0]
    np.testing.assert_allclose(track1.boxes[0], first[2:6] - [1, 1, 0, 0])


def _got10k_root(tmp_path, n_seq=3, n_frames=6):
    root = tmp_path / "got10k" / "train"
    rng = np.random.default_rng(0)
    names = []
    for k in range(n_seq):
        name = f"GOT-10k_Train_{k + 1:06d}"
        d = root / name
        d.mkdir(parents=True)
        lines = []
        for i in range(n_frames):
            Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(d / f"{i + 1:08d}.jpg")
            lines.append(f"{41 + 2 * i},{31 + i},40,30")  # 1-based, as the original code assumed
        (d / "groundtruth.txt").write_text("\n".join(lines) + "\n")
        (d / "absence.label").write_text("\n".join(["0"] * n_frames) + "\n")
        names.append(name)
    (root / "list.txt").write_text("\n".join(names) + "\n")
    return root


def test_a_got10k_root_reads_and_samples_pairs(tmp_path):
    root = _got10k_root(tmp_path)
    assert len(find_sequences(root)) == 3
    seqs = read_sequences(root, None, one_based=True)
    assert [s.name for s in seqs] == [f"GOT-10k_Train_{k:06d}" for k in (1, 2, 3)]
    np.testing.assert_allclose(seqs[0].boxes[0], [40, 30, 40, 30])
    ds = PairDataset(seqs, 4, config=PairConfig())
    x = ds[0]
    assert x["template"].shape == (3, 64, 64) and x["search"].shape == (3, 119, 119)


def test_box_file_separators(tmp_path):
    p = tmp_path / "gt.txt"
    p.write_text("1\t2\t3\t4\n5,6,7,8\n9 10 11 12\nnan,nan,nan,nan\n")
    b = read_boxes(p)
    assert b.shape == (4, 4) and np.isnan(b[3]).all() and b[1].tolist() == [5, 6, 7, 8]
    with pytest.raises(ValueError, match="x,y,w,h"):
        (tmp_path / "bad.txt").write_text("1,2\n")
        read_boxes(tmp_path / "bad.txt")


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="PATCHNET_ZOO_DATA"):
        read_sequences(tmp_path / "nowhere", "train")
    with pytest.raises(FileNotFoundError, match="split"):
        read_sequences(tmp_path, "nosuchsplit")
