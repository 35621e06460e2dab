"""A whole PatchNet match, from the search crop to the decoded box, as one compiled graph
(ahead of time, else ``torch.compile``), for inference; optional.

Eager inference spends about as long in a hundred small operations as in the correlation's
convolution: the centring, the window energies, the score levels, the peak, the offsets on the
peak's tree, the rigid placement and the box decoding each cost some microseconds of dispatch
besides their arithmetic. Compiled, they become a few fused loops around the convolution.

``match_graph`` computes what ``PatchMatcher``'s eager search computes after the crop
(``PatchNet.locate``, ``decode_peak``), operation for operation, but compiled code may round
differently (fused loops, other orders of summation, its own ``exp``): boxes agree within 1e-3
pixels (``tests/test_compiled_match.py``), and a near-tie between two cells may fall the other way.
Compiling needs a C++ compiler. ``compiled_match`` compiles the graph ahead of time
(AOTInductor: a shared library called without ``torch.compile``'s per-call guards and Python
wrappers, about a tenth of a one-box match less), once per model, window, decoding and thread
count: some seconds the first time, then loaded from torch's compile cache folder
(``$TORCHINDUCTOR_CACHE_DIR``, a ``patchnet_zoo`` folder in it, which keeps the 32 packages used
last, about 2 MB each). Where that fails it uses
``torch.compile``; where that fails too, a warning is logged once per path and the matcher goes on
without it.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from .compiled_scores import score_maps
from .layers import _sums_by_doubling

logger = logging.getLogger(__name__)

__all__ = ["GraphConstants", "graph_constants", "match_graph", "compiled_match"]


@dataclass(frozen=True)
class GraphConstants:
    """What ``match_graph`` needs from a model besides the crops and templates, as tensors and
    numbers (``graph_constants`` builds it from ``PatchNet._inference_arrays``)."""

    channel_weights: tuple  # per score level, (C_in,) weights; the first is folded into the filters
    first_nodes: torch.Tensor  # (n, 3) row, col, channel of the first level's nodes of a peak's tree
    rigid_matrix: torch.Tensor  # (n, placements) the rigid placement sums
    tree_nodes: tuple  # per pooled level above the first, (n, 3) channel, row, col
    tree_weights: tuple  # per offset level, (n, 16, 4)
    tree_biases: tuple  # per offset level, (n, 4)
    alphas: tuple  # per pool, the soft-select temperature (floats)
    window_biases: tuple  # per pool, (4 windows, 4 coords)
    pixel_mean: torch.Tensor  # (1, 3, 1, 1)


def graph_constants(model, arrays, select_alpha: float | None = None) -> GraphConstants:
    """``model``'s inference arrays as ``match_graph``'s constants; ``select_alpha`` replaces the
    learned soft-select temperatures (None: keep them)."""
    t = torch.from_numpy
    matrix, rows, cols, channels = arrays.rigid
    tree = arrays.tree
    if tree is None:
        nodes, weights, biases, alphas, window_biases = (), (), (), (), ()
    else:
        nodes = tuple(t(n).long() for n in tree.nodes[1:])
        weights = tuple(t(w) for w, _ in tree.weights)
        biases = tuple(t(b) for _, b in tree.weights)
        alphas = tuple(float(a) if select_alpha is None else float(select_alpha) for a in tree.alphas)
        window_biases = tuple(t(b) for b in tree.window_biases)
    return GraphConstants(
        channel_weights=tuple(arrays.channel_weights),
        first_nodes=torch.stack([t(rows), t(cols), t(channels)], 1),
        rigid_matrix=t(matrix), tree_nodes=nodes, tree_weights=weights, tree_biases=biases,
        alphas=alphas, window_biases=window_biases, pixel_mean=model.pixel_mean.detach())


def _gather_nodes(a: torch.Tensor, prow: torch.Tensor, pcol: torch.Tensor, scale: int,
                  rows: torch.Tensor, cols: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """(B, n) values of the (H, W, B, C) map ``a`` at a peak tree's nodes: (``rows``, ``cols``)
    counted from ``scale`` times the peak's cell, in channel ``channels``."""
    _, w, b, c = a.shape
    r = prow[:, None] * scale + rows[None]
    q = pcol[:, None] * scale + cols[None]
    flat = ((r * w + q) * b + torch.arange(b)[:, None]) * c + channels[None]
    return a.reshape(-1)[flat]


def match_graph(crops: torch.Tensor, filters: torch.Tensor, prev: torch.Tensor,
                k: GraphConstants, *, patch_size: int, stride: int, zero_mean: bool, box_mean: bool,
                template_size: int, response_size: int, levels: int, rigid: bool, centre_gain: float,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One search per window: ``(boxes (B, 4) x,y,w,h, confidence (B,), cell (B, 2) dx,dy, peak (B,))``.

    ``crops``: (B, 3, S, S) search crops on the 0-255 scale (``crop_windows``); ``filters``:
    (B, N^2, 3, K, K) templates (``PatchMatcher.encode``); ``prev``: (B, 4) cx,cy,w,h of the
    windows' boxes. The keyword arguments are the model's geometry and the
    decoding options (compiled in)."""
    b = crops.shape[0]
    mean = k.pixel_mean
    if box_mean:  # PatchNet.centred, input_mean="box"
        lo = (crops.shape[-1] - template_size) // 2
        centred = crops - crops[:, :, lo:lo + template_size, lo:lo + template_size].mean((2, 3), keepdim=True)
    else:
        centred = crops - mean
    s = centred.shape[-1]
    p, kk = filters.shape[1], filters.shape[-1]
    # the correlation (PatchCorrelation.correlate), the first level's weights folded into the filters
    weighted = filters * k.channel_weights[0].view(1, -1, 1, 1, 1)
    x = centred.reshape(1, b * 3, s, s).contiguous(memory_format=torch.channels_last)
    w = weighted.reshape(b * p, 3, kk, kk).contiguous(memory_format=torch.channels_last)
    corr = F.conv2d(x, w, stride=stride, groups=b)[0]
    h, wd = corr.shape[-2:]
    corr = corr.permute(1, 2, 0).reshape(h, wd, b, p)
    # its normalisation (PatchCorrelation.inference_scale)
    sq = (centred * centred).sum(1, keepdim=True)
    if zero_mean:
        sums = _sums_by_doubling(torch.cat([sq, centred], 1), patch_size, stride)
        means = sums[:, 1:]
        energy = torch.clamp_min(sums[:, :1] - (means * means).sum(1, keepdim=True) / (patch_size * patch_size), 0)
    else:
        energy = _sums_by_doubling(sq, patch_size, stride)
    eps = 0.1 * energy.reshape(b, -1).std(1) + 1e-9
    scale = (0.01 / torch.sqrt(energy + eps.view(b, 1, 1, 1))).permute(2, 3, 0, 1)
    maps = score_maps(corr, scale, list(k.channel_weights))
    # the peak and its confidence (peak_cell, decode_peak)
    r = response_size
    score = maps[-1].permute(2, 3, 0, 1).reshape(b, r * r)
    mx, mn = score.amax(1), score.amin(1)
    flat = (mx - mn) <= 1e-12
    best = torch.where(flat, (r * r) // 2, score.argmax(1))
    sp = torch.clamp_min(score - 0.75 * mx[:, None], 0)
    around = F.max_pool2d(sp.view(b, 1, r, r), 3, 1, 1).view(b, r * r)
    peaks = torch.where(sp == around, sp, 0.0)
    total = peaks.sum(1)
    live = (total > 0) & ((mx - mn) > 1e-12)
    at_best = peaks.gather(1, best[:, None])[:, 0]
    confidence = torch.where(live, at_best / torch.clamp_min(total, 1e-12), 0.0)
    prow, pcol = best // r, best % r
    half = r // 2
    cell = torch.stack([pcol - half, prow - half], 1).to(score.dtype)
    # the first level's nodes of the peak's tree (PatchNet._first_level_nodes)
    pooled = 1 << (levels - 1)
    fn = k.first_nodes
    first_nodes = _gather_nodes(maps[0], prow, pcol, pooled, fn[:, 0], fn[:, 1], fn[:, 2])
    # the offsets on the peak's tree (PatchNet._offsets_on_tree)
    if k.tree_weights:
        selected = None
        off = None
        for level in range(levels):
            if level:
                off = (selected.reshape(b, -1, 16, 1) * k.tree_weights[level - 1]).sum(2) + k.tree_biases[level - 1]
            if level == levels - 1:
                break
            if level == 0:
                values = first_nodes
            else:
                nodes = k.tree_nodes[level - 1]
                values = _gather_nodes(maps[level], prow, pcol, 1 << (levels - 1 - level),
                                       nodes[:, 1], nodes[:, 2], nodes[:, 0])
            sel = torch.softmax(values.reshape(b, -1, 4) * k.alphas[level], -1)
            if off is None:
                selected = sel @ k.window_biases[level]
            else:
                selected = (sel[..., None] * (off.reshape(b, -1, 4, 4) + k.window_biases[level])).sum(2)
        off = off[:, 0]
    else:
        off = score.new_zeros(b, 4)
    lo_off, hi_off = off[:, 0:2], off[:, 2:4]
    if rigid:  # PatchNet.rigid_placement
        sums = first_nodes @ k.rigid_matrix  # (B, pooled * pooled)
        top = sums.argmax(1)
        yi, xi = top // pooled, top % pooled
        at = torch.stack([yi, xi], 1)
        last = pooled - 1
        grid_sums = sums.view(b, pooled, pooled)
        batch = torch.arange(b)[:, None]
        ny = (yi[:, None] + torch.tensor([-1, 1, 0, 0])).clamp(0, last)
        nx = (xi[:, None] + torch.tensor([0, 0, -1, 1])).clamp(0, last)
        near = grid_sums[batch, ny, nx].reshape(b, 2, 2)  # (B, axis, before | after)
        curve = near[:, :, 0] + near[:, :, 1] - 2 * sums.gather(1, top[:, None])
        ok = (at > 0) & (at < last) & (curve < 0)  # a parabola where both neighbours are in the cell
        step = torch.where(ok, 0.5 * (near[:, :, 0] - near[:, :, 1]) / torch.where(ok, curve, -1.0), 0.0)
        pos = torch.stack([prow, pcol], 1) * pooled + at + step  # placement row, col in correlation steps
        shift_px = stride * pos + ((template_size - 1) / 2 - (s - 1) / 2)
        centre = shift_px.flip(1) * (template_size // patch_size / template_size)  # (dx, dy) in cells
    else:
        centre = cell + (centre_gain * 0.5) * (lo_off + hi_off)
    half_span = 0.5 * (hi_off - lo_off)  # half the box's size, in cells
    size = prev[:, 2:]
    unit = size / 8.0
    boxes = torch.cat([prev[:, :2] - size / 2 + (centre - half_span) * unit, size + 2 * half_span * unit], 1)
    return boxes, confidence, cell, score.gather(1, best[:, None])[:, 0]


_compiled = None
_failed = False
_aot_failed = False
# (id(constants), signature) -> (constants, runner); holding the constants keeps their id unique
_aot_runners: dict = {}
_AOT_KEEP = 8
# package files kept in the cache folder (about 2 MB each), the most recently used first
_AOT_FILES_KEEP = 32


def compiled_match(crops: torch.Tensor, filters: torch.Tensor, prev: torch.Tensor,
                   constants: GraphConstants, **options):
    """``match_graph`` compiled, or None where compiling failed in this process (the caller then
    matches eagerly).

    For one box (``crops`` of batch 1): the grouped convolution compiles its group count in, so a
    graph per batch size would be needed, and the batched matches of a detector are better served by
    ``PatchNet.locate(compiled=True)``. The sizes are compiled in: one graph per model, window,
    decoding and thread count. The ahead-of-time graph comes first; ``torch.compile``'s is the
    fallback (past torch's recompile limit its further graphs run eagerly)."""
    global _compiled, _failed
    if crops.shape[0] != 1:
        raise ValueError(f"compiled_match takes one box, got {crops.shape[0]}")
    found = _aot_match(crops, filters, prev, constants, options)
    if found is not None:
        return found
    if _failed:
        return None
    if _compiled is None:
        _compiled = torch.compile(match_graph, dynamic=False)
    try:
        return _compiled(crops, filters, prev, constants, **options)
    except Exception as e:  # noqa: BLE001 - no C++ compiler, an unsupported platform: stay eager
        _failed = True
        logger.warning("compiling PatchNet's match failed (%s: %s); matching runs eagerly",
                       type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        return None


class _MatchModule(torch.nn.Module):
    """``match_graph`` with its constants and options fixed, for ``torch.export``."""

    def __init__(self, constants: GraphConstants, options: dict):
        super().__init__()
        self.constants, self.options = constants, options

    def forward(self, crops, filters, prev):
        return match_graph(crops, filters, prev, self.constants, **self.options)


def _signature(crops, filters, prev, options: dict) -> tuple:
    """What an ahead-of-time graph is specialised to, besides the constants' values."""
    layout = tuple((tuple(t.shape), t.stride(), str(t.dtype)) for t in (crops, filters, prev))
    return layout, tuple(sorted(options.items())), torch.get_num_threads()


def _aot_match(crops, filters, prev, constants: GraphConstants, options: dict):
    """The ahead-of-time graph's answer, or None where it cannot be built (one warning)."""
    global _aot_failed
    if _aot_failed:
        return None
    key = (id(constants), _signature(crops, filters, prev, options))
    hit = _aot_runners.get(key)
    if hit is None:  # a new model, window or decoding: load or build
        try:
            runner = _load_or_build(crops, filters, prev, constants, options, key[1])
        except Exception as e:  # noqa: BLE001 - no compiler, no writable cache, an export gap
            _aot_failed = True
            logger.warning("compiling PatchNet's match ahead of time failed (%s: %s); using torch.compile",
                           type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            return None
        while len(_aot_runners) >= _AOT_KEEP:  # models rebuilt many times (training) do not pile up
            _aot_runners.pop(next(iter(_aot_runners)))
        hit = _aot_runners[key] = (constants, runner)
    return hit[1](crops, filters, prev)


def _cache_path(constants: GraphConstants, signature: tuple) -> Path:
    """The package file of one graph: named by a digest of torch's version, the signature and
    every constant's values, in torch's compile cache folder."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    digest = hashlib.sha256(repr((torch.__version__, signature)).encode())
    for field in fields(constants):
        value = getattr(constants, field.name)
        for item in value if isinstance(value, tuple) else (value,):
            if torch.is_tensor(item):
                digest.update(repr((field.name, tuple(item.shape), str(item.dtype))).encode())
                digest.update(item.detach().cpu().contiguous().numpy().tobytes())
            else:
                digest.update(repr((field.name, item)).encode())
    return Path(cache_dir()) / "patchnet_zoo" / f"match-{digest.hexdigest()[:32]}.pt2"


def _prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` most recently used package files in ``folder`` (each process
    marks a file used when it loads it); returns those deleted. Files still being written are left
    alone; a file another process deleted meanwhile is skipped."""
    dated = []
    for path in folder.glob("match-*.pt2"):
        if ".tmp." in path.name:
            continue
        try:
            dated.append((path.stat().st_mtime, path))
        except OSError:  # deleted meanwhile by another process
            continue
    removed = []
    for _, path in sorted(dated, reverse=True)[keep:]:
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


@contextlib.contextmanager
def _quiet_cuda_lookup():
    """Silence torch's warning, while it builds a CPU package, that no CUDA runtime is found: it
    says nothing about the CPU graph and looks like an error on every machine without a GPU."""
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _load_or_build(crops, filters, prev, constants: GraphConstants, options: dict, signature: tuple):
    path = _cache_path(constants, signature)
    if path.exists():
        try:
            os.utime(path)  # used now: pruning keeps the packages in use
        except OSError:
            pass
    else:
        logger.info("compiling PatchNet's match ahead of time into %s (once per model, window, decoding and "
                    "thread count; some seconds)", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(False):  # export traces ordinary tensors
            example = tuple(t.clone() for t in (crops, filters, prev))
            program = torch.export.export(_MatchModule(constants, options), example)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.pt2")
        try:
            with _quiet_cuda_lookup():
                torch._inductor.aoti_compile_and_package(program, package_path=str(tmp))
            os.replace(tmp, path)  # whole files only: another process may be building the same one
        finally:
            tmp.unlink(missing_ok=True)
        _prune(path.parent, _AOT_FILES_KEEP)
    return torch._inductor.aoti_load_package(str(path))
