"""PatchNet's score path as one compiled graph (``torch.compile``), for inference; optional.

Eager PyTorch runs the score path after the correlation's convolution as a few dozen small
operations: the correlation's scaling, the four shifted tap sums and the channel weights of every
level, the max pooling in between. On a CPU each of them costs some microseconds of dispatch besides
its arithmetic. Compiled, they become a handful of fused loops.

The compiled function computes the same float32 operations in the same order as the eager path of
``PatchNet.locate`` (products, sums of four taps from left to right, maxima): the maps come out the
same, bit for bit (``tests/test_compiled_scores.py`` checks it on real frames). Compiling needs a C++
compiler and takes some seconds on the first match; where it fails, a warning is logged once and
matching goes on eagerly.
"""
from __future__ import annotations

import logging

import torch

from .layers import TAP_SPACING, TAPS

logger = logging.getLogger(__name__)

__all__ = ["score_maps", "compiled_score_maps"]


def score_maps(corr: torch.Tensor, scale: torch.Tensor, channel_weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each score level's output (H, W, B, C) in tap-major channel order, the last one the score.

    ``corr``: the correlation of filters whose first-level channel weights are already folded in
    (as ``PatchNet.locate`` does), before its normalisation (``PatchCorrelation.correlate``);
    ``scale``: that normalisation, (H, W, B, 1) (``PatchCorrelation.inference_scale``);
    ``channel_weights``: every level's per-channel weights (the first is not applied again)."""
    y = corr * scale
    maps = []
    for level, weights in enumerate(channel_weights):
        if level:
            h, wd = y.shape[0] // 2, y.shape[1] // 2  # 2x2 max pooling of the level below
            win = y.reshape(h, 2, wd, 2, *y.shape[2:])
            y = torch.maximum(torch.maximum(win[:, 0, :, 0], win[:, 1, :, 0]),
                              torch.maximum(win[:, 0, :, 1], win[:, 1, :, 1])) * weights
        h, wd, b, ch = y.shape
        ho, wo = h - TAP_SPACING, wd - TAP_SPACING
        taps = y.reshape(h, wd, b, 4, ch // 4)
        y = None
        for t, (i, j) in enumerate(TAPS):  # the eager path's order: ((t0 + t1) + t2) + t3
            tap = taps[TAP_SPACING * i: TAP_SPACING * i + ho, TAP_SPACING * j: TAP_SPACING * j + wo, :, t]
            y = tap if y is None else y + tap
        maps.append(y)
    return maps


_compiled = None
_failed = False


def compiled_score_maps(corr: torch.Tensor, scale: torch.Tensor,
                        channel_weights: list[torch.Tensor]) -> list[torch.Tensor] | None:
    """``score_maps`` compiled, or None where compiling failed in this process (the caller then runs
    its eager path).

    The map sizes are compiled in (loops of known length run faster than loops over symbolic
    sizes), the batch size is not: one graph serves one box, one more every larger batch, per
    window and model. Torch compiles again for a new window, model or thread count, up to its
    recompile limit per process, and runs further shapes eagerly."""
    global _compiled, _failed
    if _failed:
        return None
    if _compiled is None:
        _compiled = torch.compile(score_maps, dynamic=False)
    try:
        if corr.shape[2] > 1:  # the batch dimension; a single box gets a graph of its own
            torch._dynamo.mark_dynamic(corr, 2)
            torch._dynamo.mark_dynamic(scale, 2)
        return _compiled(corr, scale, channel_weights)
    except Exception as e:  # noqa: BLE001 - no C++ compiler, an unsupported platform: stay eager
        _failed = True
        logger.warning("compiling PatchNet's score path failed (%s: %s); matching runs eagerly",
                       type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        return None
