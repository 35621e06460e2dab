"""The ``patchnet-zoo`` command line.

    patchnet-zoo fit -c recipes/patchnet.yaml            train (LightningCLI; every --trainer.* flag works)
    patchnet-zoo validate -c recipes/patchnet.yaml --ckpt_path CKPT
    patchnet-zoo export CKPT --name patchnet.shared_train --recipe recipes/patchnet.yaml
    patchnet-zoo list [PATTERN] [--pretrained]
    patchnet-zoo publish MODEL --repo-id OWNER/NAME [--revision BRANCH] [--private] [--pin] [--stage-only DIR]
    patchnet-zoo flops [--model NAME] [--json OUT]
    patchnet-zoo demo [--out DIR] [--data DIR] [--sequence NAME]
    patchnet-zoo benchmark short-range [--data DIR] [--split FILE] --gap 10 --json OUT
    patchnet-zoo benchmark ope [--data DIR] [--split FILE] --tracker SPEC [--key-frame-interval N]
                               [--inter METHOD] [--conf-threshold T] --json OUT
    patchnet-zoo track VIDEO --box x,y,w,h [--tracker SPEC] [--key-frame-interval N] [--inter METHOD] --out DIR
    patchnet-zoo benchmark detection [--data DIR] --detector SPEC --key-frame-interval N [--inter METHOD] --json OUT
    patchnet-zoo detect VIDEO --detector SPEC [--key-frame-interval N] [--inter METHOD] --out DIR

Data: ``--data DIR``, else ``$PATCHNET_ZOO_DATA``, else ``../shared/data``. Failures that are the
user's to fix (unknown model, missing file, bad data) print one line to stderr and exit with 2;
set ``PATCHNET_ZOO_DEBUG=1`` to see the traceback instead.

Every command first calls ``patchnet_zoo._runtime.cap_openmp_spinning()`` (before torch loads) and
``tune_cpu_allocator()`` (faster CPU inference on glibc, see that module), and sets
``OPENCV_LOG_LEVEL=ERROR`` unless it is set. Heavy modules are
imported by the command that needs them, so ``--help`` is instant.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__

PROG = "patchnet-zoo"
LIGHTNING_COMMANDS = ("fit", "validate")
DATA_HELP = "data root (default: $PATCHNET_ZOO_DATA, else ../shared/data)"


class CliError(Exception):
    """An error with a one-line message for the user."""


def _data_root(value: str | None) -> Path:
    from .data.readers import default_data_root

    return Path(value) if value else default_data_root()


def _write_json(path: str | Path, obj: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    return path


def _json_default(o: Any):
    if isinstance(o, Path):
        return str(o)
    for attr in ("item", "tolist"):  # numpy / torch scalars and arrays
        if hasattr(o, attr):
            return getattr(o, attr)()
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


def _read_json_object(path: str | None) -> dict:
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no JSON file at {p}")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{p} must hold a JSON object")
    return data


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows.extend(_flatten(v, key + "."))
        else:
            rows.append((key, v))
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)


def print_table(d: dict, file=None) -> None:
    rows = _flatten(d)
    if not rows:
        print("(empty)", file=file)
        return
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {_fmt(v)}", file=file)


# ------------------------------------------------------------------------------------ commands
def run_lightning(argv: Sequence[str]):
    """``fit`` / ``validate``: hand the arguments to ``LightningCLI``; returns the CLI object.

    ``--data DIR`` with an existing directory is shorthand for ``--data.data_root DIR`` (in
    LightningCLI, ``--data`` otherwise names the datamodule)."""
    from lightning.pytorch.cli import LightningCLI

    saved = sys.argv
    sys.argv = [PROG]  # the arguments come from `argv` only (LightningCLI warns when both are set)
    try:
        return LightningCLI(args=list(argv), save_config_kwargs={"overwrite": True})
    finally:
        sys.argv = saved


def _rewrite_data_flag(args: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--data" and i + 1 < len(args) and Path(args[i + 1]).is_dir():
            out.append(f"--data.data_root={args[i + 1]}")
            i += 2
            continue
        if a.startswith("--data=") and Path(a.split("=", 1)[1]).is_dir():
            out.append(f"--data.data_root={a.split('=', 1)[1]}")
        else:
            out.append(a)
        i += 1
    return out


def cmd_export(a: argparse.Namespace) -> int:
    from .hub import export_checkpoint, training_metrics

    metrics = _read_json_object(a.metrics_json) if a.metrics_json else training_metrics(a.ckpt)
    path = export_checkpoint(
        a.ckpt, a.name, recipe=a.recipe, data=a.data, metrics=metrics,
        speed=_read_json_object(a.speed_json), out_dir=a.out_dir, license=a.license,
        hf_repo_id=a.hf_repo_id, hf_revision=a.hf_revision)
    print(path)
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    from .registry import ARCHS, list_models, load_records

    names = list_models(a.pattern, pretrained=a.pretrained)
    if a.pretrained:
        records = load_records()
        for n in names:
            r = records[n]
            metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in r.metrics.items())
            print(f"{n}\t{r.file}\tsha256:{r.sha256[:12]}\t{r.recipe}\t{metrics}")
    else:
        for n in names:
            print(f"{n}\t{ARCHS[n].description}")
    return 0


def cmd_publish(a: argparse.Namespace) -> int:
    from .publish import pin_record, publish, stage

    if a.stage_only:
        for role, path in stage(a.model, a.stage_only, a.repo_id).items():
            print(f"{role}\t{path}")
        return 0
    commit = publish(a.model, a.repo_id, token=a.token, revision=a.revision, private=a.private)
    print(commit)
    if a.pin:
        print(f"pinned {a.repo_id}@{commit} in {pin_record(a.model, a.repo_id, commit)}", file=sys.stderr)
    else:
        print(f"pin it: patchnet-zoo publish {a.model} --repo-id {a.repo_id} --pin, or set hf_repo_id/hf_revision "
              f"in the record", file=sys.stderr)
    return 0


def _registry():
    from . import registry

    return registry


def cmd_flops(a: argparse.Namespace) -> int:
    model = _registry().create_model(a.model)  # an unknown name fails here, before anything heavy
    from .eval.flops import flops_report

    report = flops_report(model)
    print(f"# {a.model}")
    print_table(dict(report))
    if a.json:
        print(f"wrote {_write_json(a.json, report)}", file=sys.stderr)
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from .demo import run_demo

    result = run_demo(a.out, data_root=_data_root(a.data), sequence=a.sequence, weights=a.weights)
    print(json.dumps(result, indent=2, default=_json_default))
    return 0


def cmd_short_range(a: argparse.Namespace) -> int:
    from .eval.short_range import run_short_range

    result = run_short_range(_data_root(a.data), a.split, a.gap, a.methods, a.max_pairs,
                             response_size=a.response_size, progress=not a.no_progress)
    print_table(dict(result) if isinstance(result, dict) else {"result": result})
    print(f"wrote {_write_json(a.json, result)}", file=sys.stderr)
    return 0


# -------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="PatchNet model zoo: run an expensive detector or tracker on key frames only and\n"
                    "PatchNet in between. Train, export, publish, inspect and benchmark the models;\n"
                    "track or detect in videos.",
        epilog="Run `patchnet-zoo COMMAND --help` for the options of one command.\n"
               "Data: --data DIR, else $PATCHNET_ZOO_DATA, else ../shared/data.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="PyTorch intra-op threads (default: PyTorch's choice)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for name, what in (("fit", "train a model"), ("validate", "evaluate a checkpoint on the validation split")):
        sub.add_parser(
            name, add_help=False,
            help=f"{what} with LightningCLI (e.g. -c recipes/patchnet.yaml)",
            description=f"{what.capitalize()}. All arguments go to LightningCLI: `patchnet-zoo {name} --help` "
                        "lists them. --data DIR is shorthand for --data.data_root DIR.")

    e = sub.add_parser("export", help="package a Lightning checkpoint as safetensors + weights record",
                       description="Strip the checkpoint to the PatchNet weights, save "
                                   "patchnet_zoo/weights/NAME.safetensors and its record NAME.json "
                                   "(sha256, config, metrics, FLOPs, speed, recipe, data).")
    e.add_argument("ckpt", metavar="CKPT", help="Lightning checkpoint of a PatchNetTask")
    e.add_argument("--name", required=True, help="arch.tag, e.g. patchnet.shared_train")
    e.add_argument("--recipe", required=True, help="the recipe that trained it, e.g. recipes/patchnet.yaml")
    e.add_argument("--data", default="../shared/data (splits/train.txt)", metavar="TEXT",
                   help="description of the training data for the record (default: %(default)s)")
    e.add_argument("--metrics-json", metavar="FILE", help="JSON object of evaluation metrics to record "
                   "(default: the last epoch's val/* metrics from the metrics.csv of the checkpoint's run)")
    e.add_argument("--speed-json", metavar="FILE", help="JSON object of timings (with a 'device') to record")
    e.add_argument("--out-dir", metavar="DIR", default=None, help="where to write (default: the packaged patchnet_zoo/weights)")
    e.add_argument("--license", default="MIT", help="licence of the weights (default: %(default)s)")
    e.add_argument("--hf-repo-id", default=None, metavar="OWNER/NAME",
                   help="Hugging Face Hub repo that mirrors the file (`patchnet-zoo publish` fills it with --pin)")
    e.add_argument("--hf-revision", default=None, metavar="COMMIT", help="pinned Hub revision (a commit hash)")
    e.set_defaults(func=cmd_export)

    ls = sub.add_parser("list", help="list architectures, or pretrained weights with --pretrained",
                        description="List architectures (name and what it is), or with --pretrained the "
                                    "checkpoints (name, file, sha256, recipe, metrics). Example: "
                                    "patchnet-zoo list 'patchnet_no*' --pretrained")
    ls.add_argument("pattern", nargs="?", default="*", metavar="PATTERN",
                    help="shell-style pattern on the names (default: all)")
    ls.add_argument("--pretrained", action="store_true", help="list arch.tag names that have weights")
    ls.set_defaults(func=cmd_list)

    pub = sub.add_parser(
        "publish", help="push a checkpoint to the Hugging Face Hub with its model card",
        description="Upload MODEL's weights (model.safetensors, byte for byte the recorded file), config.json, a "
                    "model card rendered from its weights record (README.md) and the record itself, in one commit. "
                    "Prints the commit hash to pin as the record's hf_revision.",
        epilog="The endpoint is $HF_ENDPOINT (default: the public Hub); the token is --token, else $HF_TOKEN or "
               "the one saved by `hf auth login`. Example: patchnet-zoo publish patchnet.shared_train "
               "--repo-id my-org/patchnet --pin")
    pub.add_argument("model", metavar="MODEL", help="arch.tag with weights (`patchnet-zoo list --pretrained`), or an arch")
    pub.add_argument("--repo-id", required=True, metavar="OWNER/NAME", help="Hub model repository (created if needed)")
    pub.add_argument("--revision", default=None, metavar="BRANCH", help="branch to commit to (default: main)")
    pub.add_argument("--private", action="store_true", help="create the repository private (ignored if it exists)")
    pub.add_argument("--token", default=None, help="Hub access token (default: $HF_TOKEN or the saved login)")
    pub.add_argument("--pin", action="store_true",
                     help="write hf_repo_id and the new commit into the packaged weights record")
    pub.add_argument("--stage-only", default=None, metavar="DIR",
                     help="write the repository's files into DIR and upload nothing (to inspect the card)")
    pub.set_defaults(func=cmd_publish)

    f = sub.add_parser("flops", help="multiply-accumulates (MACs) and parameters of a model",
                       description="Count the multiply-accumulates of one match (1 MAC = 2 FLOPs) and the parameters "
                                   "of a model, per stage, and print them as a table (no weights needed).")
    f.add_argument("--model", default="patchnet", metavar="NAME", help="arch or arch.tag (default: %(default)s)")
    f.add_argument("--json", metavar="OUT", help="also write the report as JSON")
    f.set_defaults(func=cmd_flops)

    d = sub.add_parser("demo", help="run PatchNet on a real sequence and write an annotated result",
                       description="Track one sequence with key frames + PatchNet and write the outputs to --out.")
    d.add_argument("--out", default="runs/demo", metavar="DIR", help="output folder (default: %(default)s)")
    d.add_argument("--data", default=None, metavar="DIR", help=DATA_HELP)
    d.add_argument("--sequence", default=None, metavar="NAME", help="sequence to run (default: the demo's choice)")
    d.add_argument("--weights", default=None, metavar="FILE", help="local safetensors file instead of the packaged weights")
    d.set_defaults(func=cmd_demo)

    b = sub.add_parser("benchmark", help="benchmarks that regenerate the result tables",
                       description="Benchmarks that write the JSON behind docs/results. Run "
                                   "`patchnet-zoo benchmark BENCHMARK --help` for the options of one.")
    bsub = b.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    sr = bsub.add_parser("short-range", help="miss rate of box propagation over a fixed frame gap",
                         description="Short-range matching: propagate the ground-truth box GAP frames ahead "
                                     "with each method and report miss rates; writes JSON.")
    sr.add_argument("--data", default=None, metavar="DIR", help=DATA_HELP)
    sr.add_argument("--split", default="val", metavar="FILE",
                    help="split file, or a name in DATA/splits (default: %(default)s)")
    sr.add_argument("--gap", type=int, default=10, metavar="N", help="frames between template and search (default: %(default)s)")
    sr.add_argument("--json", required=True, metavar="OUT", help="where to write the results")
    sr.add_argument("--methods", nargs="+", default=None, metavar="METHOD", help="methods to compare (default: all)")
    sr.add_argument("--max-pairs", type=int, default=None, metavar="N", help="cap on evaluated pairs (default: all)")
    sr.add_argument("--response-size", type=int, default=7, metavar="R",
                    help="PatchNet response size, odd (default: %(default)s = the paper's window, 1.86x the "
                         "box; 13 = 2.61x; 25 = 4.11x, the Siamese trackers' search region; same weights); NCC "
                         "searches the same window")
    sr.add_argument("--no-progress", action="store_true", help="no progress bar")
    sr.set_defaults(func=cmd_short_range)
    from .tracking_cli import add_ope_parser, add_track_parser  # light: the commands import the rest

    add_ope_parser(bsub, DATA_HELP)
    add_track_parser(sub)
    from .detection_cli import add_benchmark_detection_parser, add_detect_parser

    add_benchmark_detection_parser(bsub, DATA_HELP)
    add_detect_parser(sub)
    return p


def _fail(msg: str) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return 2


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is at each message (a caller may replace it between runs)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler's own assignment; the stream is always sys.stderr
        pass


def _log_to_stderr() -> None:
    """The package's messages from INFO up on stderr, as ``patchnet-zoo: ...`` (a first compile that
    takes some seconds says so), through one handler however often ``main`` runs in a process."""
    log = logging.getLogger("patchnet_zoo")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())
    log.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``patchnet-zoo``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("PATCHNET_ZOO_DEBUG", "").lower() in {"1", "true", "yes", "on"}
    from ._runtime import cap_openmp_spinning, set_threads, tune_cpu_allocator

    cap_openmp_spinning()  # before anything loads torch
    # before anything loads OpenCV: its DNN module warns on every NanoTrack load that "targets are
    # not supported by the new graph engine", which says nothing to act on (set it to see them)
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    _log_to_stderr()

    # global options before the command
    threads = None
    while argv and argv[0].startswith("--threads"):
        tok = argv.pop(0)
        if "=" in tok:
            val = tok.split("=", 1)[1]
        elif argv:
            val = argv.pop(0)
        else:
            return _fail("--threads needs a number")
        try:
            threads = int(val)
        except ValueError:
            return _fail(f"--threads needs a number, got {val!r}")
    try:
        if argv and argv[0] in LIGHTNING_COMMANDS:
            tune_cpu_allocator()
            set_threads(threads)
            run_lightning([argv[0], *_rewrite_data_flag(argv[1:])])
            return 0
        args = build_parser().parse_args(argv)
        tune_cpu_allocator()
        set_threads(threads)
        return int(args.func(args) or 0)
    except (ValueError, OSError) as e:
        if debug:
            raise
        msg = str(e).strip().splitlines()
        return _fail(" ".join(m.strip() for m in msg) or type(e).__name__)
    except ImportError as e:
        if debug:
            raise
        return _fail(f"this command needs a module that is not available ({e})")


if __name__ == "__main__":
    sys.exit(main())
