"""The compiled one-box match (``PatchMatcher(compiled=True)``, ``models.compiled_match``) gives the
eager path's boxes to float rounding, and falls back to eager matching where it cannot compile."""
from __future__ import annotations

import logging
import os
import shutil

import pytest
import torch

from patchnet_zoo.data.readers import read_sequences
from patchnet_zoo.geometry import to_frame_tensor, xywh_to_cxcywh
from patchnet_zoo.matching import PatchMatcher
from patchnet_zoo.models import compiled_match, compiled_scores
from patchnet_zoo.trackers.patchnet_tracker import load_pretrained_patchnet

#: boxes agree to this many pixels (float rounding of fused loops and other summation orders)
BOX_TOL = 1e-3


@pytest.fixture(scope="module")
def real_windows(data_root):
    """(key frame, later frame, key box) from three val videos: a fast ball, a small pedestrian, a
    large bag; each later frame 3 frames on."""
    seqs = {s.name: s for s in read_sequences(data_root, "val")}
    out = []
    for name, t in (("ball1", 30), ("Crossing", 40), ("bag", 60)):
        seq = seqs[name]
        key, later = to_frame_tensor(seq.frame(t)), to_frame_tensor(seq.frame(t + 3))
        out.append((key, later, torch.tensor(seq.boxes[t:t + 1], dtype=torch.float32)))
    return out


def _agree(a, b) -> None:
    assert (a.boxes - b.boxes).abs().max() <= BOX_TOL, (a.boxes, b.boxes)
    assert (a.confidence - b.confidence).abs().max() <= 1e-5
    assert (a.confidence > 0).all()  # real matches, not empty windows


def _box_mean_patchnet():
    """The paper's weights, each crop centred on its box's own mean colour (``input_mean="box"``)."""
    model = load_pretrained_patchnet("patchnet")
    model.input_mean = "box"
    return model


MODELS = {"patchnet": lambda: load_pretrained_patchnet("patchnet"),
          "patchnet_k4_zero_mean": lambda: load_pretrained_patchnet("patchnet_k4_zero_mean"),
          "patchnet_patch_aggregation": lambda: load_pretrained_patchnet("patchnet_patch_aggregation"),
          "box mean": _box_mean_patchnet}


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("options", [dict(response_size=9, rigid_centre=True),
                                     dict(select_alpha=5.0, centre_gain=1.5)])
def test_the_graph_run_eagerly_is_the_eager_search(real_windows, model_name, options):
    """``match_graph``'s own source, run without compiling, gives ``PatchMatcher``'s eager search
    (so the compiled graph cannot drift from the code it stands for), for every kind of model:
    both normalisations, no box regression, box-mean centring; rigid or regressed centre."""
    matcher = PatchMatcher(MODELS[model_name](), **options)
    model, g = matcher.model, matcher.model.geometry
    constants = compiled_match.graph_constants(model, model._inference_arrays(), matcher.select_alpha)
    for key, later, box in real_windows:
        templates = matcher.encode(key, box)
        cxcywh = xywh_to_cxcywh(box)
        crops = matcher._crop(later, cxcywh, matcher.search_scale, g.search_size)
        with torch.inference_mode():
            boxes, confidence, cell, peak = compiled_match.match_graph(
                crops, templates.filters, cxcywh, constants, patch_size=g.patch_size, stride=g.corr_stride,
                zero_mean=model.patch_norm == "zero_mean", box_mean=model.input_mean == "box",
                template_size=g.template_size, response_size=g.response_size, levels=g.levels,
                rigid=matcher.rigid_centre, centre_gain=matcher.centre_gain)
            e_boxes, e_conf, e_cell, e_peak = matcher._search(templates.filters, later, cxcywh)
        assert torch.equal(cell, e_cell)
        assert (boxes - e_boxes).abs().max() <= BOX_TOL
        assert (confidence - e_conf).abs().max() <= 1e-5 and (peak - e_peak).abs().max() <= 1e-4


@pytest.mark.parametrize("arch, rigid", [("patchnet_k4_zero_mean", True), ("patchnet", False)])
def test_compiled_one_box_matches_agree_with_the_eager_ones(real_windows, arch, rigid):
    eager = PatchMatcher(load_pretrained_patchnet(arch), response_size=9, rigid_centre=rigid)
    compiled = eager.replace(compiled=True)
    assert compiled.compiled and not eager.compiled and compiled.rigid_centre == rigid
    for key, later, box in real_windows:  # boxes of three sizes, one graph
        templates = eager.encode(key, box)
        got = compiled.match(templates, later, box)
        _agree(eager.match(templates, later, box), got)
        # the tracker's one-box call runs the same graph: the same numbers
        assert compiled.match_one(templates, later, box[0].tolist()) == \
            (got.boxes[0].tolist(), float(got.confidence[0]), 1)
    if shutil.which(os.environ.get("CXX", "c++")):  # with a compiler, the ahead-of-time graph ran
        assert not compiled_match._aot_failed and not compiled_match._failed
        constants = compiled._graph_cache[1]
        (signature,) = [key[1] for key, (held, _) in compiled_match._aot_runners.items() if held is constants]
        assert compiled_match._cache_path(constants, signature).exists()  # the package later runs load


@pytest.mark.parametrize("boxes, warned", [(1, {compiled_match: 2, compiled_scores: 1}), (2, {compiled_scores: 1})])
def test_a_failed_compile_falls_back_to_eager_matching_with_one_warning_per_path(real_windows, monkeypatch,
                                                                                caplog, boxes, warned):
    """One box: the whole match fails to compile ahead of time, then with ``torch.compile``, then the
    score path alone; several boxes: the score path alone. One warning of one line for each path
    tried, then eager matching, the same boxes."""
    def no_compiler(fn=None, **kwargs):
        def fails(*args, **kw):
            raise RuntimeError("no C++ compiler found\nmore detail")
        return fails

    for module in (compiled_match, compiled_scores):
        monkeypatch.setattr(module, "_compiled", None)
        monkeypatch.setattr(module, "_failed", False)
    monkeypatch.setattr(compiled_match, "_aot_failed", False)
    monkeypatch.setattr(compiled_match, "_aot_runners", {})
    monkeypatch.setattr(torch, "compile", no_compiler)
    monkeypatch.setattr(compiled_match, "_load_or_build", no_compiler())
    eager = PatchMatcher(load_pretrained_patchnet("patchnet_k4"), response_size=9)
    compiled = eager.replace(compiled=True)
    key, later, box = real_windows[0]
    box = torch.cat([box + 4 * i for i in range(boxes)])
    templates = eager.encode(key, box)
    with caplog.at_level(logging.WARNING):
        first = compiled.match(templates, later, box)
        second = compiled.match(templates, later, box)  # no second attempt, no second warning
    for module in (compiled_match, compiled_scores):
        warnings = [r for r in caplog.records if r.name == module.__name__]
        assert len(warnings) == warned.get(module, 0)
        assert all("no C++ compiler found" in w.getMessage() and "more detail" not in w.getMessage()
                   for w in warnings)
    reference = eager.match(templates, later, box)
    for got in (first, second):
        assert torch.equal(got.boxes, reference.boxes) and torch.equal(got.confidence, reference.confidence)


def test_the_compiled_match_takes_one_box_only(real_windows):
    matcher = PatchMatcher(load_pretrained_patchnet("patchnet_k4"))
    model = matcher.model
    key, later, box = real_windows[0]
    boxes = box.repeat(2, 1)
    crops = matcher._crop(later, xywh_to_cxcywh(boxes), matcher.search_scale, model.search_size)
    constants = compiled_match.graph_constants(model, model._inference_arrays())
    with pytest.raises(ValueError, match="one box"):
        compiled_match.compiled_match(crops, matcher.encode(key, boxes).filters, xywh_to_cxcywh(boxes), constants)


def test_the_package_folder_keeps_the_packages_used_last(tmp_path, monkeypatch, real_windows):
    """Each new ahead-of-time package prunes the folder to the ``_AOT_FILES_KEEP`` used last; loading
    an old package marks it used, so a package in use outlives newer ones that are not; files being
    written by another process are left alone."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(compiled_match, "_AOT_FILES_KEEP", 3)
    built = []

    def fake_package(program, package_path):  # the build, without the C++ compiler's seconds
        built.append(package_path)
        open(package_path, "wb").write(b"package")

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", fake_package)
    monkeypatch.setattr(torch._inductor, "aoti_load_package", lambda path: path)
    matcher = PatchMatcher(load_pretrained_patchnet("patchnet_k4"), compiled=True)
    model, g = matcher.model, matcher.model.geometry
    key, later, box = real_windows[0]
    templates = matcher.encode(key, box)
    crops = matcher._crop(later, xywh_to_cxcywh(box), matcher.search_scale, g.search_size)
    inputs = (crops, templates.filters, xywh_to_cxcywh(box))
    folder = tmp_path / "patchnet_zoo"
    folder.mkdir()
    old = [folder / f"match-old{i}.pt2" for i in range(4)]
    writing = folder / "match-new.123.tmp.pt2"
    for i, path in enumerate([*old, writing]):
        path.write_bytes(b"x")
        os.utime(path, (1000 + i, 1000 + i))
    os.utime(old[0], (5000, 5000))  # old0 was used last of the four

    def build(select_alpha):
        constants = compiled_match.graph_constants(model, model._inference_arrays(), select_alpha)
        options = dict(patch_size=g.patch_size, stride=g.corr_stride, zero_mean=False, box_mean=False,
                       template_size=g.template_size, response_size=g.response_size, levels=g.levels,
                       rigid=False, centre_gain=1.0)
        signature = compiled_match._signature(*inputs, options)
        return compiled_match._load_or_build(*inputs, constants, options, signature)

    first = build(None)
    assert len(built) == 1 and first.endswith(".pt2") and os.path.exists(first)
    assert sorted(p.name for p in folder.iterdir()) == sorted([os.path.basename(first), old[0].name, old[3].name,
                                                               writing.name])
    assert build(None) == first and len(built) == 1  # the same graph loads, no second build
    build(2.0)  # another decoding: one more package, and the oldest unused one goes
    assert len(built) == 2 and not old[3].exists() and old[0].exists() and os.path.exists(first)
    assert writing.exists()
