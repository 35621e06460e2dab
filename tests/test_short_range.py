"""Short-range benchmark on a handful of real val pairs (fresh, untrained PatchNets: shape and sanity)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark_scripts import load_benchmark

from patchnet_zoo.data.readers import Sequence, default_data_root, read_sequences
from patchnet_zoo.eval.short_range import (
    BASELINE_METHODS, DECODING_METHODS, EDGE_FOLLOW_METHODS, METHODS, PATCHNET_VARIANTS, build_matchers, load_models,
    reachable, reachable_share, run_short_range, search_window_scale, short_range_pairs, untrained_models,
)
from patchnet_zoo.matching import PatchMatcher
from patchnet_zoo.models.patchnet import PatchNetGeometry

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
        if key in PATCHNET_VARIANTS or key in ("patchnet-edge-follow", "patchnet-rigid-centre"):
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
    assert set(BASELINE_METHODS) | set(PATCHNET_VARIANTS) | set(EDGE_FOLLOW_METHODS) | set(DECODING_METHODS) == set(METHODS)


def test_search_window_and_reachability_helpers():
    assert search_window_scale(7) == pytest.approx(119 / 64)
    assert search_window_scale(13) == pytest.approx(167 / 64)
    for bad in (0, 8, -3, 2.5):
        with pytest.raises(ValueError):
            search_window_scale(bad)
    key = np.array([[100.0, 100.0, 80.0, 40.0]] * 5)  # cells: 10 px wide, 5 px high
    shift = np.array([[0, 0], [34, 0], [36, 0], [0, -17.4], [60, 30]], dtype=float)  # 3.4, 3.6, -3.48, (6, 6) cells
    target = key.copy()
    target[:, :2] += shift
    target[:, 2:] *= 1.3  # a size change around the same centre does not matter ...
    target[:, :2] -= key[:, 2:] * 0.15
    assert reachable(key, target, 7).tolist() == [True, True, False, True, False]
    assert reachable(key, target, 13).tolist() == [True, True, True, True, True]
    assert reachable(key, target, 1).tolist() == [True, False, False, False, False]


def test_pairs_reachable_share_of_the_val_split(val):
    pairs = short_range_pairs(val, gap=10)
    shares = [reachable_share(pairs, 10, r) for r in (7, 13)]
    assert shares == [pytest.approx(0.394, abs=5e-4), pytest.approx(0.581, abs=5e-4)]


def test_matchers_follow_the_response_size():
    models = untrained_models(["patchnet", "no-fourier"])
    given = {"patchnet": models["patchnet"], "no-fourier": PatchMatcher(models["no-fourier"], min_size=3.0)}
    for r in (7, 13):
        matchers, labels, baselines = build_matchers(["patchnet", "no-fourier", "ncc", "kcf", "hold"], given,
                                                     response_size=r)
        scale = PatchNetGeometry(8, 8, r).search_scale
        assert list(matchers) == ["patchnet", "no-fourier"] and list(baselines) == ["ncc", "kcf", "hold"]
        for m in matchers.values():
            assert m.model.geometry.response_size == r and m.search_scale == pytest.approx(scale)
        assert matchers["no-fourier"].min_size == 3.0 and not matchers["no-fourier"].model.fourier
        assert baselines["ncc"].search_scale == pytest.approx(scale)  # ncc: exactly PatchNet's window
        assert baselines["ncc"].search_size == PatchNetGeometry(8, 8, r).search_size
        assert labels == {"patchnet": "given by the caller", "no-fourier": "given by the caller"}
    # same weights at every size
    wide = build_matchers(["patchnet"], given, response_size=13)[0]["patchnet"].model
    assert wide.state_dict().keys() == models["patchnet"].state_dict().keys()
    assert all(a is b for a, b in zip(wide.parameters(), models["patchnet"].parameters()))
    with pytest.raises(ValueError):
        build_matchers(["ncc"], response_size=6)


def test_edge_follow_rows_apply_one_rule_to_patchnet_and_ncc():
    """The windowed rows search once; the edge-follow rows add the same one more search to PatchNet
    (same weights) and to NCC (same window)."""
    models = untrained_models(["patchnet"])
    for methods in (["patchnet", "ncc", *EDGE_FOLLOW_METHODS], list(EDGE_FOLLOW_METHODS)):
        matchers, labels, baselines = build_matchers(methods, models, response_size=13)
        follow = matchers["patchnet-edge-follow"]
        assert follow.edge_follow == 1 and follow.model.geometry.response_size == 13
        assert all(a is b for a, b in zip(follow.model.parameters(), models["patchnet"].parameters()))
        assert labels["patchnet-edge-follow"] == "given by the caller"
        assert baselines["ncc-edge-follow"].edge_follow == 1
        assert baselines["ncc-edge-follow"].search_scale == pytest.approx(search_window_scale(13))
        if "patchnet" in matchers:
            assert matchers["patchnet"].edge_follow == 0 and baselines["ncc"].edge_follow == 0


def test_rigid_centre_row_changes_only_patchnets_decoding():
    models = untrained_models(["patchnet"])
    for methods in (["patchnet", *DECODING_METHODS], list(DECODING_METHODS)):
        matchers, labels, _ = build_matchers(methods, models, response_size=9)
        rigid = matchers["patchnet-rigid-centre"]
        assert rigid.rigid_centre and rigid.edge_follow == 0 and rigid.model.geometry.response_size == 9
        assert all(a is b for a, b in zip(rigid.model.parameters(), models["patchnet"].parameters()))
        assert labels["patchnet-rigid-centre"] == "given by the caller"
        if "patchnet" in matchers:
            assert not matchers["patchnet"].rigid_centre


def test_wide_window_run(crossing):
    common = dict(sequences=crossing, gap=10, max_pairs=3, models=untrained_models(["patchnet"]), progress=False,
                  methods=["patchnet", "ncc", "hold"])
    runs = {r: run_short_range(response_size=r, **common) for r in (7, 13)}
    for r, res in runs.items():
        json.loads(json.dumps(res))
        assert res["response_size"] == r and res["pairs"] == 3
        assert res["search_scale"] == pytest.approx(PatchNetGeometry(8, 8, r).search_scale)
        assert 0.0 <= res["reachable"] <= 1.0
        assert list(res["methods"]) == ["patchnet", "ncc", "hold"]
        assert all(m["matches"] == 3 for m in res["methods"].values())
    assert runs[13]["reachable"] >= runs[7]["reachable"]
    assert runs[7]["methods"]["hold"]["miss_rate"] == runs[13]["methods"]["hold"]["miss_rate"]
    assert runs[13]["methods"]["patchnet"]["ms_per_match_b16"] > 0
    with pytest.raises(ValueError):
        run_short_range(response_size=4, **common)


def test_benchmark_script_writes_json_and_markdown(tmp_path, val):
    mod = load_benchmark("short_range")
    js, md = tmp_path / "sr.json", tmp_path / "sr.md"
    mod.main(["--max-pairs", "3", "--methods", "hold,ncc", "--json", str(js), "--md", str(md), "--no-progress"])
    r = json.loads(js.read_text())
    assert r["pairs"] == 3 and r["gap"] == 10 and list(r["runs"]) == ["7", "13", "25"]
    for key, run in r["runs"].items():
        assert set(run["methods"]) == {"hold", "ncc"} and run["pairs"] == 3
        assert run["response_size"] == int(key) and 0.0 <= run["reachable"] <= 1.0
    # the sweep's windows run the windowed method of --methods alone
    assert sorted(map(int, r["sweep"])) == list(mod.SWEEP_SIZES)
    assert all(set(run["methods"]) == {"ncc"} and run["pairs"] == 3 for run in r["sweep"].values())
    rows = mod.window_rows(r)
    assert [row["response_size"] for row in rows] == sorted([7, 13, 25, *mod.SWEEP_SIZES])
    reach = [row["reachable"] for row in rows]
    assert reach == sorted(reach)  # a wider window reaches at least the targets a narrower one does
    text = md.read_text()
    assert "original PatchNet (authors' weights)" in text and "Ratios between methods" in text
    assert "--max-pairs 3" in text and f"{r['runs']['7']['machine']['cpu_count']} CPUs" in text
    assert "## Paper window (7x7 response, 1.86x the box)" in text
    assert "## Wide window (13x13 response, 2.61x the box), same weights" in text
    assert "## Siamese trackers' window (25x25 response, 4.11x the box), same weights" in text
    assert text.count("Reachable: ") == 3 and "Reachability caps" in text
    assert "119/64 window" in text and "167/64 window" in text and "263/64 window" in text and "UNTRAINED" not in text
    section = text.split("## Miss rate against the window")[1].split("## Notes")[0]
    assert section.count("| 29x29 | 4.61 |") == 1 and section.count("\n| ") == len(rows) + 1  # the header and a row per window
    assert r["windows_plot"] == "sr_windows.png" and (tmp_path / "sr_windows.png").stat().st_size > 10_000
    assert "[miss rate against the window](sr_windows.png)" in section
    assert "## Acceptance checks" not in text  # PatchNet did not run: nothing to check
    # --from-json runs nothing and writes the same page again, the run's own command kept
    again = tmp_path / "again.md"
    mod.main(["--from-json", str(js), "--md", str(again)])
    assert again.read_text() == text.replace("(sr_windows.png)", "(again_windows.png)")
    assert (tmp_path / "again_windows.png").stat().st_size > 10_000
    with pytest.raises(SystemExit, match="not a JSON written by this script"):
        mod.main(["--from-json", str(md), "--md", str(again)])


def _bench_module():
    return load_benchmark("short_range")


def test_acceptance_checks_read_the_ordering_and_the_time_bars_per_window():
    mod = _bench_module()

    def run(r, patchnet, ncc, ms):
        row = {"miss_rate": patchnet, "ms_per_match_b1": ms[0], "ms_per_match_b16": ms[1]}
        others = {k: {"miss_rate": 0.9} for k in ("patch-aggregation", "no-fourier", "kcf", "hold")}
        return {"response_size": r, "search_scale": (64 + 8 * (r - 1) - 1 + 8) / 64, "timing": {"torch_threads": 2},
                "methods": {"patchnet": row, "ncc": {"miss_rate": ncc, "ms_per_match_b1": 1.0,
                                                    "ms_per_match_b16": None}, **others}}

    result = {"split": "val", "gap": 10, "pairs": mod.REFERENCE_PAIRS,
              "runs": {"7": run(7, 0.62, 0.61, (2.5, 1.4)), "25": run(25, 0.37, 0.38, (5.0, 4.0))}}
    lines = mod.acceptance_lines(result)
    assert len(lines) == 4
    assert lines[0].startswith("- 7x7 window") and "**does not hold** (not below: full-template NCC)" in lines[0]
    assert "original PatchNet (reference figure) 0.630" in lines[0]  # the same pairs as the reference
    assert lines[1].startswith("- 25x25 window") and lines[1].endswith("the ordering **holds**.")
    assert "2.50 ms for one box alone (≤ 3 ms: yes)" in lines[2] and "→ **met**" in lines[2]
    assert "set for the paper's window" in lines[2]
    assert "(≤ 3 ms: no)" in lines[3] and "→ **not met**" in lines[3]
    # other pairs: no reference comparison; PatchNet level with a method is not below it
    result["pairs"] = 40
    result["runs"]["25"]["methods"]["ncc"]["miss_rate"] = 0.37
    lines = mod.acceptance_lines(result)
    assert all("reference figure" not in line for line in lines)
    assert "(not below: full-template NCC)" in lines[1]


def test_benchmark_script_untrained_one_size(tmp_path, crossing):
    mod = load_benchmark("short_range")
    js, md = tmp_path / "sr.json", tmp_path / "sr.md"
    mod.main(["--max-pairs", "2", "--methods", "patchnet,hold", "--response-sizes", "13", "--sweep-sizes", "29",
              "--untrained", "--json", str(js), "--md", str(md), "--no-progress"])
    r = json.loads(js.read_text())
    assert list(r["runs"]) == ["13"]
    assert r["runs"]["13"]["methods"]["patchnet"]["weights"] == "untrained (fresh initialisation)"
    assert set(r["sweep"]["29"]["methods"]) == {"patchnet"}  # hold has its own search region: no sweep
    text = md.read_text()
    assert text.startswith("# Short-range") and "UNTRAINED" in text and "Paper window" not in text
    assert "Siamese trackers' window" not in text and "The 25x25 window is" not in text
    for bad in ("9,10", "x"):
        with pytest.raises(SystemExit):
            mod.main(["--sweep-sizes", bad, "--json", str(js), "--md", str(md)])
    with pytest.raises(SystemExit):
        mod.main(["--response-sizes", "7,8", "--json", str(js), "--md", str(md)])


def test_cli_response_size(tmp_path, crossing):
    from patchnet_zoo.cli import build_parser, main

    a = build_parser().parse_args(["benchmark", "short-range", "--json", "x.json"])
    assert a.response_size == 7
    out = tmp_path / "cli.json"
    rc = main(["benchmark", "short-range", "--json", str(out), "--methods", "ncc", "hold", "--max-pairs", "2",
               "--response-size", "13"])
    assert rc == 0
    r = json.loads(out.read_text())
    assert set(r["methods"]) == {"ncc", "hold"}
    assert r["response_size"] == 13 and r["search_scale"] == pytest.approx(167 / 64) and 0 <= r["reachable"] <= 1
    assert main(["benchmark", "short-range", "--json", str(out), "--methods", "hold", "--response-size", "4"]) == 2


def test_benchmark_updates_the_weight_records_it_measured(tmp_path, crossing):
    """--update-records writes the measured figures into the records of the weights that ran."""
    import shutil

    from patchnet_zoo.registry import WEIGHTS_DIR

    weights = tmp_path / "weights"
    weights.mkdir()
    for f in WEIGHTS_DIR.glob("patchnet.shared_train.*"):
        shutil.copy(f, weights / f.name)
    mod = load_benchmark("short_range")
    js, md = tmp_path / "sr.json", tmp_path / "sr.md"
    mod.main(["--max-pairs", "3", "--methods", "patchnet,hold", "--response-sizes", "7", "--sweep-sizes", "", "--weights-dir",
              str(weights), "--update-records", "--json", str(js), "--md", str(md), "--no-progress"])
    run = json.loads(js.read_text())["runs"]["7"]["methods"]["patchnet"]
    rec = json.loads((weights / "patchnet.shared_train.json").read_text())
    assert rec["metrics"]["short_range_gap10_miss_rate_R7"] == round(run["miss_rate"], 4)
    assert rec["speed"]["ms_per_match_b1"] == round(run["ms_per_match_b1"], 2)
    assert "--update-records" in rec["speed"]["source"]
    assert json.loads((WEIGHTS_DIR / "patchnet.shared_train.json").read_text()) != rec  # the package's untouched


def test_weight_records_take_patchnets_row_not_the_edge_follow_row(tmp_path):
    """Both rows run the same weights; the record must quote the one-search protocol of the paper."""
    mod = load_benchmark("short_range")
    (tmp_path / "patchnet.test.json").write_text(json.dumps({"metrics": {}, "speed": {}}))
    row = {"weights": "patchnet.test", "miss_rate": 0.6, "mean_iou": 0.4, "ms_per_match_b1": 2.0,
           "ms_per_match_b16": 1.0}
    follow = dict(row, miss_rate=0.5, mean_iou=0.5, ms_per_match_b1=3.0, ms_per_match_b16=2.0)
    runs = {"7": {"methods": {"patchnet": row, "patchnet-edge-follow": follow}, "machine": {}}}
    mod.update_records(runs, "cmd", weights_dir=tmp_path)
    rec = json.loads((tmp_path / "patchnet.test.json").read_text())
    assert rec["metrics"]["short_range_gap10_miss_rate_R7"] == 0.6
    assert rec["speed"]["ms_per_match_b1"] == 2.0
