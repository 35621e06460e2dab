"""Publish a checkpoint of the zoo to the Hugging Face Hub, with its model card and record.

One generic path for every architecture in the registry: the model is built and loaded exactly as
``create_model(name, pretrained=True)`` does (sha256-checked, strict), written by its own
``PyTorchModelHubMixin.save_pretrained`` (``config.json``), and the weights file uploaded is the
recorded file byte for byte, so ``load_from_hub`` and ``create_model`` verify a download against the
same sha256. ``publish`` returns the commit to pin in the record (``hf_revision``).

The endpoint is ``HF_ENDPOINT`` (default: the public Hub); the token is ``token=``, else the one
``huggingface_hub`` finds (``HF_TOKEN``, ``hf auth login``).
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
from pathlib import Path

from .hub import HUB_CARD_FILE, HUB_CONFIG_FILE, HUB_RECORD_FILE, HUB_WEIGHTS_FILE, is_offline, resolve_weights
from .registry import Weights, create_model, get_weights

__all__ = ["stage", "publish", "pin_record"]

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*$")


def _check_repo_id(repo_id: str) -> str:
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id) or ".." in repo_id or repo_id.endswith(".git"):
        raise ValueError(f"repo id must be 'owner/name' (letters, digits, '-', '_', '.'), got {repo_id!r}")
    return repo_id


def stage(name: str, folder: str | Path, repo_id: str | None = None, *, weights_dir: str | Path | None = None,
          results_dir: str | Path | None = None) -> dict[str, Path]:
    """Write the Hub repository of checkpoint ``name`` into ``folder``; returns its files by role.

    ``model.safetensors`` (the recorded file, byte for byte), ``config.json`` (the model's
    ``__init__`` arguments, by ``save_pretrained``), ``README.md`` (the model card, validated) and
    ``weights_record.json`` (the record, naming ``repo_id``). Nothing leaves the machine."""
    from huggingface_hub import PyTorchModelHubMixin
    from safetensors.torch import load_file

    from .model_card import render_card, validate_card

    record = get_weights(name, weights_dir)
    if repo_id is not None:
        _check_repo_id(repo_id)
    weights_file = resolve_weights(record, weights_dir=weights_dir)
    model = create_model(record.name, pretrained=True, weights_dir=weights_dir)  # sha256-checked, strict
    if not isinstance(model, PyTorchModelHubMixin):
        raise TypeError(f"{type(model).__name__} (arch {record.arch!r}) does not derive from PyTorchModelHubMixin, "
                        f"so it cannot be loaded with from_pretrained; add the mixin to publish it")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    # the mixin's file holds the same tensors; ship the recorded bytes so their sha256 is the record's
    written, recorded = load_file(str(folder / HUB_WEIGHTS_FILE)), load_file(str(weights_file))
    if set(written) != set(recorded) or any(not written[k].equal(recorded[k]) for k in written):
        raise RuntimeError(f"save_pretrained of {record.name} wrote other tensors than {weights_file}")
    shutil.copyfile(weights_file, folder / HUB_WEIGHTS_FILE)

    card = render_card(record, repo_id=repo_id, results_dir=results_dir)
    validate_card(card)
    (folder / HUB_CARD_FILE).write_text(str(card), encoding="utf-8")
    hub_record = dataclasses.replace(record, hf_repo_id=repo_id, hf_revision=None)
    hub_record.to_json(folder / HUB_RECORD_FILE)
    return {"weights": folder / HUB_WEIGHTS_FILE, "config": folder / HUB_CONFIG_FILE,
            "card": folder / HUB_CARD_FILE, "record": folder / HUB_RECORD_FILE}


def publish(name: str, repo_id: str, token: str | None = None, revision: str | None = None, private: bool = False,
            *, commit_message: str | None = None, weights_dir: str | Path | None = None) -> str:
    """Push checkpoint ``name`` (``arch.tag``, or ``arch`` for its default tag) to Hub repo ``repo_id``.

    Creates the repo if needed (``private`` applies only then) and, for ``revision`` other than
    ``main``, the branch; uploads the files of ``stage`` in one commit. Returns that commit's hash:
    pin it as the record's ``hf_revision`` (``pin_record``)."""
    from huggingface_hub import HfApi

    from . import __version__

    _check_repo_id(repo_id)
    record = get_weights(name, weights_dir)  # an unknown name fails first, listing the valid ones
    if is_offline():
        raise OSError("publishing needs the network, but HF_HUB_OFFLINE is set; unset it to upload")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision not in (None, "main"):
        api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory(prefix="patchnet_zoo-publish-") as tmp:
        stage(record.name, tmp, repo_id, weights_dir=weights_dir)
        info = api.upload_folder(
            repo_id=repo_id, folder_path=tmp, revision=revision, repo_type="model",
            commit_message=commit_message or f"{record.name} (sha256 {record.sha256[:12]}), patchnet_zoo {__version__}")
    return info.oid


def pin_record(name: str, repo_id: str, revision: str, weights_dir: str | Path | None = None) -> Path:
    """Write ``hf_repo_id`` / ``hf_revision`` into the record of ``name`` (a Hub location is
    where the immutable checkpoint also lives; the sha256 and everything else stay as they were)."""
    from .registry import WEIGHTS_DIR

    _check_repo_id(repo_id)
    if not re.fullmatch(r"[0-9a-f]{40}", revision or ""):
        raise ValueError(f"pin a commit hash (40 hex digits), not {revision!r}: branches move")
    record = get_weights(name, weights_dir)
    path = (Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR) / f"{record.name}.json"
    pinned: Weights = dataclasses.replace(record, hf_repo_id=repo_id, hf_revision=revision)
    return pinned.to_json(path)
