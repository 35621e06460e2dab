"""Hugging Face Hub publishing and loading, against the loopback Hub stand-in (``hub_server.py``).

The real ``huggingface_hub`` client code runs in fresh processes with ``HF_ENDPOINT`` pointed at
the stand-in (the library reads it at import) and an empty cache; nothing is mocked. Every
pretrained record of the registry is pushed and pulled, so new architectures are covered as soon
as their weights are packaged.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hub_server import LoopbackHub, validate_card_yaml
from patchnet_zoo import hub as zoo_hub
from patchnet_zoo import registry
from patchnet_zoo.registry import WEIGHTS_DIR, get_weights, list_models

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_loopback_test_token"
RECORDS = list_models(pretrained=True)


def repo_for(name: str) -> str:
    return "test-org/" + name.replace(".", "-")


def _client_env(hub: LoopbackHub, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def run_client(hub: LoopbackHub, home: Path, code: str, args: list[str] | None = None, timeout: int = 240):
    """Run ``code`` (or the CLI with ``args``) in a fresh process against the stand-in."""
    cmd = [sys.executable, "-m", "patchnet_zoo.cli", *args] if args else [sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(cmd, capture_output=True, text=True, env=_client_env(hub, home), cwd=REPO_ROOT,
                          timeout=timeout)


def _json_out(r: subprocess.CompletedProcess):
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def hub():
    with LoopbackHub() as h:
        yield h


@pytest.fixture(scope="module")
def pushed(hub, tmp_path_factory):
    """Publish every pretrained record; returns {name: commit}."""
    if not RECORDS:
        pytest.skip("no packaged weights records to publish")
    repos = {n: repo_for(n) for n in RECORDS}
    code = f"""
        import json
        from patchnet_zoo.publish import publish
        from patchnet_zoo.registry import create_model
        out = {{n: publish(n, repo, token={TOKEN!r}) for n, repo in {repos!r}.items()}}
        for n, repo in {repos!r}.items():  # the mixin's own push_to_hub works for every model too
            create_model(n, pretrained=True).push_to_hub(repo + "-mixin", token={TOKEN!r})
        print(json.dumps(out))
    """
    return _json_out(run_client(hub, tmp_path_factory.mktemp("push_home"), code))


@pytest.fixture(scope="module")
def pulled(hub, pushed, tmp_path_factory):
    """Pull every pushed checkpoint into empty caches, in another fresh process, three ways."""
    work = tmp_path_factory.mktemp("pull")
    code = f"""
        import dataclasses, hashlib, json, tempfile
        from pathlib import Path
        import torch
        from huggingface_hub import ModelCard, snapshot_download
        from patchnet_zoo.hub import load_from_hub
        from patchnet_zoo.model_card import validate_card
        from patchnet_zoo.registry import ARCHS, WEIGHTS_DIR, create_model, get_weights

        def same(a, b):
            a, b = a.state_dict(), b.state_dict()
            return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)

        work = Path({str(work)!r})
        out = {{}}
        for name, commit in {pushed!r}.items():
            repo = "test-org/" + name.replace(".", "-")
            rec = get_weights(name)
            ref = create_model(name, pretrained=True)
            snap = Path(snapshot_download(repo, revision=commit, cache_dir=work / "snap" / name))
            res = {{"files": sorted(p.name for p in snap.iterdir()), "snapshot_commit": snap.name}}
            data = (snap / "model.safetensors").read_bytes()
            res["bytes_equal"] = data == (WEIGHTS_DIR / rec.file).read_bytes()
            res["sha256"] = hashlib.sha256(data).hexdigest()
            m = load_from_hub(repo, revision=commit, cache_dir=work / "zoo" / name)
            res["load_from_hub_equal"] = same(m, ref)
            res["load_from_hub_pin"] = [m.weights_record.hf_repo_id, m.weights_record.hf_revision]
            module, attr = ARCHS[rec.arch].builder.split(":")
            cls = getattr(__import__(module, fromlist=[attr]), attr)
            fp = cls.from_pretrained(repo, revision=commit, cache_dir=work / "mixin" / name)
            res["from_pretrained_equal"] = same(fp, ref) and type(fp) is type(ref)
            pushed_by_mixin = cls.from_pretrained(repo + "-mixin", cache_dir=work / "mixin2" / name)
            res["push_to_hub_equal"] = same(pushed_by_mixin, ref)
            # a record that is not packaged resolves to the Hub at its pinned revision
            wd = work / "records" / name
            wd.mkdir(parents=True)
            dataclasses.replace(rec, hf_repo_id=repo, hf_revision=commit).to_json(wd / (name + ".json"))
            res["create_model_from_hub_equal"] = same(create_model(name, pretrained=True, weights_dir=wd), ref)
            text = (snap / "README.md").read_text()
            card = ModelCard(text)
            card.validate()  # the stand-in's /api/validate-yaml, through huggingface_hub's own code
            validate_card(text)
            res["card"] = card.data.to_dict()
            res["card_text"] = text
            out[name] = res
        bad = ModelCard(text.replace("license: mit", "license: mit-ish", 1))
        try:
            bad.validate()
            out["_bad_card"] = "accepted"
        except ValueError as e:
            out["_bad_card"] = str(e)
        print(json.dumps(out))
    """
    return _json_out(run_client(hub, tmp_path_factory.mktemp("pull_home"), code))


# ----------------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("name", RECORDS)
def test_push_stores_the_recorded_bytes_config_card_and_record(hub, pushed, name):
    rec = get_weights(name)
    commit, repo = pushed[name], repo_for(name)
    assert len(commit) == 40 and hub.repos[repo].branches["main"] == commit
    assert hub.file(repo, "model.safetensors", commit) == (WEIGHTS_DIR / rec.file).read_bytes()
    spec = registry.ARCHS[rec.arch]
    config = json.loads(hub.file(repo, "config.json", commit))  # the mixin adds the signature's other defaults
    expected = {**spec.defaults, **registry._thaw(rec.config)}
    assert {k: config.get(k) for k in expected} == expected
    hub_rec = registry.Weights.from_dict(json.loads(hub.file(repo, "weights_record.json", commit)))
    assert hub_rec.sha256 == rec.sha256 and hub_rec.hf_repo_id == repo
    assert dataclasses.replace(hub_rec, hf_repo_id=rec.hf_repo_id, hf_revision=rec.hf_revision) == rec
    assert hub.file(repo, "README.md", commit).decode().startswith("---\n")


@pytest.mark.parametrize("name", RECORDS)
def test_pull_into_an_empty_cache_is_bit_exact(pulled, pushed, name):
    res = pulled[name]
    assert res["files"] == ["README.md", "config.json", "model.safetensors", "weights_record.json"]
    assert res["snapshot_commit"] == pushed[name]
    assert res["bytes_equal"] and res["sha256"] == get_weights(name).sha256
    assert res["load_from_hub_equal"] and res["load_from_hub_pin"] == [repo_for(name), pushed[name]]
    assert res["from_pretrained_equal"] and res["push_to_hub_equal"]
    assert res["create_model_from_hub_equal"]


@pytest.mark.parametrize("name", RECORDS)
def test_model_card_metadata_is_valid_and_from_the_record(pulled, name):
    rec = get_weights(name)
    meta, text = pulled[name]["card"], pulled[name]["card_text"]
    assert meta["license"] == rec.license.lower() and meta["library_name"] == "patchnet_zoo"
    assert meta["pipeline_tag"] == "object-detection" and rec.arch in meta["tags"]
    scores = {m["name"]: m["value"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert scores and all(scores[k] == pytest.approx(rec.metrics[k]) for k in scores)
    assert "val/miss_rate" in scores or not any(k == "val/miss_rate" for k in rec.metrics)
    assert not any("loss" in k for k in scores)
    for section in ("## Intended use", "## How to get started", "## Training data", "## Evaluation",
                    "## Limitations"):
        assert section in text, section
    assert rec.sha256 in text and rec.recipe in text and repo_for(name) in text
    # the benchmark tables that name this checkpoint are in the card
    pages = [p for p in (REPO_ROOT / "docs" / "results").glob("*.md") if rec.name in p.read_text()]
    for page in pages:
        assert f"docs/results/{page.name}" in text


def test_hub_rejects_a_card_with_bad_metadata(pulled):
    assert "license" in pulled["_bad_card"] and "mit-ish" in pulled["_bad_card"]


def test_local_card_validation_can_fail():
    from patchnet_zoo.model_card import render_card, validate_card

    text = str(render_card(get_weights(RECORDS[0]), "o/r"))
    validate_card(text)
    for bad, why in ((text.replace("license: mit", "license: mit-ish", 1), "license"),
                     (text.replace("pipeline_tag: object-detection\n", "", 1), "pipeline_tag"),
                     (text.replace("      value: ", "      value: [", 1), "parse")):
        with pytest.raises(ValueError, match=why):
            validate_card(bad)
        assert validate_card_yaml(bad) or why == "pipeline_tag"  # the stand-in's rules agree


# ------------------------------------------------------------------------------ pinned revision
def test_pinned_revision_keeps_serving_its_bytes(hub, pushed, tmp_path):
    name = RECORDS[0]
    repo, commit = repo_for(name), pushed[name]
    code = f"""
        import dataclasses, json
        from pathlib import Path
        from huggingface_hub import HfApi, hf_hub_download
        from patchnet_zoo.hub import load_from_hub
        from patchnet_zoo.registry import WeightsIntegrityError, create_model, get_weights

        rec = get_weights({name!r})
        raw = bytearray(Path(hf_hub_download({repo!r}, "model.safetensors", revision={commit!r})).read_bytes())
        raw[-1] ^= 0x01  # one bit of one weight
        new = HfApi(token={TOKEN!r}).upload_file(path_or_fileobj=bytes(raw), path_in_repo="model.safetensors",
                                                  repo_id={repo!r}, commit_message="tampered").oid
        out = {{"new": new}}
        tmp = Path({str(tmp_path)!r})
        pinned = Path(hf_hub_download({repo!r}, "model.safetensors", revision={commit!r}, cache_dir=tmp / "c1"))
        latest = Path(hf_hub_download({repo!r}, "model.safetensors", cache_dir=tmp / "c2"))
        out["pinned_unchanged"] = pinned.read_bytes() != bytes(raw)
        out["latest_changed"] = latest.read_bytes() == bytes(raw)
        for label, rev in (("pinned_old", {commit!r}), ("pinned_new", new)):
            wd = tmp / label
            wd.mkdir()
            dataclasses.replace(rec, hf_repo_id={repo!r}, hf_revision=rev).to_json(wd / ({name!r} + ".json"))
            try:
                create_model({name!r}, pretrained=True, weights_dir=wd)
                out[label] = "loaded"
            except WeightsIntegrityError as e:
                out[label] = "sha256 mismatch"
        try:
            load_from_hub({repo!r})  # main: the tampered file no longer matches the record on the Hub
            out["main"] = "loaded"
        except WeightsIntegrityError:
            out["main"] = "sha256 mismatch"
        print(json.dumps(out))
    """
    out = _json_out(run_client(hub, tmp_path / "home", code))
    assert hub.repos[repo].branches["main"] == out["new"] != commit
    assert out["pinned_unchanged"] and out["latest_changed"]
    assert out["pinned_old"] == "loaded"
    assert out["pinned_new"] == "sha256 mismatch" and out["main"] == "sha256 mismatch"


# ------------------------------------------------------------------------------ CLI and errors
def test_cli_publish_to_a_branch_and_errors(hub, tmp_path, capsys):
    name = RECORDS[-1]
    r = run_client(hub, tmp_path / "home", "", ["publish", name, "--repo-id", "cli-org/m", "--token", TOKEN,
                                                "--revision", "dev", "--private"])
    assert r.returncode == 0, r.stderr[-3000:]
    commit = r.stdout.strip().splitlines()[-1]
    repo = hub.repos["cli-org/m"]
    assert repo.private and repo.branches["dev"] == commit and repo.branches["main"] != commit
    assert hub.file("cli-org/m", "model.safetensors", commit) == (WEIGHTS_DIR / get_weights(name).file).read_bytes()
    # no token: the Hub refuses, the CLI says so in one line
    r = run_client(hub, tmp_path / "home", "", ["publish", name, "--repo-id", "cli-org/other"])
    assert r.returncode == 2 and "401" in r.stderr and "Traceback" not in r.stderr
    assert "cli-org/other" not in hub.repos
    # a wrong model name lists the valid ones (before any network access)
    from patchnet_zoo import cli

    assert cli.main(["publish", "patchnet.nope", "--repo-id", "cli-org/x", "--token", TOKEN]) == 2
    err = capsys.readouterr().err
    assert "'patchnet.nope'" in err and "valid names" in err and RECORDS[0] in err


def test_stage_only_writes_the_repository_offline(tmp_path):
    from patchnet_zoo import cli

    assert cli.main(["publish", RECORDS[0], "--repo-id", "o/r", "--stage-only", str(tmp_path / "s")]) == 0
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert files == ["README.md", "config.json", "model.safetensors", "weights_record.json"]
    assert (tmp_path / "s" / "model.safetensors").read_bytes() == (WEIGHTS_DIR / get_weights(RECORDS[0]).file).read_bytes()


def test_offline_error_names_what_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    rec = dataclasses.replace(get_weights(RECORDS[0]), hf_repo_id="someone/patchnet", hf_revision="a" * 40)
    with pytest.raises(FileNotFoundError) as e:
        zoo_hub.resolve_weights(rec, weights_dir=tmp_path / "nothing_packaged",
                                cache_dir=tmp_path / "empty_cache")
    msg = str(e.value)
    for part in (str(tmp_path / "nothing_packaged" / rec.file), "local path", "someone/patchnet",
                 "a" * 40, "model.safetensors", "offline"):
        assert part in msg, part
    with pytest.raises(ValueError, match="pinned revision"):
        zoo_hub.resolve_weights(dataclasses.replace(rec, hf_revision="main"), weights_dir=tmp_path)


def test_unreachable_hub_is_reported(hub, tmp_path):
    code = f"""
        import dataclasses, socket
        from pathlib import Path
        from patchnet_zoo.hub import resolve_weights
        from patchnet_zoo.registry import get_weights
        rec = dataclasses.replace(get_weights({RECORDS[0]!r}), hf_repo_id="someone/gone", hf_revision="b" * 40)
        try:
            resolve_weights(rec, weights_dir={str(tmp_path / "none")!r})
        except FileNotFoundError as e:
            print(str(e).replace("\\n", " "))
    """
    r = run_client(hub, tmp_path / "home", code)
    assert r.returncode == 0, r.stderr[-3000:]
    msg = r.stdout.strip().splitlines()[-1]
    assert "someone/gone" in msg and "b" * 40 in msg and "offline" not in msg


def test_pin_record_writes_the_hub_location(tmp_path):
    from patchnet_zoo.publish import pin_record

    for f in (RECORDS[0] + ".json", get_weights(RECORDS[0]).file):
        (tmp_path / f).write_bytes((WEIGHTS_DIR / f).read_bytes())
    path = pin_record(RECORDS[0], "o/r", "c" * 40, weights_dir=tmp_path)
    rec = registry.Weights.from_json(path)
    assert (rec.hf_repo_id, rec.hf_revision) == ("o/r", "c" * 40)
    assert dataclasses.replace(rec, hf_repo_id=None, hf_revision=None) == dataclasses.replace(
        get_weights(RECORDS[0]), hf_repo_id=None, hf_revision=None)
    with pytest.raises(ValueError, match="commit hash"):
        pin_record(RECORDS[0], "o/r", "main", weights_dir=tmp_path)
