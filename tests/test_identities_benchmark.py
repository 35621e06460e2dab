"""benchmarks/identities.py end to end on a few real MOT frames: every configuration gets a row,
the per-frame row is the reference of the speed-ups, and --from-json re-writes the same page."""
from __future__ import annotations

import json

import pytest
from benchmark_scripts import load_benchmark


def _benchmark():
    return load_benchmark("identities")


def test_identities_benchmark_runs_and_renders(data_root, tmp_path):
    if not (data_root / "mot" / "TUD-Campus").is_dir():
        pytest.skip("no MOTChallenge sequences in the data root")
    mod = _benchmark()
    try:
        result = mod.main(["--data", str(data_root), "--max-frames", "7", "--intervals", "3", "--repeats", "1",
                           "--out", str(tmp_path / "run")])
    except FileNotFoundError as e:
        pytest.skip(f"FastestDet weights missing: {e}")
    runs = result["runs"]
    assert list(runs) == ["per-frame"] + [f"{c}/N3" for c in mod.CARRIERS]
    assert runs["per-frame"]["speedup"] == pytest.approx(1.0)
    for r in runs.values():
        assert 0.0 <= r["idf1"] <= 1.0 and set(r["per_sequence"]) == set(mod.SEQUENCES)
    assert runs["hold/N3"]["per_sequence"]["TUD-Campus"]["key_frames"] == 3  # frames 0, 3, 6
    md = (tmp_path / "run" / "identities.md").read_text()
    rows = md.splitlines()
    assert sum(r.startswith("| every 3rd |") for r in rows) == len(mod.CARRIERS)
    assert sum(r.startswith("| TUD-Campus | every 3rd |") for r in rows) == len(mod.CARRIERS)
    assert (tmp_path / "run" / "identities.png").stat().st_size > 10_000
    mod.main(["--from-json", str(tmp_path / "run" / "identities.json"), "--out", str(tmp_path / "again")])
    assert (tmp_path / "again" / "identities.md").read_text() == md
    assert json.loads((tmp_path / "again" / "identities.json").read_text())["runs"].keys() == runs.keys()
