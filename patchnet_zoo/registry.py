"""Model and weights registry, timm style.

Names are ``arch`` or ``arch.tag``: ``create_model("patchnet")`` builds an untrained PatchNet,
``create_model("patchnet.shared_train", pretrained=True)`` (or just ``"patchnet"`` with
``pretrained=True``: the arch's default tag) loads the shipped checkpoint.

Every checkpoint has one immutable ``Weights`` record, stored next to its file as
``patchnet_zoo/weights/<arch.tag>.json`` and written by ``patchnet_zoo.hub.export_checkpoint``.
Weights always load strictly (every key present, none extra, same shapes) after their sha256 has
been checked against the record.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

__all__ = [
    "Weights", "ArchSpec", "ARCHS", "WEIGHTS_DIR", "WeightsIntegrityError", "list_models", "create_model",
    "get_weights", "load_records", "split_name", "sha256_file", "load_state_dict_strict",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


class WeightsIntegrityError(ValueError):
    """A weights file whose sha256 differs from its record."""


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Weights:
    """One checkpoint: where it is, how to check it, what it scores and what made it.

    Attributes:
        name: ``arch.tag``.
        arch: architecture name (a key of ``ARCHS``).
        file: safetensors file name inside ``patchnet_zoo/weights/`` (on the Hub the same bytes are
            ``model.safetensors``, the name ``PyTorchModelHubMixin`` loads).
        sha256: hex digest of that file.
        license: licence of the weights.
        config: the model's ``__init__`` arguments.
        metrics: evaluation results (``{"val/miss_rate": ...}``).
        flops: FLOP counts (``{"total": ...}``), empty where not counted.
        speed: timings, with the ``device`` they were measured on.
        recipe: the recipe that trained it (``recipes/patchnet.yaml``).
        data: the training data (``../shared/data splits/train.txt``).
        hf_repo_id / hf_revision: Hugging Face Hub location (revision pinned), optional.
    """

    name: str
    arch: str
    file: str
    sha256: str
    license: str
    config: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    flops: Mapping[str, Any] = field(default_factory=dict)
    speed: Mapping[str, Any] = field(default_factory=dict)
    recipe: str = ""
    data: str = ""
    hf_repo_id: str | None = None
    hf_revision: str | None = None

    def __post_init__(self):
        arch, tag = split_name(self.name)
        if not tag or not _TAG_RE.match(tag):
            raise ValueError(f"weights name must be 'arch.tag', got {self.name!r}")
        if arch != self.arch:
            raise ValueError(f"weights {self.name!r} name an arch other than their arch field {self.arch!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256 or ""):
            raise ValueError(f"weights {self.name!r}: sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        for f in ("config", "metrics", "flops", "speed"):
            object.__setattr__(self, f, _freeze(getattr(self, f) or {}))

    def __hash__(self) -> int:  # the mappings are not hashable; the name and digest identify a record
        return hash((self.name, self.sha256))

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _thaw(getattr(self, f.name)) for f in fields(self)}

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Weights":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown fields in weights record: {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | Path) -> "Weights":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError, ValueError) as e:
            raise ValueError(f"bad weights record {path}: {e}") from e


@dataclass(frozen=True)
class ArchSpec:
    """An architecture: a builder (``"module:attr"``, imported on use) and its default arguments."""

    builder: str
    defaults: Mapping[str, Any]
    default_tag: str
    description: str

    def build(self, **kwargs):
        import importlib

        module, attr = self.builder.split(":")
        cls = getattr(importlib.import_module(module), attr)
        return cls(**{**self.defaults, **kwargs})


_PATCHNET = "patchnet_zoo.models.patchnet:PatchNet"
ARCHS: Mapping[str, ArchSpec] = MappingProxyType({
    "patchnet": ArchSpec(_PATCHNET, MappingProxyType({}), "shared_train",
                         "PatchNet as in the paper: Fourier reweighting + sparse aggregation + box regression"),
    "patchnet_patch_aggregation": ArchSpec(
        _PATCHNET, MappingProxyType({"fourier": False, "box_regression": False}), "shared_train",
        "ablation: patch correlation + sparse aggregation only"),
    "patchnet_no_fourier": ArchSpec(_PATCHNET, MappingProxyType({"fourier": False}), "shared_train",
                                    "ablation: no Fourier reweighting"),
    "patchnet_no_box_regression": ArchSpec(_PATCHNET, MappingProxyType({"box_regression": False}), "shared_train",
                                           "ablation: no hierarchical box regression"),
    "patchnet_k4": ArchSpec(_PATCHNET, MappingProxyType({"patch_size": 4}), "shared_train",
                            "PatchNet with 4x4-pixel patches (the paper's patch-size axis, Figure 11): a 32-px "
                            "template, a quarter of the correlation's multiply-accumulates"),
    "patchnet_zero_mean": ArchSpec(_PATCHNET, MappingProxyType({"patch_norm": "zero_mean"}), "shared_train",
                                   "PatchNet whose patch correlations are zero-mean normalised (each filter and "
                                   "search window about its own colour): blind to flat colour, steadier in video"),
    "patchnet_k4_zero_mean": ArchSpec(_PATCHNET, MappingProxyType({"patch_size": 4, "patch_norm": "zero_mean"}),
                                      "shared_train", "PatchNet K4 with zero-mean normalised patch correlations"),
    "gated_siamese": ArchSpec("patchnet_zoo.models.gated_siamese:GatedSiameseTracker",
                              MappingProxyType({"backbone_weights": None}), "shared_train",
                              "adaptive-depth gated Siamese tracker (MobileNetV2, 5 depths, learned early exit)"),
})


def split_name(name: str) -> tuple[str, str | None]:
    """``"patchnet.shared_train"`` -> ``("patchnet", "shared_train")``; ``"patchnet"`` -> ``("patchnet", None)``;
    ``"patchnet."`` -> ``("patchnet", "")`` (an invalid tag)."""
    arch, dot, tag = name.partition(".")
    return arch, (tag if dot else None)


def _weights_dir(weights_dir: str | Path | None) -> Path:
    return Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR


def load_records(weights_dir: str | Path | None = None) -> dict[str, Weights]:
    """Every ``<arch.tag>.json`` record in ``weights_dir`` (default: the packaged ``weights/``)."""
    d = _weights_dir(weights_dir)
    records: dict[str, Weights] = {}
    if not d.is_dir():
        return records
    for path in sorted(d.glob("*.json")):
        rec = Weights.from_json(path)
        if path.stem != rec.name:
            raise ValueError(f"weights record {path} holds {rec.name!r}; its file must be named {rec.name}.json")
        if rec.arch not in ARCHS:
            raise ValueError(f"weights record {path} names unknown arch {rec.arch!r}")
        records[rec.name] = rec
    return records


def _valid_names(weights_dir=None) -> list[str]:
    names = set(ARCHS)
    names.update(f"{a}.{s.default_tag}" for a, s in ARCHS.items())
    names.update(load_records(weights_dir))
    return sorted(names)


def _check_name(name: str, weights_dir=None) -> tuple[str, str | None]:
    arch, tag = split_name(name)
    ok = arch in ARCHS and (tag is None or bool(_TAG_RE.match(tag)))
    if ok and tag is not None:
        ok = tag == ARCHS[arch].default_tag or name in load_records(weights_dir)
    if not ok:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(_valid_names(weights_dir))}")
    return arch, tag


def list_models(pattern: str = "*", pretrained: bool = False, weights_dir: str | Path | None = None) -> list[str]:
    """Sorted model names matching ``pattern`` (fnmatch).

    ``pretrained=False`` lists architectures (``"patchnet"``); ``pretrained=True`` lists the
    ``arch.tag`` names that have a weights record."""
    names = sorted(load_records(weights_dir)) if pretrained else sorted(ARCHS)
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def get_weights(name: str, weights_dir: str | Path | None = None) -> Weights:
    """The weights record of ``arch.tag`` (``arch`` alone means its default tag)."""
    arch, tag = _check_name(name, weights_dir)
    full = f"{arch}.{tag or ARCHS[arch].default_tag}"
    records = load_records(weights_dir)
    if full not in records:
        from .hub import is_offline

        d = _weights_dir(weights_dir)
        offline = "running offline (HF_HUB_OFFLINE), so " if is_offline() else ""
        raise FileNotFoundError(
            f"no pretrained weights for {full!r}: looked for the record {d / (full + '.json')} (it names the "
            f"packaged file, e.g. {d / (full + '.safetensors')}, and its sha256) and found none; no local path "
            f"was given; {offline}nothing is downloaded without a record. Train and `patchnet-zoo export` a "
            f"checkpoint, or pass weights_path=FILE.")
    return records[full]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_state_dict_strict(model, path: str | Path, expected_sha256: str | None = None):
    """Load a safetensors file into ``model`` strictly, after checking its sha256 if one is given.

    Raises ``WeightsIntegrityError`` on a digest mismatch and ``ValueError`` naming the missing,
    unexpected or mis-shaped keys when the file does not fit the model."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise WeightsIntegrityError(
                f"sha256 of {path} is {actual}, the record expects {expected_sha256}: the file is corrupt "
                f"or not the one the record describes")
    sd = load_file(str(path))
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = sorted(k for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if shapes:
            parts.append("shape mismatch " + ", ".join(
                f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}" for k in shapes))
        raise ValueError(f"weights {path} do not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(sd, strict=True)
    return model


def _record_beside(weights_path: Path, arch: str) -> "Weights | None":
    """The export record of ``weights_path`` (same folder and stem, ``.json``) if it describes that
    file and ``arch``; otherwise None (a plain safetensors file needs no record)."""
    path = weights_path.with_suffix(".json")
    if not path.is_file():
        return None
    try:
        record = Weights.from_json(path)
    except (ValueError, KeyError, TypeError):
        return None
    return record if record.arch == arch and record.file == weights_path.name else None


def create_model(name: str, pretrained: bool = False, weights_path: str | Path | None = None,
                 *, weights_dir: str | Path | None = None, **overrides):
    """Build a model by name; ``overrides`` replace its ``__init__`` arguments.

    Args:
        name: ``arch`` or ``arch.tag`` (see ``list_models()``).
        pretrained: load the record's weights (packaged file > local copy > Hugging Face Hub at the
            record's pinned revision, unless offline), sha256-checked, strictly.
        weights_path: load this local safetensors file instead (strictly; no record needed). When
            the record ``patchnet-zoo export`` writes beside it (``NAME.json`` for
            ``NAME.safetensors``) is there and names the same arch, its config builds the model:
            settings that are not tensors (``input_mean``) travel with the file that way.
        weights_dir: where records live (default: the packaged ``patchnet_zoo/weights``).

    Raises ``ValueError`` for an unknown name (the message lists the valid ones) and
    ``FileNotFoundError`` when pretrained weights cannot be found.
    """
    arch, tag = _check_name(name, weights_dir)
    spec = ARCHS[arch]
    record = None
    full = f"{arch}.{tag or spec.default_tag}"
    if pretrained and weights_path is None:
        record = get_weights(full, weights_dir)
    elif weights_path is not None:
        record = _record_beside(Path(weights_path), arch)
    elif tag is not None:
        record = load_records(weights_dir).get(full)
    config = dict(spec.defaults)
    if record is not None:
        config.update(_thaw(record.config))
    config.update(overrides)
    model = spec.build(**config)
    if weights_path is not None:
        load_state_dict_strict(model, weights_path)
    elif pretrained:
        from .hub import resolve_weights

        path = resolve_weights(record, weights_dir=weights_dir)
        load_state_dict_strict(model, path, expected_sha256=record.sha256)
    return model
