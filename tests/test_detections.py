"""``Detections`` (construction, clipping, subsets, supervision conversions) and the COCO-style AP
of ``detection.mot_eval``, checked against pycocotools on real FastestDet output."""
from __future__ import annotations

import numpy as np
import pytest

from patchnet_zoo.detection import Detections
from patchnet_zoo.detection.mot_eval import (
    FrameTruth,
    average_precision,
    evaluate_map,
    load_mot_ground_truth,
    read_vid_detections,
)


def test_fields_types_and_shapes():
    d = Detections([[0, 0, 10, 20], [5, 5, 8, 9]], [0.9, 0.4], [0, 3], [True, False])
    assert len(d) == 2
    assert d.boxes.dtype == np.float32 and d.scores.dtype == np.float32
    assert d.class_ids.dtype == np.int64 and d.from_key_frame.dtype == bool
    np.testing.assert_allclose(d.xywh, [[0, 0, 10, 20], [5, 5, 3, 4]])
    e = Detections.empty()
    assert len(e) == 0 and e.boxes.shape == (0, 4)
    assert len(Detections.concatenate([d, e, d])) == 4


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        Detections(np.zeros((3, 5)), None, None, None)
    with pytest.raises(ValueError, match="scores has 1 entries for 2 boxes"):
        Detections(np.zeros((2, 4)), [0.5], None, None)
    with pytest.raises(ValueError, match="positive"):
        Detections.empty().clip((0, 10))


def test_clip_clips_partial_boxes_and_drops_boxes_that_left():
    d = Detections([[-5, -5, 10, 10], [90, 40, 120, 60], [200, 10, 230, 30], [10, 10, 20, 20]],
                   [0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4], True)
    c = d.clip((50, 100))  # h=50, w=100
    np.testing.assert_allclose(c.boxes, [[0, 0, 10, 10], [90, 40, 100, 50], [10, 10, 20, 20]])
    assert c.class_ids.tolist() == [1, 2, 4]  # class and score travel with their box
    np.testing.assert_allclose(c.scores, [0.1, 0.2, 0.4])


def test_subsets_filter_and_key_flag():
    d = Detections.from_xywh([[0, 0, 2, 2], [1, 1, 2, 2], [3, 3, 1, 1]], [0.2, 0.8, 0.5], [0, 1, 0])
    assert d[1].class_ids.tolist() == [1]
    assert len(d.filter(min_score=0.5)) == 2
    assert d.filter(class_ids=[0]).scores.tolist() == pytest.approx([0.2, 0.5])
    assert not d.with_key_frame(False).from_key_frame.any()
    assert d.from_key_frame.all()


class _SvLike:
    """The attributes ``from_supervision`` reads, as ``sv.Detections`` has them."""

    def __init__(self, xyxy, confidence, class_id, data):
        self.xyxy, self.confidence, self.class_id, self.data = xyxy, confidence, class_id, data


def test_from_supervision_reads_the_key_frame_flag():
    sv_like = _SvLike(np.array([[1, 2, 3, 4.0]]), np.array([0.7]), np.array([5]), {"from_key_frame": np.array([False])})
    d = Detections.from_supervision(sv_like)
    assert d.class_ids.tolist() == [5] and not d.from_key_frame[0]
    assert Detections.from_supervision(_SvLike(np.zeros((1, 4)), None, None, {})).scores.tolist() == [1.0]
    with pytest.raises(TypeError, match="xyxy"):
        Detections.from_supervision([1, 2, 3, 4])


def test_supervision_round_trip():
    import supervision as sv  # in the test extra (>= 0.31, which no longer pulls in opencv-python)

    d = Detections([[0, 0, 10, 20], [5, 5, 8, 9]], [0.9, 0.4], [0, 3], [True, False])
    s = d.to_supervision()
    assert isinstance(s, sv.Detections)
    back = Detections.from_supervision(s)
    np.testing.assert_allclose(back.boxes, d.boxes)
    assert back.from_key_frame.tolist() == [True, False] and back.class_ids.tolist() == [0, 3]


# --------------------------------------------------------------------------------------- AP
def test_ap_perfect_partial_and_ignored():
    gt = [FrameTruth(np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)),
          FrameTruth(np.array([[0, 0, 10, 10]], np.float32), ignore=np.array([[50, 50, 90, 90]], np.float32))]
    perfect = [(g.boxes, np.ones(len(g.boxes))) for g in gt]
    assert average_precision(perfect, gt).tolist() == pytest.approx([1.0] * 10)
    # one box shifted by 2 px: IoU 0.667 -> a hit at 0.5, a miss from 0.7 on
    shifted = [(np.array([[0, 0, 10, 10], [22, 20, 32, 30]]), np.array([0.9, 0.8])), perfect[1]]
    ap = average_precision(shifted, gt)
    assert ap[0] == pytest.approx(1.0) and ap[-1] < 0.8
    # a detection inside an ignore region is neither right nor wrong
    with_ignored = [perfect[0], (np.array([[0, 0, 10, 10], [60, 60, 70, 70]]), np.array([0.5, 0.99]))]
    assert average_precision(with_ignored, gt)[0] == pytest.approx(1.0)
    # ... but the same detection elsewhere is a false positive ranked first
    fp = [perfect[0], (np.array([[0, 0, 10, 10], [100, 0, 110, 10]]), np.array([0.5, 0.99]))]
    # ranked: TP, TP, FP, TP -> precision 1 up to recall 2/3, 3/4 at recall 1 (67 + 34 * 0.75) / 101
    assert average_precision(fp, gt)[0] == pytest.approx((67 + 34 * 0.75) / 101)


def test_ap_agrees_with_pycocotools_on_real_detections(data_root):
    pytest.importorskip("pycocotools", reason="pycocotools (the test extra) is the reference implementation")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from patchnet_zoo.data.readers import _imread_rgb
    from patchnet_zoo.detection import FastestDet
    from patchnet_zoo.detection.mot_eval import mot_frame_paths

    seq = data_root / "mot" / "MOT17-05-FRCNN"  # has ignore regions
    paths = mot_frame_paths(seq)
    frames = [_imread_rgb(p) for p in paths]
    truths = load_mot_ground_truth(seq, frame_hw=frames[0].shape[:2])
    det = FastestDet(classes=[0], score_threshold=0.05)
    dets = [det(f) for f in frames]
    ours = average_precision(dets, truths)

    images, anns, results = [], [], []
    for i, (d, t) in enumerate(zip(dets, truths)):
        images.append({"id": i, "width": 640, "height": 480})
        for crowd, boxes in ((0, t.boxes), (1, t.ignore)):
            for b in boxes:
                w, h = float(b[2] - b[0]), float(b[3] - b[1])
                anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": crowd,
                             "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h})
        for b, s in zip(d.xywh, d.scores):
            results.append({"image_id": i, "category_id": 1, "bbox": [float(v) for v in b], "score": float(s)})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    coco.createIndex()
    ev = COCOeval(coco, coco.loadRes(results), "bbox")
    ev.params.areaRng = [[0, 1e10]]
    ev.params.areaRngLbl = ["all"]
    ev.params.maxDets = [100]
    ev.evaluate()
    ev.accumulate()
    ref = ev.eval["precision"][:, :, 0, 0, 0]  # (T, R)
    ref = np.where(ref < 0, 0, ref).mean(1)
    assert ours[0] > 0.2  # FastestDet does find the people
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_mot_ground_truth_conventions(data_root):
    tud = load_mot_ground_truth(data_root / "mot" / "TUD-Campus")
    assert len(tud) == 71 and sum(len(t.boxes) for t in tud) == 359  # MOT15: every row counts
    assert all(len(t.ignore) == 0 for t in tud)
    assert min(t.boxes[:, :2].min() for t in tud if len(t.boxes)) >= 0  # clipped, 0-based
    m17 = load_mot_ground_truth(data_root / "mot" / "MOT17-04-FRCNN")
    assert sum(len(t.ignore) for t in m17) > 0  # occluded / static persons etc.
    r = evaluate_map([Detections(t.boxes, 1.0, 0, True) for t in tud], tud)
    assert r["map50"] == pytest.approx(1.0) and r["map"] == pytest.approx(1.0)


def test_vid_reference_detections(data_root):
    dets = read_vid_detections(data_root / "vid" / "ILSVRC2015_val_00142000", min_score=0.5)
    assert len(dets) == 187
    assert all((d.scores >= 0.5).all() for d in dets)
    assert 4 in {int(c) for d in dets for c in d.class_ids}  # bicycle
