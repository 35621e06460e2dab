"""Detector adapters: FastestDet on real frames, the spec factory, callables of every supported
return form, effdet (zero-padded rows, class offset) and torchvision models (random weights: only
the plumbing is under test there), and clear errors for bad input."""
from __future__ import annotations

import numpy as np
import pytest

from patchnet_zoo.detection import (
    CallableAdapter,
    Detections,
    EffDetAdapter,
    FastestDet,
    TorchvisionAdapter,
    adapt_detector,
    make_detector,
)
from patchnet_zoo.detection.mot_eval import box_iou_xyxy, load_mot_ground_truth


@pytest.fixture(scope="module")
def tud(data_root):
    from patchnet_zoo.data.readers import _imread_rgb
    from patchnet_zoo.detection.mot_eval import mot_frame_paths

    seq = data_root / "mot" / "TUD-Campus"
    return _imread_rgb(mot_frame_paths(seq)[0]), load_mot_ground_truth(seq)[0]


@pytest.fixture(scope="module")
def fastestdet():
    try:
        return FastestDet()
    except FileNotFoundError as e:
        pytest.skip(f"FastestDet weights not available: {e}")


def test_fastestdet_finds_the_pedestrians(tud, fastestdet):
    frame, truth = tud
    d = fastestdet(frame)
    people = d.filter(class_ids=[0])
    assert fastestdet.class_names[0] == "person"
    assert people.scores.max() > 0.85  # the README's 0.87-0.89
    iou = box_iou_xyxy(truth.boxes, people.boxes)
    assert (iou.max(1) > 0.5).sum() >= 3  # most of the 4-5 walkers are found where the ground truth has them
    assert (d.boxes[:, 2] <= frame.shape[1]).all() and (d.boxes[:, 3] <= frame.shape[0]).all()
    assert d.from_key_frame.all()
    assert 0.05 < fastestdet.gflops_per_frame < 0.5  # counted from the graph


def test_fastestdet_threshold_and_classes(tud, fastestdet):
    frame, _ = tud
    strict = FastestDet(score_threshold=0.8, classes=[0])(frame)
    assert len(strict) and (strict.scores >= 0.8).all() and (strict.class_ids == 0).all()
    assert len(strict) < len(fastestdet(frame))


def test_specs(tud, fastestdet, tmp_path):
    frame, _ = tud
    by_path = make_detector(f"onnx:{fastestdet.path}")
    assert isinstance(by_path, FastestDet)  # a FastestDet-shaped graph is recognised
    np.testing.assert_allclose(by_path(frame).boxes, fastestdet(frame).boxes, atol=1e-4)
    mod = tmp_path / "my_detector.py"
    mod.write_text("def detect(frame):\n    return [[1, 2, 30, 40, 0.9, 2]]\n")
    d = make_detector(f"python:{mod}:detect")(frame)
    assert d.class_ids.tolist() == [2] and d.boxes.tolist() == [[1, 2, 30, 40]]
    with pytest.raises(ValueError, match="unknown detector spec"):
        make_detector("yolo:x")
    with pytest.raises(FileNotFoundError):
        make_detector("onnx:/nonexistent/model.onnx")
    with pytest.raises(ValueError, match="no attribute"):
        make_detector(f"python:{mod}:nothing")


@pytest.mark.parametrize("form", ["array6", "dict", "tuple", "detections", "svlike", "xywh"])
def test_callable_forms(form):
    frame = np.zeros((50, 80, 3), np.uint8)
    xyxy = np.array([[10, 10, 30, 40], [70, 20, 100, 30]], np.float32)  # the second sticks out on the right
    scores, classes = np.array([0.9, 0.6]), np.array([1, 4])

    from types import SimpleNamespace

    out = {"array6": np.concatenate([xyxy, scores[:, None], classes[:, None]], 1),
           "dict": {"boxes": xyxy, "scores": scores, "labels": classes},
           "tuple": (xyxy, scores, classes),
           "detections": Detections(xyxy, scores, classes, True),
           "svlike": SimpleNamespace(xyxy=xyxy, confidence=scores, class_id=classes, data={}),
           "xywh": np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2], scores[:, None], classes[:, None]], 1)}[form]
    det = adapt_detector(lambda f: out, box_format="xywh" if form == "xywh" else "xyxy")
    assert isinstance(det, CallableAdapter)
    d = det(frame)
    np.testing.assert_allclose(d.boxes, [[10, 10, 30, 40], [70, 20, 80, 30]])  # clipped to the frame
    assert d.class_ids.tolist() == [1, 4]
    np.testing.assert_allclose(d.scores, [0.9, 0.6], rtol=1e-6)


def test_callable_threshold_offset_and_bgr():
    seen = {}

    def fn(frame):
        seen["pixel"] = frame[0, 0].tolist()
        return [[0, 0, 5, 5, 0.2, 1], [0, 0, 6, 6, 0.7, 1]]

    frame = np.zeros((10, 10, 3), np.uint8)
    frame[0, 0] = (255, 0, 0)  # red in RGB
    d = CallableAdapter(fn, score_threshold=0.5, class_offset=-1, channel_order="bgr")(frame)
    assert seen["pixel"] == [0, 0, 255]
    assert len(d) == 1 and d.class_ids.tolist() == [0]


def test_bad_frames_and_objects_are_explained(fastestdet):
    with pytest.raises(TypeError, match="numpy"):
        fastestdet([[1, 2, 3]])
    with pytest.raises(ValueError, match="HxWx3"):
        fastestdet(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        fastestdet(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(TypeError, match="cannot use"):
        adapt_detector(42)
    with pytest.raises(ValueError, match=r"\(N, 4\|5\|6\)"):
        adapt_detector(lambda f: np.zeros((2, 3)))(np.zeros((4, 4, 3), np.uint8))


def test_effdet_adapter_drops_padding_and_offsets_classes():
    effdet = pytest.importorskip("effdet")
    import torch

    torch.manual_seed(0)
    bench = effdet.create_model("efficientdet_d0", bench_task="predict", pretrained=False, pretrained_backbone=False,
                                image_size=(128, 128), max_det_per_image=100)
    det = adapt_detector(bench, score_threshold=None)
    assert isinstance(det, EffDetAdapter)
    frame = (np.random.default_rng(0).random((90, 160, 3)) * 255).astype(np.uint8)
    x, info = det.preprocess(frame)
    with torch.inference_mode():
        raw = bench(x, img_info=info)[0]
    d = det(frame)
    assert len(d) == int((raw[:, 4] > 0).sum())  # exactly the zero-padded rows went
    assert (d.scores > 0).all()
    np.testing.assert_array_equal(np.sort(d.class_ids), np.sort(raw[raw[:, 4] > 0, 5].numpy().astype(int) - 1))
    assert (d.boxes[:, 2] <= 160).all() and (d.boxes[:, 3] <= 90).all()  # scaled back to the frame
    assert det.gflops_per_frame > 0


def test_torchvision_adapter():
    torchvision = pytest.importorskip("torchvision")
    import torch

    torch.manual_seed(0)
    model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                        score_thresh=0.0)
    det = adapt_detector(model, score_threshold=0.0)
    assert isinstance(det, TorchvisionAdapter)
    frame = (np.random.default_rng(1).random((120, 200, 3)) * 255).astype(np.uint8)
    d = det(frame)
    with torch.inference_mode():
        raw = model([torch.from_numpy(frame).permute(2, 0, 1).float() / 255])[0]
    assert len(d) > 0
    assert len(d) <= len(raw["labels"])
    assert set(d.class_ids.tolist()) <= set((raw["labels"].numpy() - 1).tolist())  # background 0 -> -1
    assert (d.boxes[:, 2] <= 200).all() and (d.boxes[:, 3] <= 120).all()
