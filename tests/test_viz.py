"""viz: boxes on frames (key frame vs propagated styled apart), video writing, plots."""
from __future__ import annotations

import numpy as np
import pytest

from patchnet_zoo.data.readers import iter_video, read_folder_sequence
from patchnet_zoo.viz import (
    GT_STYLE, KEY_STYLE, PROPAGATED_STYLE, VideoWriter, draw_boxes, draw_text, plot_curves, plot_iou_over_time,
    plot_speed_accuracy, write_video,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def seq(data_root):
    return read_folder_sequence(data_root / "sot" / "Crossing")


def _edge_colours(img, y, x0, x1):
    return [tuple(int(c) for c in img[y, x]) for x in range(x0, x1)]


# ----------------------------------------------------------------------------------------------- draw
def test_key_and_propagated_boxes_are_styled_apart():
    black = np.zeros((100, 120, 3), np.uint8)
    box = [20, 30, 60, 40]  # top edge at y = 30, columns 20..79
    key = draw_boxes(black, box, key_frame=True)
    prop = draw_boxes(black, box, key_frame=False)
    assert black.max() == 0  # the input is not modified
    key_top = _edge_colours(key, 30, 25, 75)
    prop_top = _edge_colours(prop, 30, 25, 75)
    # key frame: one solid line in the key colour
    assert all(c == KEY_STYLE.color for c in key_top)
    # propagated: dashed (gaps along the edge) in another colour, thinner
    assert PROPAGATED_STYLE.color in prop_top and (0, 0, 0) in prop_top
    assert KEY_STYLE.color not in prop_top
    assert PROPAGATED_STYLE.thickness < KEY_STYLE.thickness
    assert (key.sum(2) > 0).sum() > (prop.sum(2) > 0).sum()


def test_per_box_key_flags_labels_and_custom_style():
    img = np.zeros((80, 200, 3), np.uint8)
    out = draw_boxes(img, [[10, 30, 40, 30], [110, 30, 40, 30]], labels=["car 0.9", None], key_frame=[True, False])
    assert tuple(out[30, 30]) == KEY_STYLE.color
    assert (out[:26, 10:60].sum(2) > 0).any()  # the label above the first box
    assert (out[:27, 110:160].sum(2) == 0).all()  # no label for the second
    gt = draw_boxes(img, [10, 30, 40, 30], style=GT_STYLE, color=(255, 0, 255))
    assert tuple(gt[30, 30]) == (255, 0, 255)
    with pytest.raises(ValueError):
        draw_boxes(img, [[1, 1, 5, 5]] * 2, key_frame=[True])
    with pytest.raises(ValueError):
        draw_boxes(img, [[1, 1, 5, 5]] * 2, labels=["a"])


def test_draw_skips_absent_and_survives_odd_boxes():
    img = np.zeros((60, 80, 3), np.uint8)
    assert draw_boxes(img, [np.nan] * 4).max() == 0  # absent target: nothing drawn
    assert draw_boxes(img, np.zeros((0, 4))).max() == 0
    assert draw_boxes(img, [10, 10, 0, 5]).max() == 0  # no area
    for box in ([-30, -20, 50, 40], [70, 50, 100, 100], [1e9, -1e9, 5, 5], [-5, -5, 200, 200]):
        for key in (True, False):
            out = draw_boxes(img, box, key_frame=key, labels=["x"])
            assert out.shape == img.shape and out.dtype == np.uint8


@pytest.mark.parametrize("make", [
    lambda f: f.mean(2).astype(np.uint8),
    lambda f: f[..., :1],
    lambda f: np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]),
    lambda f: f.astype(np.float32) / 255,
    lambda f: f[::2, ::-1],
])
def test_draw_accepts_every_frame_format(seq, make):
    frame = make(seq.frame(0))
    out = draw_boxes(frame, seq.boxes[0] / (2 if frame.shape[0] == 120 else 1), key_frame=True)
    assert out.shape == (*frame.shape[:2], 3) and out.dtype == np.uint8 and out.flags.c_contiguous


def test_draw_text_stays_inside():
    img = np.zeros((40, 60, 3), np.uint8)
    draw_text(img, "a very long text that does not fit", (50, 35))
    assert img.max() > 0


# ---------------------------------------------------------------------------------------------- video
def _read_back(path):
    return list(iter_video(path))


def test_video_writer_mp4_round_trip_keeps_colours(seq, tmp_path):
    frames = [seq.frame(i) for i in range(8)]
    red = np.zeros_like(frames[0])
    red[..., 0] = 255
    with VideoWriter(tmp_path / "clip.mp4", fps=10) as w:
        for f in frames:
            w.write(draw_boxes(f, seq.boxes[0], key_frame=True))
        w.write(red)
    assert w.path.suffix == ".mp4" and w.path.is_file() and w.frames_written == 9
    back = _read_back(w.path)  # iter_video returns RGB
    assert len(back) == 9 and back[0].shape == frames[0].shape
    r, g, b = back[-1].reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60  # RGB in, RGB out: no channel swap at the boundary
    assert np.abs(back[3].astype(float) - frames[3]).mean() < 12  # it is the real frame


def test_video_writer_falls_back_to_avi(tmp_path):
    with pytest.warns(UserWarning, match="Motion-JPEG"):
        with VideoWriter(tmp_path / "clip.mp4", fps=5, fourcc="XXXX") as w:
            for i in range(3):
                w.write(np.full((48, 64, 3), 60 * i, np.uint8))
    assert w.path == tmp_path / "clip.avi"
    assert len(_read_back(w.path)) == 3


def test_video_writer_odd_and_changing_sizes(tmp_path):
    frames = [np.full((45, 63, 3), 100, np.uint8), np.full((45, 63), 150, np.uint8),
              np.full((90, 126, 3), 200, np.uint8), np.zeros((45, 63, 4), np.float32)]
    path = write_video(tmp_path / "odd", frames, fps=0)  # no suffix -> .mp4; fps 0 -> 25
    assert path.suffix == ".mp4"
    back = _read_back(path)
    assert len(back) == len(frames)  # no frame silently dropped
    assert back[0].shape == (46, 64, 3)  # padded to even sizes
    assert abs(back[2].mean() - 200) < 10


def test_video_writer_errors(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [])
    w = VideoWriter(tmp_path / "x.mp4")
    w.close()
    with pytest.raises(RuntimeError, match="closed"):
        w.write(np.zeros((8, 8, 3), np.uint8))


# ---------------------------------------------------------------------------------------------- plots
def test_plot_iou_over_time(tmp_path):
    rng = np.random.default_rng(0)
    ious = rng.uniform(0, 1, 50)
    ious[10:14] = np.nan  # absent target: a gap
    out = plot_iou_over_time(ious, rng.uniform(0, 1, 50), tmp_path / "sub" / "iou.png", key_frames=[0, 10, 20],
                             confidence_threshold=0.8, title="test")
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 5000
    assert plot_iou_over_time(ious, None, tmp_path / "iou_only.png").is_file()
    with pytest.raises(ValueError):
        plot_iou_over_time(ious, np.ones(3), tmp_path / "bad.png")
    with pytest.raises(ValueError):
        plot_iou_over_time([], None, tmp_path / "empty.png")


def test_speed_accuracy_plot(tmp_path):
    # OTB success / precision curves and plots are tested with eval.otb (tests/test_otb_metrics.py)
    assert plot_speed_accuracy({"base": (12.0, 0.6), "skip 4": (40.0, 0.55)}, tmp_path / "sa.png").is_file()
    with pytest.raises(ValueError):
        plot_speed_accuracy({}, tmp_path / "none.png")


def test_curves_plot(tmp_path):
    curves = {"a": ([1.0, 2.0, 3.0], [0.5, 0.4, 0.3]), "floor": ([1.0, 2.0, 3.0], [0.6, 0.2, 0.1])}
    out = plot_curves(curves, tmp_path / "c.png", xlabel="x", ylabel="y", dashed=("floor",), levels={"level": 0.45})
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 5000
    with pytest.raises(ValueError, match="3 x values but 2 y values"):
        plot_curves({"a": ([1, 2, 3], [1, 2])}, tmp_path / "bad.png")
    with pytest.raises(ValueError):
        plot_curves({}, tmp_path / "none.png")


def test_viz_import_is_light():
    import subprocess
    import sys

    code = "import sys, patchnet_zoo.viz; print(int('cv2' in sys.modules or 'matplotlib' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
