"""The documentation: every example runs, every command parses, and the site builds without warnings.

* Every ```python block of ``docs/**/*.md`` and ``README.md`` runs, the blocks of one page in
  sequence in one fresh process (offline, from the repository root, on the real data). A block
  that must not run is preceded by ``<!-- docs-test: no-run (why) -->``; the reason is required.
* Every ``patchnet-zoo`` command of a ```bash block is checked: ``fit`` / ``validate`` through
  LightningCLI's ``--print_config`` (the recipes and every flag are parsed, nothing trains), the
  others through the CLI's parser; the cheap read-only ones (``list``, ``flops``) really run.
* ``docs/zoo.md`` and ``docs/results.md`` match what ``python -m patchnet_zoo.docs_gen`` writes.
* ``mkdocs build --strict`` succeeds.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NO_RUN = re.compile(r"<!--\s*docs-test:\s*no-run\s*\((?P<why>[^)]+)\)\s*-->")
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```\s*$", re.S | re.M)


def doc_pages() -> list[Path]:
    return sorted((REPO_ROOT / "docs").rglob("*.md")) + [REPO_ROOT / "README.md"]


def blocks(page: Path, lang: str) -> list[tuple[int, str, str | None]]:
    """``(line, code, no_run_reason)`` of every fenced block of ``lang`` in ``page``."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        if m.group("info").strip().split(" ")[0] != lang:
            continue
        before = text[:m.start()].rstrip().splitlines()
        marker = NO_RUN.search(before[-1]) if before else None
        out.append((text.count("\n", 0, m.start()) + 1, m.group("body"), marker.group("why") if marker else None))
    return out


def _rel(page: Path) -> str:
    return page.relative_to(REPO_ROOT).as_posix()


PYTHON_PAGES = [p for p in doc_pages() if any(reason is None for _, _, reason in blocks(p, "python"))]


def _env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_no_run_markers_are_rare_and_justified():
    skipped = [(_rel(p), line, why) for p in doc_pages() for line, _, why in blocks(p, "python") if why]
    total = sum(len(blocks(p, "python")) for p in doc_pages())
    assert total >= 10, f"only {total} python blocks found: is the fence parser broken?"
    assert len(skipped) <= max(2, total // 10), skipped
    assert all(len(why.strip()) >= 20 for _, _, why in skipped), skipped


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=_rel)
def test_python_examples_run(page, tmp_path):
    runnable = [(line, code) for line, code, why in blocks(page, "python") if why is None]
    script = ["import sys, traceback", "__ns = {'__name__': '__main__'}"]
    for line, code in runnable:
        script += [f"print('--- block at line {line}', flush=True)",
                   "try:", f"    exec(compile({code!r}, {f'{_rel(page)}:{line}'!r}, 'exec'), __ns)",
                   "except BaseException:", f"    traceback.print_exc(); print('FAILED block at line {line}'); sys.exit(1)"]
    r = subprocess.run([sys.executable, "-c", "\n".join(script)], capture_output=True, text=True, cwd=REPO_ROOT,
                       env=_env(), timeout=240)
    assert r.returncode == 0, f"{_rel(page)}:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"


# ------------------------------------------------------------------------------- bash commands
def cli_commands() -> list[tuple[str, list[str]]]:
    """``(where, argv)`` of every ``patchnet-zoo`` command in a ```bash block."""
    out = []
    for page in doc_pages():
        for line, code, why in blocks(page, "bash"):
            if why:
                continue
            for cmd in code.replace("\\\n", " ").splitlines():
                try:
                    argv = shlex.split(cmd, comments=True)
                except ValueError as e:
                    raise AssertionError(f"{_rel(page)}:{line}: cannot split {cmd!r}: {e}") from e
                if argv and argv[0] == "patchnet-zoo":
                    out.append((f"{_rel(page)}:{line}", argv[1:]))
    return out


def test_cli_commands_in_the_docs_parse():
    from patchnet_zoo import cli

    commands = cli_commands()
    assert commands, "no patchnet-zoo commands found in the docs"
    parser = cli.build_parser()
    lightning, ran = [], 0
    for where, argv in commands:
        if argv[0] in cli.LIGHTNING_COMMANDS:
            lightning.append((where, argv))
            continue
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:
            raise AssertionError(f"{where}: `patchnet-zoo {' '.join(argv)}` does not parse") from e
        if args.command in ("list", "flops"):
            assert cli.main(argv) == 0, f"{where}: `patchnet-zoo {' '.join(argv)}` failed"
            ran += 1
    assert ran >= 1
    if not lightning:
        return
    # LightningCLI parses the recipes and every flag and prints the config; nothing trains
    code = ("import json, sys, contextlib, io\nfrom patchnet_zoo import cli\nbad = []\n"
            f"for where, argv in {lightning!r}:\n"
            "    out = io.StringIO()\n"
            "    try:\n"
            "        with contextlib.redirect_stdout(out):\n"
            "            cli.main(list(argv) + ['--print_config'])\n"
            "        bad.append([where, 'did not exit after --print_config'])\n"
            "    except SystemExit as e:\n"
            "        if e.code not in (0, None) or 'trainer:' not in out.getvalue():\n"
            "            bad.append([where, f'exit {e.code}'])\n"
            "print(json.dumps(bad))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, env=_env(),
                       timeout=240)
    assert r.returncode == 0, r.stderr[-4000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [], r.stderr[-4000:]


# ----------------------------------------------------------------------------------- the site
def test_generated_pages_are_up_to_date():
    from patchnet_zoo.docs_gen import generate

    stale = generate(check=True)
    assert not stale, f"run `python -m patchnet_zoo.docs_gen` to refresh {[str(p) for p in stale]}"


def test_nav_names_every_page():
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("", lambda loader, suffix, node: None)  # mkdocs' !ENV etc.
    config = yaml.load((REPO_ROOT / "mkdocs.yml").read_text(), Loader=_Loader)

    def walk(nav):
        for item in nav:
            for value in (item.values() if isinstance(item, dict) else [item]):
                yield from (walk(value) if isinstance(value, list) else [value])

    in_nav = set(walk(config["nav"]))
    pages = {p.relative_to(REPO_ROOT / "docs").as_posix() for p in (REPO_ROOT / "docs").rglob("*.md")}
    # a results page the benchmarks add is reachable from the generated results overview at once
    linked = set(re.findall(r"\]\((results/[^)]+\.md)\)", (REPO_ROOT / "docs" / "results.md").read_text()))
    missing = pages - in_nav - linked
    assert not missing, f"add these pages to the nav in mkdocs.yml: {sorted(missing)}"


def test_mkdocs_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed: `pip install -e '.[docs]'` (make test does)")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed: `pip install -e '.[docs]'`")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO_ROOT / "mkdocs.yml"),
                        "-d", str(tmp_path / "site")], capture_output=True, text=True, cwd=REPO_ROOT,
                       env=dict(_env(), NO_MKDOCS_2_WARNING="1"), timeout=240)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "WARNING" not in r.stderr, r.stderr[-4000:]
    site = tmp_path / "site"
    for page in ("index.html", "quickstart/index.html", "zoo/index.html", "api/index.html",
                 "guides/publish_weights/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "index.html").read_text()
    assert "create_model" in api and "resolve_weights" in api  # mkdocstrings rendered the docstrings


# ------------------------------------------------------------------------------- CLI help
def _subparsers(parser, prefix=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield prefix + (name,), sub, helps.get(name)
                yield from _subparsers(sub, prefix + (name,))


def test_every_command_and_option_is_explained():
    import argparse

    from patchnet_zoo import cli

    parser = cli.build_parser()
    commands = list(_subparsers(parser))
    assert {c[0][0] for c in commands} >= {"fit", "validate", "export", "list", "publish", "flops", "demo",
                                          "benchmark", "track"}
    problems = []
    for path, sub, help_line in commands:
        where = " ".join(path)
        if not help_line:
            problems.append(f"{where}: no one-line help in `patchnet-zoo --help`")
        if not (sub.description or "").strip():
            problems.append(f"{where}: no description")
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                problems.append(f"{where}: {action.option_strings or action.dest} has no help")
        if sub.add_help:
            text = sub.format_help()
            long = [line for line in text.splitlines() if len(line) > 100]
            if long:
                problems.append(f"{where}: help lines over 100 characters: {long[:1]}")
    assert all(len(line) <= 100 for line in parser.format_help().splitlines())
    assert not problems, "\n".join(problems)
