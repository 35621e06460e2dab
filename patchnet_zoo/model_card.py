"""Model cards for the Hugging Face Hub, rendered from a weights record.

The record is the single source of truth: the card's metadata (licence, library, tags, pipeline
tag, ``model-index`` metrics) and its text (what the checkpoint is, how to load it at the pinned
revision, the data and recipe that made it, its scores, its limits) are all derived from it, plus
the benchmark tables of ``docs/results/*.md`` that name the checkpoint. Re-rendering the same
record gives the same card, so a card can never drift from the weights it describes.

``validate_card`` checks a card the way ``huggingface_hub`` parses it (``ModelCard`` /
``ModelCardData``, strict) plus the Hub's rules for the fields we fill; ``ModelCard.validate()``
asks the Hub itself (it needs the network, or a stand-in at ``HF_ENDPOINT``).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from .registry import ARCHS, Weights

__all__ = ["card_metadata", "render_card", "validate_card", "result_sections", "RESULTS_DIR", "LIBRARY_NAME",
           "PIPELINE_TAG", "HUB_LICENSES"]

LIBRARY_NAME = "patchnet_zoo"
# The Hub has no tracking task; boxes out, video in: object detection is the closest pipeline tag.
PIPELINE_TAG = "object-detection"
RESULTS_DIR = Path(__file__).resolve().parents[1] / "docs" / "results"
PAPER = "https://arxiv.org/abs/1911.06857"
# Licence identifiers the Hub accepts in the ``license`` field (the common part of its list);
# anything else must be ``other`` with ``license_name`` and ``license_link``.
HUB_LICENSES = frozenset({
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc",
    "lppl-1.3c", "ms-pl", "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa",
    "unlicense", "zlib", "pddl", "unknown", "other",
})
_SKIP_METRIC = re.compile(r"(^|/)(epoch|step|box|loc)$|loss|^train/")  # counters and loss terms


def _hub_license(license: str) -> str:
    return license.strip().lower()


def _eval_metrics(record: Weights) -> list[tuple[str, float]]:
    """The record's evaluation numbers worth a ``model-index`` entry (no losses, epochs or notes)."""
    return [(k, float(v)) for k, v in record.metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not _SKIP_METRIC.search(k)]


def _metric_dataset(key: str) -> tuple[str, str]:
    if key.startswith("short_range"):
        return "patchnet_zoo-val-short-range", "val split, short-range benchmark (docs/results/short_range.md)"
    if key.startswith("val/"):
        return "patchnet_zoo-val-pairs", "val split, fixed training-time validation pairs"
    return "patchnet_zoo-val", "val split"


def card_metadata(record: Weights, repo_id: str | None = None):
    """``ModelCardData`` for ``record``: licence, library, tags, pipeline tag and a ``model-index``
    with the record's evaluation metrics (``model_name`` is the repo id, else the record name)."""
    from huggingface_hub import EvalResult, ModelCardData

    results = []
    for key, value in _eval_metrics(record):
        dataset_type, dataset_name = _metric_dataset(key)
        results.append(EvalResult(
            task_type=PIPELINE_TAG, task_name="Short-range box propagation", dataset_type=dataset_type,
            dataset_name=dataset_name, dataset_split="val",
            metric_type=key.split("/")[-1], metric_name=key, metric_value=value))
    license = _hub_license(record.license)
    extra: dict[str, Any] = {}
    if license not in HUB_LICENSES:
        extra = {"license_name": license, "license_link": "LICENSE"}
        license = "other"
    return ModelCardData(
        license=license, library_name=LIBRARY_NAME, pipeline_tag=PIPELINE_TAG,
        tags=[LIBRARY_NAME, "pytorch", "safetensors", "pytorch_model_hub_mixin", "object-tracking", "video",
              record.arch],
        model_name=repo_id or record.name, eval_results=results or None, **extra)


# ----------------------------------------------------------------------------------- results tables
def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text) is not None


def result_sections(record: Weights, results_dir: str | Path | None = None) -> list[str]:
    """Markdown excerpts (title, command, headings and tables) of every ``results_dir/*.md`` page
    that names ``record.name``; pages that do not mention the checkpoint are not its results."""
    d = Path(results_dir) if results_dir is not None else RESULTS_DIR
    out = []
    for page in sorted(d.glob("*.md")) if d.is_dir() else []:
        text = page.read_text(encoding="utf-8")
        if not _mentions(text, record.name):
            continue
        lines: list[str] = []
        for line in text.splitlines():
            if line.startswith("# "):
                lines += [f"### {line[2:].strip()}", "", f"From `docs/results/{page.name}`.", ""]
            elif line.startswith("## "):
                lines += ["", f"#### {line[3:].strip()}", ""]
            elif line.startswith(("Command:", "Machine:", "Data:")):
                lines += [line, ""]
            elif line.startswith("|"):
                lines.append(line)
            elif lines and lines[-1].startswith("|"):
                lines.append("")
        out.append("\n".join(re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip().splitlines()))
    return out


# ---------------------------------------------------------------------------------------- the card
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _kv_table(rows: Iterable[tuple[str, Any]], head=("field", "value")) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| {k} | {str(_fmt(v)).replace('|', '/')} |" for k, v in rows]
    return "\n".join(lines)


def _get_started(record: Weights, repo_id: str | None, revision: str | None) -> str:
    rev = f', revision="{revision}"' if revision else ""
    arch_cls = ARCHS[record.arch].builder.split(":")[1] if record.arch in ARCHS else "PatchNet"
    module = ARCHS[record.arch].builder.split(":")[0] if record.arch in ARCHS else "patchnet_zoo.models.patchnet"
    parts = ["```bash", "pip install 'patchnet_zoo @ git+https://github.com/patchnet-zoo/patchnet_zoo'", "```", "", "```python",
             "from patchnet_zoo import create_model", "",
             f'model = create_model("{record.name}", pretrained=True)  # packaged copy, sha256-checked']
    if repo_id:
        parts += ["", "# or straight from this repository, checked against its weights record:",
                  "from patchnet_zoo.hub import load_from_hub",
                  f'model = load_from_hub("{repo_id}"{rev})', "",
                  "# or with the Hub mixin alone (no sha256 check):",
                  f"from {module} import {arch_cls}",
                  f'model = {arch_cls}.from_pretrained("{repo_id}"{rev})']
    parts += ["```"]
    if record.arch.startswith("patchnet"):
        parts += ["", "Propagate boxes from a key frame to the next frames (RGB uint8 frames, boxes x, y, w, h):", "",
                  "```python", "from patchnet_zoo.matching import PatchMatcher", "",
                  "matcher = PatchMatcher(model)",
                  "templates = matcher.encode(key_frame, key_boxes)",
                  "result = matcher.match(templates, next_frame, key_boxes)  # result.boxes, result.confidence",
                  "```"]
    return "\n".join(parts)


def render_card(record: Weights, repo_id: str | None = None, revision: str | None = None,
                results_dir: str | Path | None = None):
    """The ``ModelCard`` of ``record`` as published to ``repo_id`` (``revision``: the commit that
    examples pin, when known; a card cannot name the commit that holds it)."""
    from huggingface_hub import ModelCard

    data = card_metadata(record, repo_id)
    spec = ARCHS.get(record.arch)
    description = spec.description if spec else record.arch
    speed_rows = [(k, v) for k, v in record.speed.items()]
    flops = {k: v for k, v in record.flops.items() if not isinstance(v, Mapping)}
    notes = [str(v) for k, v in record.metrics.items() if isinstance(v, str)]
    metric_rows = [(k, v) for k, v in record.metrics.items() if not isinstance(v, str)]
    window = ""
    if "response_size" in record.config:
        r = int(record.config["response_size"])
        window = (f" It searches a window of {r}x{r} response cells around the box's last position (a cell "
                  f"is one eighth of the box side), so a target that moved more than {r // 2} cells "
                  f"({r // 2 * 12.5:g} % of the box) since that position is out of reach.")
    sections = result_sections(record, results_dir)
    if record.arch.startswith("patchnet"):
        role = ("this checkpoint propagates its boxes to the other frames. Inputs are RGB frames and boxes\n"
                "(x, y, w, h in pixels); outputs are the propagated boxes and a confidence per box.")
    else:
        role = ("this checkpoint is one of the models of that loop (see the description above). Inputs are RGB\n"
                "frames and boxes (x, y, w, h in pixels).")
    body = f"""
# {record.name}

{description}. A checkpoint of the `{record.arch}` architecture from
[patchnet_zoo](https://github.com/patchnet-zoo/patchnet_zoo), after PatchNet (Mao, Zhu, Han, Dally,
[paper]({PAPER})): run an expensive detector or tracker on key frames only and let this small model
carry the boxes through the frames in between.

## Intended use

Making video object detection and single-object tracking cheaper: a base model runs on key frames
(every `key_frame_interval` frames, and whenever this model's confidence drops below a threshold)
and {role}

Out of scope: finding objects on its own (it only follows boxes it was given), long-term tracking
through occlusions, and any decision about people that needs a validated system.

## How to get started

{_get_started(record, repo_id, revision)}

## Weights

{_kv_table([("name", f"`{record.name}`"), ("file", f"`{record.file}` (`model.safetensors` on the Hub)"),
            ("sha256", f"`{record.sha256}`"), ("licence", record.license),
            ("config", "`" + json.dumps(dict((k, (list(v) if isinstance(v, tuple) else v))
                                             for k, v in record.config.items())) + "`")])}

## Training data and recipe

Recipe: `{record.recipe or 'not recorded'}` (a LightningCLI configuration of patchnet_zoo,
`patchnet-zoo fit -c {record.recipe or 'RECIPE'}`). Data: {record.data or 'not recorded'}.

## Evaluation

{_kv_table(metric_rows, ("metric", "value")) if metric_rows else "No metrics recorded."}

{chr(10).join(notes)}

### Compute (per match)

{_kv_table(flops.items(), ("count", "value")) if flops else "Not counted."}

### Speed

{_kv_table(speed_rows, ("timing", "value")) if speed_rows else "Not measured."}

{("## Benchmark tables" + chr(10) + chr(10) + (chr(10) + chr(10)).join(sections)) if sections else ""}

## Limitations

This model matches a template against a small search window; it does not detect new objects or
recover a lost target.{window} Its confidence is the cue for falling back to the base model, so keep
the confidence fallback on. It was trained on a small set of public tracking sequences (see
Training data), so expect lower accuracy on very different footage (thermal, medical, very small
targets) and re-train with the recipe on your own data if needed. Timings depend on the machine:
compare rows of one benchmark run, not numbers across machines.

## Citation

```bibtex
@inproceedings{{mao2019patchnet,
  title     = {{PatchNet -- Short-range Template Matching for Efficient Video Processing}},
  author    = {{Mao, Huizi and Zhu, Sibo and Han, Song and Dally, William J.}},
  booktitle = {{arXiv:1911.06857}},
  year      = {{2019}}
}}
```
"""
    body = re.sub(r"\n{3,}", "\n\n", body)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def validate_card(card) -> None:
    """Raise ``ValueError`` naming every problem of ``card`` (a ``ModelCard`` or its text).

    Checks what ``huggingface_hub`` checks when it parses a card (YAML header, ``ModelCardData``
    with a parseable ``model-index``, strict) and the Hub's rules for the fields this package fills:
    a licence the Hub knows (or ``other`` with a name and link), a library name, a pipeline tag, tags
    as a list of strings and numeric metric values."""
    from huggingface_hub import ModelCard

    text = card if isinstance(card, str) else str(card)
    try:
        parsed = ModelCard(text, ignore_metadata_errors=False)
    except Exception as e:  # yaml errors, a bad model-index, ...
        raise ValueError(f"model card metadata does not parse: {e}") from e
    meta = parsed.data.to_dict()
    problems = []
    license = meta.get("license")
    if license not in HUB_LICENSES:
        problems.append(f"license {license!r} is not a Hub licence identifier")
    if license == "other" and not (meta.get("license_name") and meta.get("license_link")):
        problems.append("license 'other' needs license_name and license_link")
    for key in ("library_name", "pipeline_tag"):
        if not isinstance(meta.get(key), str) or not meta.get(key):
            problems.append(f"{key} is missing")
    tags = meta.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        problems.append("tags must be a list of non-empty strings")
    for result in parsed.data.eval_results or []:
        if not isinstance(result.metric_value, (int, float)):
            problems.append(f"metric {result.metric_name or result.metric_type} has a non-numeric value")
    if problems:
        raise ValueError("invalid model card metadata: " + "; ".join(problems))
