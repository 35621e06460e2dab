"""Track ids: ``KeyFrameIdentities`` (association on key frames), ``SkipFrameDetector(track_ids=True)``
(carried boxes keep their ids), ``Detections.track_ids`` through supervision, and the identity
metrics (CLEAR MOT, IDF1) against py-motmetrics on real MOTChallenge sequences."""
from __future__ import annotations

import numpy as np
import pytest

from patchnet_zoo.accel import KeyFrameIdentities, accelerate_detector
from patchnet_zoo.detection import Detections
from patchnet_zoo.detection.mot_eval import FrameTruth, box_iou_xyxy
from patchnet_zoo.detection.mot_identity import identity_metrics


def _dets(boxes, classes=None, ids=None):
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), 0.9, classes, True, ids)


# --------------------------------------------------------------------------- KeyFrameIdentities
def test_detections_take_the_id_of_the_carried_box_they_overlap_not_their_order():
    ids = KeyFrameIdentities()
    first = ids.assign(_dets([[0, 0, 10, 10], [50, 50, 60, 60]]))
    assert first.track_ids.tolist() == [0, 1]
    carried = first.with_key_frame(False)
    # the detector lists them the other way round, both moved a little, and a third object appears
    second = ids.assign(_dets([[52, 51, 62, 61], [100, 0, 110, 10], [1, 1, 11, 11]]), carried)
    assert second.track_ids.tolist() == [1, 2, 0]


def test_ids_need_enough_overlap_and_the_same_class():
    ids = KeyFrameIdentities(min_iou=0.5)
    carried = ids.assign(_dets([[0, 0, 10, 10], [50, 50, 60, 60]], classes=[0, 0]))
    out = ids.assign(_dets([[6, 0, 16, 10], [50, 50, 60, 60]], classes=[0, 1]), carried)  # IoU 0.25; a new class
    assert out.track_ids.tolist() == [2, 3]


def test_a_box_missed_on_one_key_frame_keeps_its_id_and_is_forgotten_after_more():
    ids = KeyFrameIdentities(max_missed=1)
    a = ids.assign(_dets([[0, 0, 10, 10], [50, 50, 60, 60]]))
    b = ids.assign(_dets([[0, 0, 10, 10]]), a)  # object 1 missed once
    c = ids.assign(_dets([[0, 0, 10, 10], [51, 50, 61, 60]]), b)  # found again where it was last
    assert c.track_ids.tolist() == [0, 1]
    d = ids.assign(_dets([[0, 0, 10, 10]]), c)
    e = ids.assign(_dets([[0, 0, 10, 10]]), d)  # missed twice: forgotten
    f = ids.assign(_dets([[0, 0, 10, 10], [50, 50, 60, 60]]), e)
    assert f.track_ids.tolist() == [0, 2]
    ids.reset()
    assert ids.assign(_dets([[0, 0, 10, 10]])).track_ids.tolist() == [0]


@pytest.mark.parametrize("kwargs", [{"min_iou": 0}, {"min_iou": 1.5}, {"max_missed": -1}, {"max_missed": 0.5}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        KeyFrameIdentities(**kwargs)


def test_track_ids_travel_with_the_boxes():
    d = _dets([[0, 0, 10, 10], [5, 5, 30, 30], [-20, -20, -5, -5]], ids=[7, 8, 9])
    assert d[[1]].track_ids.tolist() == [8]
    assert d.clip((20, 20)).track_ids.tolist() == [7, 8]  # the box outside the frame goes, with its id
    assert Detections.concatenate([d[:1], d[2:]]).track_ids.tolist() == [7, 9]
    assert Detections.from_xywh([[0, 0, 4, 4]]).track_ids.tolist() == [-1]
    sv = pytest.importorskip("supervision")
    s = d.to_supervision()
    assert isinstance(s, sv.Detections) and s.tracker_id.tolist() == [7, 8, 9]
    assert Detections.from_supervision(s).track_ids.tolist() == [7, 8, 9]
    assert d.with_track_ids([-1, 8, 9]).to_supervision().tracker_id is None  # not every box has an id


# ------------------------------------------------------------------------------ on real video
@pytest.fixture(scope="module")
def tud_campus(data_root):
    from patchnet_zoo.detection.runner import load_mot_sequences

    folder = data_root / "mot" / "TUD-Campus"
    if not folder.is_dir():
        pytest.skip(f"no MOTChallenge sequence at {folder}")
    return load_mot_sequences([folder], max_frames=30)[0]


class _GroundTruthDetector:
    """The sequence's own ground-truth boxes as detections, one call per frame, in a shuffled order
    (a detector owes no order), so that ids must come from overlap."""

    def __init__(self, truths):
        self.truths, self.i, self.rng = truths, 0, np.random.default_rng(0)

    def reset(self):
        self.i = 0

    def __call__(self, frame):
        t = self.truths[self.i]
        self.i += 1
        order = self.rng.permutation(len(t.boxes))
        return Detections(t.boxes[order], 1.0, 0, True)


def _run_oracle(seq, n: int, inter: str = "patchnet"):
    oracle = _GroundTruthDetector(seq.truths)
    det = accelerate_detector(lambda f: oracle(f), key_frame_interval=n, inter=inter, track_ids=True)
    det.reset()
    out = []
    for i, f in enumerate(seq.frames):
        oracle.i = i  # the detector is only called on key frames: keep it on the right frame
        out.append(det(f))
    return out


def test_carried_boxes_keep_the_id_of_their_key_frame_detection(tud_campus):
    """On real pedestrians, with the ground truth as detections every 2nd frame: each inter frame
    returns ids of its key frame, one box per id, and the ids follow the people (no switch)."""
    out = _run_oracle(tud_campus, 2)
    for i, d in enumerate(out):
        assert set(d.track_ids.tolist()) <= set(out[i - i % 2].track_ids.tolist())
        assert len(set(d.track_ids.tolist())) == len(d)
    m = identity_metrics(out, tud_campus.truths)
    assert m["id_switches"] == 0 and m["idf1"] > 0.95 and m["hypothesis_tracks"] == m["gt_tracks"]
    per_frame = identity_metrics(_run_oracle(tud_campus, 1), tud_campus.truths)
    assert per_frame["idf1"] == 1.0 and per_frame["mota"] == 1.0


def test_patchnet_carries_identities_better_than_holding_the_boxes(tud_campus):
    """Every 5th frame in a crowd of walkers some carried boxes drift onto a neighbour and ids
    switch, but fewer boxes are lost than when the key-frame boxes are held."""
    patchnet = identity_metrics(_run_oracle(tud_campus, 5), tud_campus.truths)
    hold = identity_metrics(_run_oracle(tud_campus, 5, "hold"), tud_campus.truths)
    assert patchnet["mota"] > hold["mota"] and patchnet["misses"] < hold["misses"]


def test_without_track_ids_every_id_is_minus_one_and_the_metrics_refuse(tud_campus):
    oracle = _GroundTruthDetector(tud_campus.truths)
    det = accelerate_detector(lambda f: oracle(f), key_frame_interval=1)
    det.reset()
    out = [det(f) for f in tud_campus.frames[:3]]
    assert all((d.track_ids == -1).all() for d in out)
    with pytest.raises(ValueError, match="track id"):
        identity_metrics(out, tud_campus.truths[:3])


def test_identity_metrics_agree_with_motmetrics(tud_campus):
    """MOTA, IDF1 and the identity switches of a real run (FastestDet every 3rd frame, PatchNet
    between, score >= 0.5 persons) equal py-motmetrics' on the same boxes."""
    mm = pytest.importorskip("motmetrics")
    from patchnet_zoo.detection.fastestdet import FastestDet
    from patchnet_zoo.detection.mot_identity import _kept_hypotheses

    try:
        fd = FastestDet(score_threshold=0.5)
    except FileNotFoundError as e:
        pytest.skip(f"FastestDet weights missing: {e}")
    det = accelerate_detector(lambda f: fd(f).filter(class_ids=[0]), key_frame_interval=3, track_ids=True)
    det.reset()
    out = [det(f) for f in tud_campus.frames]
    ours = identity_metrics(out, tud_campus.truths)
    acc = mm.MOTAccumulator(auto_id=True)
    for d, t in zip(out, tud_campus.truths):
        d = _kept_hypotheses(d, t, 0.5)
        # motmetrics' own iou_matrix calls np.asfarray, gone in NumPy 2: the same matrix by hand
        iou = box_iou_xyxy(t.boxes, d.boxes)
        dist = np.where(iou >= 0.5, 1.0 - iou, np.nan)
        acc.update(t.ids.tolist(), d.track_ids.tolist(), dist)
    ref = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches", "num_false_positives",
                                                    "num_misses"], name="x").iloc[0]
    assert ours["id_switches"] == int(ref["num_switches"]) and ours["id_switches"] > 0
    assert ours["false_positives"] == int(ref["num_false_positives"])
    assert ours["misses"] == int(ref["num_misses"])
    assert ours["mota"] == pytest.approx(float(ref["mota"]), abs=1e-9)
    assert ours["idf1"] == pytest.approx(float(ref["idf1"]), abs=1e-9)


def test_identity_metrics_count_a_swap_and_leave_ignored_boxes_out():
    a, b = [0, 0, 10, 10], [20, 0, 30, 10]
    truths = [FrameTruth(np.float32([a, b]), np.float32([[50, 50, 60, 60]]), np.int64([1, 2])) for _ in range(4)]
    ok = _dets([a, b], ids=[10, 11])
    swapped = _dets([a, b], ids=[11, 10])
    in_ignore = _dets([a, b, [50, 50, 60, 60]], ids=[10, 11, 12])
    m = identity_metrics([ok, ok, swapped, in_ignore], truths)
    assert m["id_switches"] == 2 + 2  # the swap, and the swap back
    assert m["false_positives"] == 0 and m["misses"] == 0 and m["hypothesis_boxes"] == 8
    assert m["idf1"] == pytest.approx(2 * 6 / 16)
    assert identity_metrics([ok] * 4, truths)["idf1"] == 1.0


def test_lookahead_associates_where_the_two_carries_meet(tud_campus, monkeypatch):
    """With look-ahead the later half of a gap shows the next key frame's boxes carried backwards;
    their ids are settled between the last frame carried forwards and the first carried backwards
    (one frame apart). On real walkers with perfect detections every 4th frame that keeps the ids
    better than settling them on the key frame against the forward carry of half a gap before, and
    better than carrying forwards only."""
    from patchnet_zoo.accel import SkipFrameDetector
    from patchnet_zoo.detection.runner import run_frames

    seq = tud_campus
    index = {id(f): i for i, f in enumerate(seq.frames)}

    def oracle(frame):
        t = seq.truths[index[id(frame)]]
        return Detections(t.boxes, 1.0, 0, True)

    def run(lookahead: bool):
        det = accelerate_detector(oracle, key_frame_interval=4, track_ids=True, lookahead=lookahead)
        out, _ = run_frames(det, seq.frames)
        for i, d in enumerate(out):
            assert len(set(d.track_ids.tolist())) == len(d)
            if lookahead and i % 4 >= 3 and i + 1 < len(out):  # carried back from the next key frame
                assert set(d.track_ids.tolist()) <= set(out[i + 1].track_ids.tolist())
        return identity_metrics(out, seq.truths)

    forward, meeting = run(False), run(True)
    monkeypatch.setattr(SkipFrameDetector, "_meet", lambda self, forward, later: None)
    on_key_frame = run(True)
    assert meeting["idf1"] > on_key_frame["idf1"] and meeting["idf1"] > forward["idf1"]
    assert meeting["id_switches"] <= min(on_key_frame["id_switches"], forward["id_switches"])


def _moving_square(n: int, step: float, size=(30, 20), hw=(120, 400), seed=1):
    """A textured box moving right by ``step`` px per frame over a faintly textured background;
    the true xyxy box of every frame."""
    rng = np.random.default_rng(seed)
    bg = (110 + rng.random((hw[0] // 8, hw[1] // 8, 3)) * 30).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    obj = (rng.random((size[1] // 5, size[0] // 5, 3)) * 255).astype(np.uint8).repeat(5, 0).repeat(5, 1)
    frames, boxes = [], []
    for i in range(n):
        x0, y0 = int(round(10 + step * i)), 50
        f = bg.copy()
        f[y0:y0 + size[1], x0:x0 + size[0]] = obj
        frames.append(f)
        boxes.append([x0, y0, x0 + size[0], y0 + size[1]])
    return frames, np.asarray(boxes, np.float32)


def test_a_fast_target_keeps_its_id_because_boxes_are_carried_into_the_key_frame(monkeypatch):
    """18 px a frame for a 30-px box (a low frame rate): the key frame's detection overlaps the box
    of the frame before by IoU 0.25, below 0.3, but the box carried into the key frame by 1. Only
    the last frame's boxes (the monkeypatched variant) would give the target a new id on every key
    frame. KCF carries the box here (it follows this synthetic box exactly); the association is the
    same whatever carries the boxes."""
    from patchnet_zoo.accel import SkipFrameDetector

    frames, truth = _moving_square(16, 18.0)
    pytest.importorskip("cv2")
    index = {id(f): i for i, f in enumerate(frames)}

    def oracle(frame):
        return _dets(truth[index[id(frame)]])

    def ids():
        det = accelerate_detector(oracle, key_frame_interval=3, track_ids=True, inter="kcf")
        det.reset()
        return {int(t) for f in frames for t in det(f).track_ids}

    assert ids() == {0}
    monkeypatch.setattr(SkipFrameDetector, "_carried_to", lambda self, frame: (self._carried(), None))
    assert len(ids()) == 6  # a new id on every key frame: 0, 3, ..., 15


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("lookahead, policy, inter", [(False, "fixed", "patchnet"), (True, "fixed", "patchnet"),
                                                     (False, "adaptive", "hold"), (True, "adaptive", "patchnet")])
def test_every_box_has_one_id_whatever_the_schedule(n, lookahead, policy, inter):
    """Random detections (some frames empty, two classes) through every schedule: every returned box
    has an id >= 0 and no id appears twice in a frame."""
    rng = np.random.default_rng(n)
    frames = [(rng.random((90, 160, 3)) * 255).astype(np.uint8) for _ in range(11)]
    index = {id(f): i for i, f in enumerate(frames)}
    dets = []
    for _ in frames:
        k = int(rng.integers(0, 5))
        xy, wh = rng.random((k, 2)) * [120, 60], 5 + rng.random((k, 2)) * 25
        dets.append(Detections(np.concatenate([xy, xy + wh], 1), rng.random(k), rng.integers(0, 2, k), True))
    det = accelerate_detector(lambda f: dets[index[id(f)]], key_frame_interval=n, track_ids=True,
                              lookahead=lookahead, policy=policy, inter=inter)
    out = list(det.process(frames))
    assert len(out) == len(frames)
    for d in out:
        ids = d.track_ids.tolist()
        assert all(t >= 0 for t in ids) and len(set(ids)) == len(ids)
