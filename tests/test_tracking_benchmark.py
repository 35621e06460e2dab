"""benchmarks/tracking.py: every Table 3 row builds the skip-frame tracker that its label names."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark

REPO = Path(__file__).resolve().parents[1]


def _benchmark():
    return load_benchmark("tracking")


@pytest.fixture(scope="module")
def table3():
    mod = _benchmark()
    args = mod.build_parser().parse_args(["--tables", "3", "--bases", "nanotrack", "--intervals", "6"])
    factories, not_run, layout = mod.plan(args)
    return mod, factories, not_run


@pytest.mark.parametrize("inter, patch_size, zero_mean, rigid, compiled", [
    ("patchnet", 8, False, False, False),
    ("patchnet-compiled", 8, False, False, True),
    ("patchnet-zero-mean", 8, True, False, False),
    ("patchnet-zero-mean-compiled", 8, True, False, True),
    ("patchnet-k4", 4, False, False, False),
    ("patchnet-k4-rigid", 4, False, True, False),
    ("patchnet-k4-rigid-compiled", 4, False, True, True),
    ("patchnet-k4-zero-mean", 4, True, False, False),
    ("patchnet-k4-zero-mean-rigid", 4, True, True, False),
    ("patchnet-k4-zero-mean-rigid-compiled", 4, True, True, True),
])
def test_table3_rows_build_the_named_carrier(table3, inter, patch_size, zero_mean, rigid, compiled):
    mod, factories, not_run = table3
    assert not not_run
    tracker = factories[f"skip/nanotrack/{inter}+conf/N6"]()
    # the paper's fallback and schedule, the search centred on the last box (no lead under the fallback)
    assert tracker.key_frame_interval == 6 and tracker.conf_threshold == mod.CONF
    assert tracker.motion_prior == 0
    matcher = tracker.matcher
    assert matcher.model.geometry.patch_size == patch_size
    assert (matcher.model.patch_norm == "zero_mean") is zero_mean
    assert matcher.rigid_centre is rigid and matcher.compiled is compiled
    assert inter in mod.SKIP_LABELS  # every row has its label in the table


def test_global_compiled_flag_reaches_the_eager_k4_rigid_row_too():
    mod = _benchmark()
    args = mod.build_parser().parse_args(["--tables", "3", "--bases", "nanotrack", "--intervals", "6", "--compiled"])
    factories, _, _ = mod.plan(args)
    assert factories["skip/nanotrack/patchnet-k4-rigid+conf/N6"]().matcher.compiled is True


def test_bar_plot_draws_every_model_through_its_intervals(tmp_path):
    mod = _benchmark()

    def run(success, fps):
        return {"success": success, "fps": fps}

    runs = {"per_frame/nanotrack": run(0.75, 100.0),
            "skip/nanotrack/patchnet-k4+conf/N4": run(0.74, 170.0),
            "skip/nanotrack/patchnet-k4+conf/N6": run(0.73, 190.0),
            "skip/nanotrack/patchnet-k4-rigid-compiled+conf/N6": run(0.735, 200.0)}
    path = mod.plot_skip_frame_bar(runs, tmp_path / "bar.png", title="bar")
    from matplotlib.image import imread

    img = imread(path)
    assert img.shape[0] > 300 and img.shape[1] > 400
    assert img[..., :3].std() > 0.05  # something was drawn, not a blank canvas


@pytest.mark.parametrize("name", ["tracking", "tracking_two_cores", "tracking_second_cpu", "tracking_compiled"])
def test_render_rewrites_the_published_page_from_its_json(tmp_path, name):
    """`--render` rebuilds the tables and plots of a finished run without tracking anything: from
    the published JSON it gives the published markdown back, with its command (and the two-core
    page its OpenMP setting), and every plot."""
    mod = _benchmark()
    result = mod.render(REPO / "docs" / "results" / f"{name}.json", tmp_path, name)
    assert (tmp_path / f"{name}.md").read_text() == (REPO / "docs" / "results" / f"{name}.md").read_text()
    assert f"{name}_skip_frame_nanotrack_bar.png" in result["plots"].values()
    # the command names the OpenMP settings the user made, not those the package set by default
    machine = result["machine"]
    env = {k: v for k, v in machine.get("openmp_env", {}).items() if k not in (machine.get("openmp_defaults") or ())}
    assert ("Command: `GOMP_SPINCOUNT=10000 PYTHONPATH=." in (tmp_path / f"{name}.md").read_text()) == bool(env)
    for name in result["plots"].values():
        assert (tmp_path / name).stat().st_size > 10_000


def test_threads_line_names_both_counts_when_they_differ():
    mod = _benchmark()
    assert mod.build_parser().parse_args(["--opencv-threads", "2"]).opencv_threads == 2
    assert "torch and OpenCV run on 1 thread(s)" in mod._threads_note({"torch_threads": 1, "opencv_threads": 1})
    assert "torch runs on 1 thread(s) and OpenCV on 2" in mod._threads_note({"torch_threads": 1, "opencv_threads": 2})


def test_openmp_settings_of_the_environment_are_recorded_and_stated(monkeypatch):
    """A run under e.g. ``GOMP_SPINCOUNT`` (how long torch's idle threads spin, which changes a
    two-core run's speed-ups) says so in its JSON and its page; a run without says nothing."""
    from patchnet_zoo.eval.machine import OPENMP_SETTINGS, machine_info

    from patchnet_zoo import _runtime

    mod = _benchmark()
    monkeypatch.setattr(_runtime, "_openmp_defaults", {})  # as if the user had set them
    for key in OPENMP_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    plain = machine_info()
    assert "openmp_env" not in plain and "OpenMP" not in mod._threads_note(plain)
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")
    info = machine_info()
    assert info["openmp_env"] == {"GOMP_SPINCOUNT": "10000"}
    assert "(torch's OpenMP: GOMP_SPINCOUNT=10000)" in mod._threads_note(info)


def test_the_benchmarks_own_openmp_default_is_stated_but_not_put_in_front_of_the_command(monkeypatch):
    """The spin cap the benchmark sets itself (``_runtime.cap_openmp_spinning``) is named as the
    package's default on the page, and left out of the command: running the command sets it again."""
    from patchnet_zoo import _runtime
    from patchnet_zoo.eval.machine import machine_info

    mod = _benchmark()
    monkeypatch.setattr(_runtime, "_openmp_defaults", {"GOMP_SPINCOUNT": "10000"})
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")
    info = machine_info()
    assert info["openmp_defaults"] == ["GOMP_SPINCOUNT"]
    assert "(torch's OpenMP: GOMP_SPINCOUNT=10000, the package's default)" in mod._threads_note(info)
    result = json.loads((REPO / "docs" / "results" / "tracking_two_cores.json").read_text())
    command = "PYTHONPATH=. python benchmarks/tracking.py --threads 2"
    user_set = mod.to_markdown(result, command)
    assert f"Command: `GOMP_SPINCOUNT=10000 {command}`" in user_set
    result["machine"]["openmp_defaults"] = ["GOMP_SPINCOUNT"]
    assert f"Command: `{command}`" in mod.to_markdown(result, command)


def test_paper_protocol_check_uses_the_fallback_run_closest_to_the_matched_interval():
    """The paper's Table 4 matched intervals only roughly (PatchNet 4.2, KCF 3.7): the check picks
    the fallback run whose effective interval is nearest the matched one and says who it beats."""
    mod = _benchmark()

    def run(success, interval):
        return {"success": success, "effective_interval": interval}

    runs = {"skip/nanotrack/patchnet+conf/N3": run(0.80, 2.6), "skip/nanotrack/patchnet+conf/N6": run(0.70, 4.2)}
    others = {"hold": run(0.5, 3.96), "kcf": run(0.72, 3.96), "mosse": None}
    (line,) = mod._paper_protocol_check(runs, 4, others)
    assert "max N = 6" in line and "0.700 at an effective interval of 4.20" in line
    assert "hold 0.500 at 3.96 (beaten)" in line and "kcf 0.720 at 3.96 (NOT beaten)" in line
    assert "mosse" not in line
    assert mod._paper_protocol_check({}, 4, others) == []
    # a fallback run far from the matched interval is no match
    assert mod._paper_protocol_check({"skip/nanotrack/patchnet+conf/N4": run(0.8, 2.5)}, 4, others) == []


def test_one_carrier_check_needs_table_3s_bar_and_table_4s_ordering_from_the_same_carrier():
    """A carrier passes only if one of its fallback runs meets all three of Table 3's bars and its
    row between the same key frames beats hold, MOSSE and KCF*; carriers without both kinds of row
    are not judged."""
    mod = _benchmark()

    def run(success, interval=3.96, fps=100.0):
        return {"success": success, "effective_interval": interval, "fps": fps}

    pf = run(0.75, 1.0, 100.0)
    others = {"hold": run(0.5), "kcf": run(0.72), "mosse": run(0.55)}
    runs = {
        "skip/nanotrack/patchnet-zero-mean+conf/N3": run(0.74, 2.9, 170.0),  # too slow
        "skip/nanotrack/patchnet-zero-mean+conf/N6": run(0.73, 5.3, 200.0),  # 97.3 %, 2.0x
        "inter/nanotrack/patchnet-zero-mean/N4": run(0.731),
        "skip/nanotrack/patchnet+conf/N6": run(0.74, 4.2, 190.0),
        "inter/nanotrack/patchnet/N4": run(0.70),  # below KCF*
        "skip/nanotrack/patchnet-k4+conf/N6": run(0.72, 4.1, 190.0),  # 96 %
        "inter/nanotrack/patchnet-k4/N4": run(0.80),
        "inter/nanotrack/patchnet-lead/N4": run(0.80),  # no Table 3 rows: not judged
    }
    lines = mod._one_carrier_checks(runs, 4, others, pf)
    assert len(lines) == 3
    zero_mean, = [line for line in lines if "PatchNet zero-mean:" in line]
    assert "met at max N = 6 (97.3 % at 5.30, 2.00×)" in zero_mean and "N = 3" not in zero_mean
    assert "0.731, above hold 0.500, kcf 0.720, mosse 0.550" in zero_mean and zero_mean.endswith("**both met**.")
    paper, = [line for line in lines if "PatchNet:" in line]
    assert "met at max N = 6" in paper and "not above all of" in paper and paper.endswith("**not both**.")
    k4, = [line for line in lines if "PatchNet K4:" in line]
    assert "not met at any max N" in k4 and k4.endswith("**not both**.")


def test_table4_compiled_twins_are_their_eager_rows_compiled():
    """Between the same key frames a compiled twin keeps its eager row's configuration (the
    zero-mean K4 carrier's rigid centre and lead too) and compiles its matches."""
    mod = _benchmark()
    args = mod.build_parser().parse_args(["--tables", "4"])
    factories, _, _ = mod.plan(args)
    for inter in ("patchnet", "patchnet-zero-mean", "patchnet-k4-zero-mean-rigid"):
        eager, twin = (factories[f"inter/nanotrack/{i}/N4"]() for i in (inter, inter + mod.COMPILED))
        assert twin.matcher.compiled is True and eager.matcher.compiled is False
        assert twin.matcher.model.patch_norm == eager.matcher.model.patch_norm
        assert twin.matcher.rigid_centre is eager.matcher.rigid_centre
        assert twin.motion_prior == eager.motion_prior and twin.conf_threshold is None
        assert inter + mod.COMPILED in mod.INTER_LABELS
