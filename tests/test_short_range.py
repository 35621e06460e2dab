"""Short-range benchmark on a handful of real val pairs (fresh, untrained PatchNets: shape and sanity)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from patchnet_zoo.data.readers import Sequence, default_data_root, read_sequences
from patchnet_zoo.eval.short_range import (
    BASELINE_METHODS, METHODS, PATCHNET_VARIANTS, load_models, run_short_range, short_range_pairs,
    untrained_models,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def val():
    root = default_data_root()
    if not (root / "splits" / "val.txt").is_file():
        pytest.skip(f"real data not found at {root} (set PATCHNET_ZOO_DATA)")
    return read_sequences(root, "val")


@pytest.fixture(scope="module")
def crossing(val):
    return [s for s in val if s.name == "Crossing"]  # 360x240: cheap frames


def test_pairs_of_the_val_split(val):
    pairs = short_range_pairs(val, gap=10)
    assert len(pairs) == 1291  # every val frame is annotated: sum(T - 10)
    assert all(t + 10 < s.num_frames for s, t in pairs)


def test_pairs_skip_absent_frames():
    boxes = np.array([[0, 0, 5, 5]] * 6, dtype=float)
    boxes[2] = np.nan
    seq = Sequence("toy", boxes, lambda i: np.zeros((8, 8, 3), np.uint8))
    assert [t for _, t in short_range_pairs([seq], gap=1)] == [0, 3, 4]
    assert [t for _, t in short_range_pairs([seq], gap=0)] == [0, 1, 3, 4, 5]
    assert short_range_pairs([seq], gap=10) == []


def test_hold_at_gap_zero_never_misses(val):
    r = run_short_range(split="val", gap=0, methods=["hold"], max_pairs=6, progress=False)
    assert r["pairs"] == 6 and r["sequences"] >= 5  # evenly spread over the split
    h = r["methods"]["hold"]
    assert h["miss_rate"] == 0.0 and h["mean_iou"] == pytest.approx(1.0)


def test_all_methods_json_shape(crossing):
    r = run_short_range(sequences=crossing, gap=2, max_pairs=3, models=untrained_models(), progress=False)
    json.loads(json.dumps(r))  # JSON-ready
    assert r["gap"] == 2 and r["pairs"] == 3
    assert list(r["methods"]) == list(METHODS)
    for key, m in r["methods"].items():
        assert m["matches"] == 3
        assert 0.0 <= m["miss_rate"] <= 1.0 and 0.0 <= m["mean_iou"] <= 1.0
        assert m["ms_per_match_b1"] >= 0
        if key in PATCHNET_VARIANTS:
            assert m["ms_per_match_b16"] > 0 and m["ms_per_match_b1"] > 0
            assert m["weights"] == "given by the caller"
        else:
            assert m["ms_per_match_b16"] is None and m["fallbacks"] >= 0
    # Crossing's pedestrian moves ~1.5 px per frame: after 2 frames every box still overlaps well
    assert r["methods"]["hold"]["mean_iou"] > 0.4
    assert r["methods"]["ncc"]["mean_iou"] > 0.5
    assert r["methods"]["kcf"]["mean_iou"] > 0.5
    assert r["machine"]["cpu_count"] >= 1


def test_models_by_registry_name_and_errors(crossing):
    models = untrained_models(["no-fourier"])
    matchers, labels = load_models(["no-fourier", "hold"], {"patchnet_no_fourier": models["no-fourier"]})
    assert list(matchers) == ["no-fourier"] and labels["no-fourier"] == "given by the caller"
    assert not matchers["no-fourier"].model.fourier
    with pytest.raises(ValueError):
        run_short_range(sequences=crossing, methods=["bogus"], progress=False)
    assert set(BASELINE_METHODS) | set(PATCHNET_VARIANTS) == set(METHODS)


def test_benchmark_script_writes_json_and_markdown(tmp_path, val):
    spec = importlib.util.spec_from_file_location("bench_short_range", REPO / "benchmarks" / "short_range.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    js, md = tmp_path / "sr.json", tmp_path / "sr.md"
    mod.main(["--max-pairs", "3", "--methods", "hold,ncc", "--json", str(js), "--md", str(md), "--no-progress"])
    r = json.loads(js.read_text())
    assert set(r["methods"]) == {"hold", "ncc"} and r["pairs"] == 3
    text = md.read_text()
    assert "original PatchNet (authors' weights)" in text and "Ratios between methods" in text
    assert "--max-pairs 3" in text and f"{r['machine']['cpu_count']} CPUs" in text
