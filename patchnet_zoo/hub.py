"""Shipping weights: turn a Lightning checkpoint into a packaged safetensors file plus its record,
and find a record's file again (packaged file > local path > Hugging Face Hub at a pinned revision).

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

__all__ = ["export_checkpoint", "resolve_weights", "is_offline", "cpu_name"]

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


def _count_flops(model) -> dict:
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


def read_checkpoint(path: str | Path) -> tuple[dict, dict]:
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
    allowed = _patchnet_init_args()
    config = {k: v for k, v in dict(ckpt.get("hyper_parameters") or {}).items() if k in allowed}
    return state, config


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

    from .models.patchnet import PatchNet

    arch, tag = split_name(name)
    if arch not in ARCHS or not tag or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]*", tag):
        raise ValueError(f"export name must be 'arch.tag' with arch one of {sorted(ARCHS)}; got {name!r}")
    state, config = read_checkpoint(ckpt_path)
    allowed = _patchnet_init_args()
    spec = ARCHS[arch]
    for k, v in spec.defaults.items():
        if k in config and config[k] != v:
            raise ValueError(f"{ckpt_path} has {k}={config[k]} but arch {arch!r} has {k}={v}; "
                             f"export it under the matching arch name")
    for k in ("fourier", "box_regression"):
        if k not in spec.defaults and config.get(k, True) is not True:
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
    load_state_dict_strict(PatchNet(**config), weights_file)

    speed = dict(speed or {})
    if speed and "device" not in speed:
        speed["device"] = cpu_name()
    record = Weights(
        name=name, arch=arch, file=file, sha256=sha256_file(weights_file), license=license,
        config=config, metrics=dict(metrics or {}), flops=_count_flops(model), speed=speed,
        recipe=recipe, data=data, hf_repo_id=hf_repo_id, hf_revision=hf_revision,
    )
    return record.to_json(out_dir / f"{name}.json")


def resolve_weights(record: Weights, local_path: str | Path | None = None,
                    weights_dir: str | Path | None = None) -> Path:
    """The file of ``record``: the packaged file, else ``local_path`` (a file, or a folder holding
    ``record.file``), else a download from the Hugging Face Hub at ``record.hf_revision`` (only when
    the record names a repo and ``HF_HUB_OFFLINE`` is not set). The caller checks the sha256."""
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
    elif is_offline():
        looked.append(f"Hugging Face Hub {record.hf_repo_id}@{record.hf_revision} (skipped: running offline, "
                      f"HF_HUB_OFFLINE is set, nothing is downloaded)")
    else:
        if not record.hf_revision:
            raise ValueError(f"record {record.name} names Hub repo {record.hf_repo_id} without a pinned revision")
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(record.hf_repo_id, record.file, revision=record.hf_revision))
        except Exception as e:  # network, auth or missing file: report what was tried
            looked.append(f"Hugging Face Hub {record.hf_repo_id}@{record.hf_revision} ({type(e).__name__}: {e})")
    raise FileNotFoundError(f"weights {record.file} for {record.name} not found; looked for: " + "; ".join(looked))

