"""Tracker adapters: every convention around tiny fake trackers, box conversions, and OpenCV's real
trackers (KCF*, CSRT, MOSSE, NanoTrack v2) on a few real frames of the val split."""
from __future__ import annotations

import numpy as np
import pytest

from patchnet_zoo.accel import (
    CallableAdapter, Got10kAdapter, OpenCVAdapter, PysotAdapter, PytrackingAdapter, SingleObjectTracker,
    adapt_tracker, convert_box,
)
from patchnet_zoo.data.readers import read_folder_sequence
from patchnet_zoo.geometry import box_iou
from patchnet_zoo.trackers.opencv_trackers import (
    create_opencv_tracker, default_weights_root, find_nanotrack_weights, make_base_tracker,
)

SHIFT = np.array([3.0, -2.0, 0.0, 0.0])  # what every fake tracker moves the box by, per update


def _iou(a, b) -> float:
    return float(box_iou(np.asarray(a), np.asarray(b))[0])


def _red_frame(h=60, w=80):
    f = np.zeros((h, w, 3), np.uint8)
    f[..., 0] = 255  # pure red in RGB
    return f


# ------------------------------------------------------------------------------- fake trackers
class FakeGot10k:
    """got10k: init(image, box) / update(image) -> box; moves the box by SHIFT per update.
    Has a ``track`` method too, like got10k's Tracker base class."""

    def __init__(self):
        self.images = []

    def init(self, image, box):
        self.images.append(image)
        self.box = np.asarray(box, dtype=np.float64)

    def update(self, image):
        self.images.append(image)
        self.box = self.box + SHIFT
        return list(self.box)

    def track(self, img_files, box):  # the got10k toolkit's whole-sequence helper
        raise AssertionError("never called by the adapter")


class FakePysot:
    def __init__(self):
        self.images = []

    def init(self, img, bbox):
        self.images.append(img)
        self.bbox = np.asarray(bbox, dtype=np.float64)

    def track(self, img):
        self.images.append(img)
        self.bbox = self.bbox + SHIFT
        return {"bbox": self.bbox.tolist(), "best_score": 0.7}


class FakePytracking:
    def __init__(self):
        self.images, self.infos = [], []

    def initialize(self, image, info):
        self.images.append(image)
        self.infos.append(info)
        self.state = np.asarray(info["init_bbox"], dtype=np.float64)
        return {}

    def track(self, image, info=None):
        self.images.append(image)
        self.state = self.state + SHIFT
        return {"target_bbox": self.state.tolist(), "score": 0.6}


def make_callable():
    state = {}

    def follow(image, box):
        if box is not None:
            state["box"] = np.asarray(box, dtype=np.float64)
            return None
        state["box"] = state["box"] + SHIFT
        return state["box"]

    return follow


class FakeCV:
    """An OpenCV-like tracker object reporting (ok, rect); ok goes False on the 2nd update."""

    def init(self, image, rect):
        assert all(isinstance(v, int) for v in rect), rect  # OpenCV wants an integer Rect
        self.rect = np.asarray(rect, dtype=np.float64)
        self.n = 0

    def update(self, image):
        self.n += 1
        self.rect = self.rect + SHIFT
        return self.n != 2, tuple(int(v) for v in self.rect)


# ----------------------------------------------------------------------------------- detection
@pytest.mark.parametrize("make, cls", [
    (FakeGot10k, Got10kAdapter),
    (FakePysot, PysotAdapter),
    (FakePytracking, PytrackingAdapter),
    (make_callable, CallableAdapter),
])
def test_adapt_tracker_detects_each_convention(make, cls):
    tracker = adapt_tracker(make())
    assert type(tracker) is cls
    assert isinstance(tracker, SingleObjectTracker)
    frame = _red_frame()
    box = np.array([10.5, 20.25, 30.0, 15.5])
    tracker.init(frame, box)
    for k in (1, 2, 3):
        out = tracker.update(frame)
        assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (4,)
        np.testing.assert_allclose(out, box + k * SHIFT)
    assert isinstance(tracker.name, str) and tracker.name


def test_adapt_tracker_detects_opencv_and_names():
    cv2 = pytest.importorskip("cv2")
    assert type(adapt_tracker(cv2.TrackerKCF_create())) is OpenCVAdapter
    assert type(adapt_tracker(cv2.legacy.TrackerMOSSE_create())) is OpenCVAdapter
    assert adapt_tracker("kcf").name == "kcf"
    existing = create_opencv_tracker("csrt")
    assert adapt_tracker(existing) is existing
    with pytest.raises(TypeError, match="already"):
        adapt_tracker(existing, name="x")


def test_adapt_tracker_rejects_what_it_cannot_fit():
    with pytest.raises(TypeError, match="cannot adapt"):
        adapt_tracker(42)
    with pytest.raises(ValueError, match="unknown base tracker"):
        adapt_tracker("siamrpn++")


def test_scores_are_passed_on():
    p = adapt_tracker(FakePysot())
    p.init(_red_frame(), [1, 2, 3, 4])
    p.update(_red_frame())
    assert p.score == pytest.approx(0.7)
    q = adapt_tracker(FakePytracking())
    q.init(_red_frame(), [1, 2, 3, 4])
    q.update(_red_frame())
    assert q.score == pytest.approx(0.6)


def test_pytracking_gets_an_info_dict():
    fake = FakePytracking()
    t = adapt_tracker(fake)
    t.init(_red_frame(), np.array([1.5, 2.0, 3.0, 4.0]))
    assert fake.infos == [{"init_bbox": [1.5, 2.0, 3.0, 4.0]}]
    assert all(isinstance(v, float) for v in fake.infos[0]["init_bbox"])


# ------------------------------------------------------------------------------ channel order
@pytest.mark.parametrize("make, expected", [
    (FakeGot10k, "rgb"), (FakePysot, "bgr"), (FakePytracking, "rgb"), (FakeCV, "bgr"),
])
def test_default_channel_order(make, expected):
    fake = make()
    t = OpenCVAdapter(fake) if make is FakeCV else adapt_tracker(fake)
    seen = []
    if make is FakeCV:
        orig_init = fake.init
        fake.init = lambda image, rect: (seen.append(image), orig_init(image, rect))
    t.init(_red_frame(), [10, 10, 20, 20])
    image = seen[0] if seen else fake.images[0]
    assert image.shape == (60, 80, 3) and image.dtype == np.uint8 and image.flags["C_CONTIGUOUS"]
    red = [255, 0, 0] if expected == "rgb" else [0, 0, 255]
    assert image[0, 0].tolist() == red


def test_channel_order_can_be_overridden():
    fake = FakePysot()
    t = adapt_tracker(fake, channel_order="rgb")
    t.init(_red_frame(), [10, 10, 20, 20])
    assert fake.images[0][0, 0].tolist() == [255, 0, 0]
    with pytest.raises(ValueError, match="channel_order"):
        adapt_tracker(FakePysot(), channel_order="hsv")


def test_frames_in_other_layouts_are_converted():
    torch = pytest.importorskip("torch")
    fake = FakeGot10k()
    t = adapt_tracker(fake)
    rgb = _red_frame()
    t.init(torch.from_numpy(rgb).permute(2, 0, 1), [10, 10, 20, 20])  # CxHxW tensor
    t.update(rgb.astype(np.float32) / 255.0)  # float 0-1
    t.update(rgb[..., 0])  # grayscale
    assert [im.shape for im in fake.images] == [(60, 80, 3)] * 3
    np.testing.assert_array_equal(fake.images[0], rgb)
    np.testing.assert_array_equal(fake.images[1], rgb)
    assert fake.images[2][0, 0].tolist() == [255, 255, 255]


# -------------------------------------------------------------------------------- box formats
BOX = np.array([10.0, 20.0, 30.0, 40.0])  # x, y, w, h, 0-based


@pytest.mark.parametrize("fmt, one_based, expected", [
    ("xywh", False, [10, 20, 30, 40]),
    ("xyxy", False, [10, 20, 40, 60]),
    ("cxcywh", False, [25, 40, 30, 40]),
    ("xywh", True, [11, 21, 30, 40]),
    ("xyxy", True, [11, 21, 41, 61]),
])
def test_convert_box(fmt, one_based, expected):
    out = convert_box(BOX, "xywh", fmt, one_based_dst=one_based)
    np.testing.assert_allclose(out, expected)
    back = convert_box(out, fmt, "xywh", one_based_src=one_based)
    np.testing.assert_allclose(back, BOX)
    assert back.dtype == np.float64


def test_convert_box_rejects_bad_input():
    with pytest.raises(ValueError, match="format"):
        convert_box(BOX, "xywh", "ltrb")
    with pytest.raises(ValueError, match="4 numbers"):
        convert_box([1, 2, 3], "xywh", "xyxy")
    assert np.isnan(convert_box([np.nan] * 4, "xyxy", "xywh")).all()


@pytest.mark.parametrize("fmt, one_based", [("xyxy", False), ("cxcywh", False), ("xywh", True)])
def test_adapters_convert_at_the_boundary(fmt, one_based):
    fake = FakeGot10k()  # moves whatever it holds by SHIFT, in its own format
    t = Got10kAdapter(fake, box_format=fmt, one_based=one_based)
    t.init(_red_frame(), BOX)
    np.testing.assert_allclose(fake.box, convert_box(BOX, "xywh", fmt, one_based_dst=one_based))
    out = t.update(_red_frame())
    expected = convert_box(convert_box(BOX, "xywh", fmt, one_based_dst=one_based) + SHIFT, fmt, "xywh",
                           one_based_src=one_based)
    np.testing.assert_allclose(out, expected)
    if fmt == "xywh":  # a translation survives the 1-based round trip unchanged
        np.testing.assert_allclose(out, BOX + SHIFT)


@pytest.mark.parametrize("bad", [[np.nan, 0, 10, 10], [0, 0, 0, 10], [0, 0, 10, -1], [1, 2, 3]])
def test_bad_init_boxes_are_refused(bad):
    with pytest.raises(ValueError):
        adapt_tracker(FakeGot10k()).init(_red_frame(), bad)


def test_malformed_answers_raise_value_error():
    t = adapt_tracker(lambda image, box: None if box is not None else [1, 2])
    t.init(_red_frame(), [1, 2, 3, 4])
    with pytest.raises(ValueError, match="4 numbers"):
        t.update(_red_frame())
    p = PysotAdapter(type("P", (), {"init": lambda s, i, b: None, "track": lambda s, i: {"box": 1}})())
    p.init(_red_frame(), [1, 2, 3, 4])
    with pytest.raises(ValueError, match="bbox"):
        p.update(_red_frame())


# ---------------------------------------------------------------------------- OpenCV adapter
def test_opencv_adapter_rounds_and_restores_subpixel_boxes():
    box = np.array([10.4, 20.6, 30.3, 15.2])
    t = OpenCVAdapter(FakeCV())
    t.init(_red_frame(), box)
    out = t.update(_red_frame())  # FakeCV moves its integer rect by SHIFT, size untouched
    np.testing.assert_allclose(out, box + SHIFT)
    assert t.ok


@pytest.mark.parametrize("on_lost", ["hold", "nan", "raise"])
def test_opencv_adapter_reports_a_loss(on_lost):
    t = OpenCVAdapter(FakeCV, on_lost=on_lost)  # a factory: a fresh FakeCV per init
    t.init(_red_frame(), [10, 10, 20, 20])
    first = t.update(_red_frame())
    assert t.ok
    if on_lost == "raise":
        with pytest.raises(RuntimeError, match="lost"):
            t.update(_red_frame())
        return
    second = t.update(_red_frame())
    assert not t.ok
    if on_lost == "hold":
        np.testing.assert_array_equal(second, first)
    else:
        assert np.isnan(second).all()
    t.update(_red_frame())
    assert t.ok


def test_opencv_adapter_needs_init():
    with pytest.raises(RuntimeError, match="init"):
        OpenCVAdapter(FakeCV).update(_red_frame())


# ------------------------------------------------------------------------ real OpenCV trackers
@pytest.fixture(scope="module")
def crossing(data_root):
    seq = read_folder_sequence(data_root / "sot" / "Crossing")  # val split, 360x240, a pedestrian
    return seq, [seq.frame(i) for i in range(16)]


@pytest.fixture(scope="module")
def nanotrack_dir():
    root = default_weights_root()
    try:
        find_nanotrack_weights(root)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return root


@pytest.mark.parametrize("name, updates, min_mean_iou", [
    # MOSSE is the weakest by far (reference success 0.097 on the val split): a few frames only
    ("kcf", 15, 0.6), ("kcf-gated", 15, 0.3), ("csrt", 15, 0.6), ("mosse", 4, 0.4), ("nanotrack", 15, 0.6),
])
def test_real_opencv_trackers_follow_a_real_target(crossing, name, updates, min_mean_iou, request):
    seq, frames = crossing
    if name == "nanotrack":
        request.getfixturevalue("nanotrack_dir")
    t = create_opencv_tracker(name)
    assert isinstance(t, SingleObjectTracker) and t.name == name
    t.init(frames[0], seq.boxes[0])
    ious = []
    for i in range(1, updates + 1):
        box = t.update(frames[i])
        assert box.shape == (4,) and box.dtype == np.float64 and np.isfinite(box).all()
        ious.append(_iou(box, seq.boxes[i]))
    assert np.mean(ious) > min_mean_iou, (name, ious)
    # a real tracker on its own init frame stays on the box
    t.init(frames[0], seq.boxes[0])
    assert _iou(t.update(frames[0]), seq.boxes[0]) > 0.8


def test_kcf_star_is_primed_and_ungated():
    assert create_opencv_tracker("kcf").prime and create_opencv_tracker("kcf-gated").prime
    assert create_opencv_tracker("mosse").prime and not create_opencv_tracker("csrt").prime
    rng = np.random.default_rng(0)
    frame, other = (rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(2))
    box = [40.0, 30.0, 32.0, 24.0]
    star, gated = create_opencv_tracker("kcf"), create_opencv_tracker("kcf-gated")
    out = {}
    for t in (star, gated):
        t.init(frame, box)
        out[t.name] = t.update(other)  # unrelated noise: no peak worth the name
    assert star.ok  # the gate is off: KCF* always answers
    assert not gated.ok  # plain KCF reports the loss; the box stays where it was
    np.testing.assert_allclose(out["kcf-gated"], box)


def test_unknown_opencv_tracker():
    with pytest.raises(ValueError, match="unknown OpenCV tracker"):
        create_opencv_tracker("boosting")


def test_nanotrack_weights_missing_names_the_paths(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as e:
        create_opencv_tracker("nanotrack", weights_dir=tmp_path)
    assert str(tmp_path / "nanotrack_v2") in str(e.value) and "nanotrack_backbone_sim.onnx" in str(e.value)
    monkeypatch.setenv("PATCHNET_ZOO_WEIGHTS", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="PATCHNET_ZOO_WEIGHTS"):
        create_opencv_tracker("nanotrack")


def test_nanotrack_weights_from_the_environment(nanotrack_dir, monkeypatch):
    monkeypatch.setenv("PATCHNET_ZOO_WEIGHTS", str(nanotrack_dir.resolve()))
    paths = find_nanotrack_weights()
    assert paths["backbone"].name == "nanotrack_backbone_sim.onnx"
    # the folder itself works too
    assert find_nanotrack_weights(paths["backbone"].parent) == paths


def test_nanotrack_cost_is_counted_from_the_graph(nanotrack_dir):
    pytest.importorskip("onnxruntime")
    g = create_opencv_tracker("nanotrack").gflops_per_frame
    # search branch of the backbone (45.9 M MACs) + neck/head (32.5 M MACs), counted from the ONNX
    assert g == pytest.approx(0.0783, abs=0.002)
    assert create_opencv_tracker("kcf").gflops_per_frame is None


def test_make_base_tracker():
    torch = pytest.importorskip("torch")
    from patchnet_zoo.models.patchnet import PatchNet

    assert make_base_tracker("KCF").name == "kcf"
    pn = make_base_tracker("patchnet", model=PatchNet())
    assert isinstance(pn, Got10kAdapter) and pn.name == "patchnet"
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    pn.init(frame, [40, 30, 48, 40])
    box = pn.update(frame)
    assert _iou(box, [40, 30, 48, 40]) > 0.9
    assert 0.0 <= pn.score <= 1.0
    with pytest.raises(ValueError, match="unknown base tracker"):
        make_base_tracker("yolo")
    assert torch is not None
