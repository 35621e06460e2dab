"""The compiled score path (``PatchNet.locate(compiled=True)``, which ``PatchMatcher(compiled=True)``
takes for calls of several boxes) gives the eager path's boxes, bit for bit. One-box calls compile
the whole match instead: ``tests/test_compiled_match.py``."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from patchnet_zoo.accel.skip_frame_tracker import SkipFrameTracker
from patchnet_zoo.data.readers import read_sequences
from patchnet_zoo.geometry import to_frame_tensor
from patchnet_zoo.matching import PatchMatcher
from patchnet_zoo.models import compiled_scores
from patchnet_zoo.trackers.patchnet_tracker import load_pretrained_patchnet


@pytest.fixture(scope="module")
def real_windows(data_root):
    """Key frames, later frames and boxes from two val videos (a moving target, a small one)."""
    seqs = {s.name: s for s in read_sequences(data_root, "val")}
    out = []
    for name, t in (("ball1", 30), ("Crossing", 40)):
        seq = seqs[name]
        key, later = to_frame_tensor(seq.frame(t)), to_frame_tensor(seq.frame(t + 3))
        out.append((key, later, torch.tensor(seq.boxes[t:t + 1], dtype=torch.float32)))
    return out


def _same(a, b) -> bool:
    return torch.equal(a.boxes, b.boxes) and torch.equal(a.confidence, b.confidence)


@pytest.mark.parametrize("arch, rigid, batch", [("patchnet_k4_zero_mean", True, 2), ("patchnet", False, 3)])
def test_compiled_matches_are_the_eager_ones_bit_for_bit(real_windows, arch, rigid, batch):
    eager = PatchMatcher(load_pretrained_patchnet(arch), response_size=9, rigid_centre=rigid)
    compiled = eager.replace(compiled=True)
    assert compiled.compiled and not eager.compiled and compiled.rigid_centre == rigid
    for key, later, box in real_windows:
        boxes = box.repeat(batch, 1) + torch.arange(batch, dtype=torch.float32)[:, None] * 3  # B distinct boxes
        templates = eager.encode(key, boxes)
        a, b = eager.match(templates, later, boxes), compiled.match(templates, later, boxes)
        assert _same(a, b), (arch, (a.boxes - b.boxes).abs().max())
        assert (a.confidence > 0).all()  # real matches, not empty windows
    if shutil.which(os.environ.get("CXX", "c++")):  # with a compiler, the compiled graph ran (no fallback)
        assert not compiled_scores._failed


def test_the_option_is_checked_and_reaches_the_skip_frame_tracker_matcher():
    model = load_pretrained_patchnet("patchnet_k4")
    with pytest.raises(TypeError, match="compiled"):
        PatchMatcher(model, compiled="yes")
    with pytest.raises(TypeError, match="compiled"):
        SkipFrameTracker("mosse", inter="patchnet-k4", compiled=1)
    tracker = SkipFrameTracker("mosse", inter="patchnet-k4", matcher=model, compiled=True)
    assert tracker.matcher.compiled
    assert not SkipFrameTracker("mosse", inter="patchnet-k4", matcher=model).matcher.compiled
    assert PatchMatcher(model, compiled=True).with_response_size(11).compiled


def test_score_maps_follow_the_eager_layers_on_random_input():
    """The compiled function's source, run eagerly, is the model's eager score path (so compiling
    it cannot drift from the layers it stands for)."""
    torch.manual_seed(0)
    model = load_pretrained_patchnet("patchnet").with_response_size(7).eval()
    arrays = model._inference_arrays()
    with torch.inference_mode():
        template = torch.rand(2, 3, model.template_size, model.template_size) * 255
        search = model.centred(torch.rand(2, 3, model.search_size, model.search_size) * 255)
        weighted = model.encode_template(template) * arrays.channel_weights[0].view(1, -1, 1, 1, 1)
        eager = model._score_maps_eager(weighted, search, arrays)
        direct = compiled_scores.score_maps(model.correlation.correlate(weighted, search),
                                            model.correlation.inference_scale(search), arrays.channel_weights)
    assert len(direct) == len(eager) == model.geometry.levels
    for a, b in zip(eager, direct):
        assert a.shape == b.shape and np.array_equal(a.numpy(), b.numpy())
