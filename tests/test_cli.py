"""The ``patchnet-zoo`` command line: help texts, exit codes, one-line errors, export."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from patchnet_zoo import cli, hub, registry

HELP_CASES = [
    ([], "COMMAND"),
    (["fit"], "--trainer.max_epochs"),        # LightningCLI's own help
    (["validate"], "--ckpt_path"),
    (["export"], "--recipe"),
    (["list"], "--pretrained"),
    (["flops"], "--model"),
    (["demo"], "--sequence"),
    (["benchmark"], "short-range"),
    (["benchmark", "short-range"], "--max-pairs"),
]


def run_cli(args, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "patchnet_zoo.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.parametrize("args,expected", HELP_CASES, ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_help_of_every_command(args, expected, repo_root):
    r = run_cli([*args, "--help"], repo_root)
    assert r.returncode == 0, r.stderr
    assert expected in r.stdout
    assert "Traceback" not in r.stderr


def test_unknown_model_exits_2_with_valid_names(repo_root):
    r = run_cli(["flops", "--model", "patchnet_tiny"], repo_root)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("patchnet-zoo: error: unknown model 'patchnet_tiny'")
    for name in registry.ARCHS:
        assert name in lines[0]


def test_list(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in out] == sorted(registry.ARCHS)
    assert cli.main(["list", "*no_fourier"]) == 0
    assert capsys.readouterr().out.split("\t")[0] == "patchnet_no_fourier"


def test_export_and_list_pretrained(tmp_path, monkeypatch, capsys):
    from test_registry import make_checkpoint

    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setattr(registry, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(hub, "WEIGHTS_DIR", weights)
    make_checkpoint(tmp_path / "run.ckpt", seed=1)
    (tmp_path / "m.json").write_text(json.dumps({"val/miss_rate": 0.125}))
    assert cli.main(["list", "--pretrained"]) == 0
    assert capsys.readouterr().out == ""
    rc = cli.main(["export", str(tmp_path / "run.ckpt"), "--name", "patchnet.cli", "--recipe", "recipes/patchnet.yaml",
                   "--metrics-json", str(tmp_path / "m.json")])
    assert rc == 0
    assert capsys.readouterr().out.strip() == str(weights / "patchnet.cli.json")  # export prints the record
    rec = registry.Weights.from_json(weights / "patchnet.cli.json")
    assert rec.metrics["val/miss_rate"] == 0.125 and rec.data == "../shared/data (splits/train.txt)"
    assert cli.main(["list", "--pretrained"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("patchnet.cli\tpatchnet.cli.safetensors\tsha256:" + rec.sha256[:12])
    assert "val/miss_rate=0.125" in out


@pytest.mark.parametrize("args,fragment", [
    (["export", "missing.ckpt", "--name", "patchnet.x", "--recipe", "r"], "no checkpoint at missing.ckpt"),
    (["export", "missing.ckpt", "--name", "resnet.x", "--recipe", "r"], "arch.tag"),
    (["flops", "--model", "patchnet.nope"], "valid names"),
    (["--threads", "many", "list"], "--threads needs a number"),
])
def test_errors_are_one_line_exit_2(args, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    for args in (["benchmark"], ["nonsense"], ["benchmark", "short-range"]):  # no benchmark / command / --json
        with pytest.raises(SystemExit) as e:
            cli.main(args)
        assert e.value.code == 2


def test_data_dir_shorthand_for_lightning_commands(tmp_path):
    d = str(tmp_path)
    assert cli._rewrite_data_flag(["-c", "r.yaml", "--data", d, "--x", "1"]) == ["-c", "r.yaml", f"--data.data_root={d}", "--x", "1"]
    assert cli._rewrite_data_flag([f"--data={d}"]) == [f"--data.data_root={d}"]
    # a datamodule class name or config file is LightningCLI's business
    assert cli._rewrite_data_flag(["--data", "PairDataModule"]) == ["--data", "PairDataModule"]
    assert cli._rewrite_data_flag(["--data.batch_size", "4"]) == ["--data.batch_size", "4"]


def test_the_packages_progress_messages_reach_stderr_once(capsys):
    """A first ahead-of-time compile takes some seconds: the command line shows the package's INFO
    messages (and its warnings) on stderr, prefixed, through one handler however often it runs."""
    import logging

    assert cli.main(["list"]) == 0
    assert cli.main(["list"]) == 0
    capsys.readouterr()
    logging.getLogger("patchnet_zoo.models.compiled_match").info("compiling the match")
    logging.getLogger("some_other_library").info("not ours")
    err = capsys.readouterr().err
    assert err.splitlines() == ["patchnet-zoo: compiling the match"]


@pytest.mark.parametrize("args", [
    ["track", "video.mp4", "--box", "1,1,5,5", "--out", "out"],
    ["detect", "video.mp4", "--out", "out"],
    ["benchmark", "ope", "--tracker", "kcf", "--json", "out.json"],
    ["benchmark", "detection", "--json", "out.json"],
    ["benchmark", "short-range", "--json", "out.json"],
], ids=lambda a: " ".join(a[:2]))
def test_every_long_command_can_run_without_a_progress_bar(args):
    """Every command that works through videos takes ``--no-progress`` (logs, CI), as the
    benchmark scripts do."""
    assert cli.build_parser().parse_args([*args, "--no-progress"]).no_progress is True
    assert cli.build_parser().parse_args(args).no_progress is False
