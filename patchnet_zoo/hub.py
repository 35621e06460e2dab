"""Shipping weights: turn a Lightning checkpoint into a packaged safetensors file plus its record,
and find a record's file again (packaged file > local path > Hugging Face Hub at a pinned revision).

A Hub repository holds one checkpoint in the layout of ``PyTorchModelHubMixin`` (``model.safetensors``
and ``config.json``, so ``PatchNet.from_pretrained(repo_id)`` works), plus the model card
(``README.md``) and the weights record (``weights_record.json``). ``model.safetensors`` is the
packaged file byte for byte, so the record's sha256 checks a download too.
``patchnet_zoo.publish`` writes such a repository; ``load_from_hub`` reads one.

Nothing here imports torch, safetensors or huggingface_hub until it is used.
"""
from __future__ import annotations

import inspect
import os
import platform
import re
from pathlib import Path
from typing import Any, Mapping

from .registry import ARCHS, WEIGHTS_DIR, Weights, load_state_dict_strict, sha256_file, split_name

__all__ = ["export_checkpoint", "resolve_weights", "load_from_hub", "is_offline", "cpu_name", "HUB_WEIGHTS_FILE",
           "HUB_CONFIG_FILE", "HUB_RECORD_FILE", "HUB_CARD_FILE"]

HUB_WEIGHTS_FILE = "model.safetensors"  # PyTorchModelHubMixin's file name
HUB_CONFIG_FILE = "config.json"  # PyTorchModelHubMixin's config (the model's __init__ arguments)
HUB_RECORD_FILE = "weights_record.json"
HUB_CARD_FILE = "README.md"

_TRUE = {"1", "on", "yes", "true"}


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (read now, not at import) asks for no network access."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def cpu_name() -> str:
    """A readable CPU model name, for the ``device`` of CPU timings."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _patchnet_init_args() -> set[str]:
    from .models.patchnet import PatchNet

    return {p for p in inspect.signature(PatchNet.__init__).parameters if p != "self"}


def _arch_init_args(arch: str) -> set[str]:
    """The ``__init__`` arguments of the model class that builds ``arch``."""
    import importlib

    module, attr = ARCHS[arch].builder.split(":")
    cls = getattr(importlib.import_module(module), attr)
    return {p for p in inspect.signature(cls.__init__).parameters if p != "self"}


def _count_flops(model) -> dict:
    if hasattr(model, "macs_summary"):  # models that count their own cost (per depth, ...)
        return dict(model.macs_summary())
    try:
        from .eval.flops import count_patchnet_flops
    except ImportError:
        return {}
    flops = count_patchnet_flops(model)
    if isinstance(flops, Mapping):
        return {k: (v if isinstance(v, (int, float, str, bool, dict, list)) or v is None else float(v))
                for k, v in flops.items()}
    return {"total": int(flops)}


def _short_float32(x: float) -> float:
    """The shortest decimal that is the same float32 (123.675, not 123.67500305175781)."""
    import numpy as np

    return float(np.format_float_positional(np.float32(x), unique=True))


def read_checkpoint(path: str | Path, arch: str = "patchnet") -> tuple[dict, dict]:
    """PatchNet weights and init args from a Lightning checkpoint of ``PatchNetTask`` (keys
    ``model.*``, args from ``hyper_parameters``) or from a plain state dict (no args)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, Mapping):
        raise ValueError(f"{path} holds no state dict")
    state = ckpt.get("state_dict", ckpt)
    if any(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    if not state:
        raise ValueError(f"{path} has no PatchNet weights")
    allowed = _arch_init_args(arch)
    config = {k: v for k, v in dict(ckpt.get("hyper_parameters") or {}).items() if k in allowed}
    return state, config


TRAINING_METRICS_NOTE = ("val/* = 512 fixed val-split pairs (gap 0-11, window moved to contain the target); "
                         "the short-range benchmark is in docs/results/short_range.md")


def training_metrics(ckpt_path: str | Path) -> dict[str, Any]:
    """The last epoch's validation metrics (and training loss) that Lightning's CSV logger wrote
    beside ``ckpt_path`` (``<version>/metrics.csv`` for ``<version>/checkpoints/x.ckpt``), rounded
    to 4 digits; empty when there is no such file. What ``patchnet-zoo export`` records by default."""
    import csv

    path = Path(ckpt_path).parent.parent / "metrics.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))

    def last_row(key: str) -> dict | None:
        return next((r for r in reversed(rows) if r.get(key)), None)

    out: dict[str, Any] = {}
    val, train = last_row("val/miss_rate"), last_row("train/loss_epoch")
    if val is not None:
        out["epoch"] = float(val["epoch"])
        out.update({k: round(float(v), 4) for k, v in val.items() if k.startswith("val/") and v})
    if train is not None:
        out["train/loss_epoch"] = round(float(train["train/loss_epoch"]), 4)
    if out:
        out["note"] = TRAINING_METRICS_NOTE
    return out


def export_checkpoint(ckpt_path: str | Path, name: str, recipe: str, data: str,
                      metrics: Mapping[str, Any] | None = None, speed: Mapping[str, Any] | None = None,
                      out_dir: str | Path | None = None, *, license: str = "MIT",
                      hf_repo_id: str | None = None, hf_revision: str | None = None) -> Path:
    """Write ``<out_dir>/<name>.safetensors`` and its record ``<out_dir>/<name>.json``; returns the
    record's path.

    ``ckpt_path`` is a Lightning checkpoint of ``PatchNetTask`` (``state_dict`` keys ``model.*``,
    ``hyper_parameters`` holding the model arguments), read with ``read_checkpoint`` (tensors and
    plain values only, ``weights_only=True``). ``name`` is ``arch.tag``; the checkpoint's ``fourier`` and
    ``box_regression`` must agree with the arch. ``out_dir`` defaults to the packaged
    ``patchnet_zoo/weights``.
    """
    from safetensors.torch import save_file

    arch, tag = split_name(name)
    if arch not in ARCHS or not tag or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]*", tag):
        raise ValueError(f"export name must be 'arch.tag' with arch one of {sorted(ARCHS)}; got {name!r}")
    state, config = read_checkpoint(ckpt_path, arch)
    allowed = _arch_init_args(arch)
    spec = ARCHS[arch]
    for k, v in spec.defaults.items():
        if k in config and config[k] != v:
            raise ValueError(f"{ckpt_path} has {k}={config[k]} but arch {arch!r} has {k}={v}; "
                             f"export it under the matching arch name")
    for k in ("fourier", "box_regression"):
        if k in allowed and k not in spec.defaults and config.get(k, True) is not True:
            raise ValueError(f"{ckpt_path} has {k}={config[k]} but arch {arch!r} has {k}=True; "
                             f"export it under the matching arch name")
    model = spec.build(**config)
    # the packaged mean is whatever the checkpoint holds; record it so the config rebuilds the model
    model.load_state_dict(state, strict=True)
    if "pixel_mean" in allowed:
        config["pixel_mean"] = [_short_float32(x) for x in model.pixel_mean.flatten().tolist()]

    out_dir = Path(out_dir) if out_dir is not None else WEIGHTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    file = f"{name}.safetensors"
    weights_file = out_dir / file
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    # one metadata key only: safetensors writes its metadata in no fixed order, so more keys would
    # make the bytes (and the sha256 in the record) differ between two exports of one checkpoint
    save_file(tensors, str(weights_file), metadata={"format": "pt"})
    # prove the file loads strictly into a fresh model before writing a record for it
    load_state_dict_strict(spec.build(**config), weights_file)

    speed = dict(speed or {})
    if speed and "device" not in speed:
        speed["device"] = cpu_name()
    record = Weights(
        name=name, arch=arch, file=file, sha256=sha256_file(weights_file), license=license,
        config=config, metrics=dict(metrics or {}), flops=_count_flops(model), speed=speed,
        recipe=recipe, data=data, hf_repo_id=hf_repo_id, hf_revision=hf_revision,
    )
    return record.to_json(out_dir / f"{name}.json")


def _hub_download(repo_id: str, filename: str, revision: str | None, *, cache_dir=None, token=None,
                  local_files_only: bool = False) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir, token=token,
                                local_files_only=local_files_only))


def resolve_weights(record: Weights, local_path: str | Path | None = None,
                    weights_dir: str | Path | None = None, *, cache_dir: str | Path | None = None) -> Path:
    """The file of ``record``: the packaged file, else ``local_path`` (a file, or a folder holding
    ``record.file``), else ``model.safetensors`` of the record's Hugging Face Hub repo at its pinned
    ``hf_revision`` (downloaded once into the Hub cache; offline, only the cache is read). The caller
    checks the sha256.

    Raises ``FileNotFoundError`` that names every place looked in, and ``ValueError`` for a record
    that names a Hub repo without pinning a commit (a branch can move under an immutable record)."""
    looked: list[str] = []
    packaged = (Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR) / record.file
    if packaged.is_file():
        return packaged
    looked.append(f"packaged file {packaged}")
    if local_path is not None:
        local = Path(local_path)
        local = local / record.file if local.is_dir() else local
        if local.is_file():
            return local
        looked.append(f"local path {local}")
    else:
        looked.append("local path (none given)")
    if not record.hf_repo_id:
        looked.append("Hugging Face Hub (the record names no repo)")
    else:
        if not record.hf_revision or not re.fullmatch(r"[0-9a-f]{40}", record.hf_revision):
            raise ValueError(f"record {record.name} names Hub repo {record.hf_repo_id} without a pinned revision "
                             f"(a 40-digit commit hash), got {record.hf_revision!r}")
        where = f"Hugging Face Hub {record.hf_repo_id}/{HUB_WEIGHTS_FILE}@{record.hf_revision}"
        offline = is_offline()
        try:
            return _hub_download(record.hf_repo_id, HUB_WEIGHTS_FILE, record.hf_revision, cache_dir=cache_dir,
                                 local_files_only=offline)
        except Exception as e:  # network, auth, missing file or not cached: report what was tried
            if offline:
                looked.append(f"{where} (running offline, HF_HUB_OFFLINE is set: only the local Hub cache was "
                              f"read and it does not hold the file; nothing is downloaded)")
            else:
                looked.append(f"{where} ({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''})")
    raise FileNotFoundError(f"weights {record.file} for {record.name} not found; looked for: " + "; ".join(looked))


def load_from_hub(repo_id: str, revision: str | None = None, *, cache_dir: str | Path | None = None,
                  token: str | None = None):
    """The model published in Hub repo ``repo_id`` (by ``patchnet_zoo.publish``), checked like a
    packaged one: its ``weights_record.json`` names the arch and the sha256 of ``model.safetensors``,
    which loads strictly. ``revision`` (a branch, tag or commit; default ``main``) is resolved to a
    commit once, so the record and the weights come from the same commit.

    Returns the model; its record (with ``hf_repo_id`` and the pinned ``hf_revision``) is
    ``model.weights_record``."""
    import dataclasses
    import json

    from .registry import _thaw

    record_path = _hub_download(repo_id, HUB_RECORD_FILE, revision, cache_dir=cache_dir, token=token,
                                local_files_only=is_offline())
    # the cache lays files out as .../snapshots/<commit>/<file>: pin what was read
    commit = record_path.parent.name if re.fullmatch(r"[0-9a-f]{40}", record_path.parent.name) else revision
    try:
        record = Weights.from_dict(json.loads(record_path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise ValueError(f"{repo_id}/{HUB_RECORD_FILE}@{commit} is not a weights record: {e}") from e
    if record.arch not in ARCHS:
        raise ValueError(f"{repo_id} holds arch {record.arch!r}, which this version of patchnet_zoo does not know; "
                         f"known: {', '.join(sorted(ARCHS))}")
    record = dataclasses.replace(record, hf_repo_id=repo_id, hf_revision=commit)
    weights = _hub_download(repo_id, HUB_WEIGHTS_FILE, commit, cache_dir=cache_dir, token=token,
                            local_files_only=is_offline())
    spec = ARCHS[record.arch]
    model = spec.build(**{**spec.defaults, **_thaw(record.config)})
    load_state_dict_strict(model, weights, expected_sha256=record.sha256)
    model.weights_record = record
    return model
