"""``PatchMatcher.match_one``, a tracker's one-box match: the numbers of ``match`` for that box,
bit for bit, on real video, in every case ``match`` handles specially."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from patchnet_zoo.data.readers import read_sequences
from patchnet_zoo.geometry import to_frame_tensor
from patchnet_zoo.matching import PatchMatcher
from patchnet_zoo.trackers.patchnet_tracker import load_pretrained_patchnet


@pytest.fixture(scope="module")
def ball(data_root):
    """A fast ball on a 1-D wall: a key frame, a frame 3 on, and the key box."""
    seq = {s.name: s for s in read_sequences(data_root, "val")}["ball1"]
    return to_frame_tensor(seq.frame(30)), to_frame_tensor(seq.frame(33)), np.asarray(seq.boxes[30], float)


def _both(matcher: PatchMatcher, templates, frame, box):
    ref = matcher.match(templates, frame, torch.tensor([box], dtype=torch.float32))
    return (ref.boxes[0].tolist(), float(ref.confidence[0]), int(ref.searches[0])), \
        matcher.match_one(templates, frame, tuple(box))


@pytest.mark.parametrize("arch, options", [("patchnet", {}),
                                           ("patchnet_k4_zero_mean", dict(response_size=9, rigid_centre=True)),
                                           ("patchnet", dict(edge_follow=1)),
                                           ("patchnet_patch_aggregation", dict(min_size=200.0))])
def test_match_one_gives_match_s_numbers(ball, arch, options):
    """Searches near the target, partly outside the frame, wholly outside it (the box kept,
    confidence 0), and boxes below ``min_size`` (the last model's size floor is above every box)."""
    key, later, box = ball
    matcher = PatchMatcher(load_pretrained_patchnet(arch), **options)
    templates = matcher.encode(key, box)
    h, w = later.shape[1:]
    searches = [box, box + [7.5, -3.25, 0, 0], [-0.4 * box[2], h / 2, box[2], box[3]],
                [w + 3 * box[2], h / 2, box[2], box[3]], [box[0], box[1], box[2] * 0.37, box[3] * 2.2]]
    answers = set()
    for search in searches:
        ref, one = _both(matcher, templates, later, [float(v) for v in search])
        assert one == ref, (search, one, ref)
        assert all(isinstance(v, float) for v in one[0]) and isinstance(one[1], float)
        answers.add(tuple(one[0]))
    assert len(answers) == len(searches)  # every case found a box of its own
    assert _both(matcher, templates, later, list(searches[3]))[1][1] == 0.0  # wholly outside


def test_match_one_rejects_what_match_rejects(ball):
    key, later, box = ball
    matcher = PatchMatcher(load_pretrained_patchnet("patchnet_k4"))
    templates = matcher.encode(key, box)
    for bad in ([np.nan, 1.0, 5.0, 5.0], [1.0, 1.0, 0.0, 5.0], [1.0, 1.0, 5.0, -2.0]):
        with pytest.raises(ValueError) as ref:
            matcher.match(templates, later, torch.tensor([bad]))
        with pytest.raises(ValueError) as got:
            matcher.match_one(templates, later, bad)
        assert str(got.value) == str(ref.value)
    with pytest.raises(ValueError, match="one box of four numbers"):
        matcher.match_one(templates, later, [box, box])
    two = matcher.encode(key, np.stack([box, box + 5]))  # two templates: ``match``'s batch path
    with pytest.raises(ValueError, match="2 templates but 1 search boxes"):
        matcher.match_one(two, later, box)
