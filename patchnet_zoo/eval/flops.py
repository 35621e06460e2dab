"""Multiply-accumulates (MACs) of one PatchNet match, counted from what runs.

``macs`` follows the paper's convention: ``torch.utils.flop_counter.FlopCounterMode`` runs the dense
reference path (first score convolution grouped by parent, every later aggregation convolution a
dense 5x5 kernel over all its input channels), plus two things that counter does not see:

* the Fourier reweighting. A 2-D real FFT of a KxK patch is counted as the separable DFT that a
  transform this small amounts to: rows (K real -> K/2+1 complex, 2 MACs per input and output)
  then columns (K complex -> K complex, 4 MACs each) = 6 K^2 (K/2+1) MACs; the inverse the same;
  plus 2 K (K/2+1) multiplies for the coefficients.
* the soft-select pools: 4 MACs per pooled score value (exp and normalisation) and 4 per pooled
  offset value (the weighted sum).

``macs_sparse`` counts the aggregation at its non-zero taps only (what the fast path executes).
All figures are MACs (1 MAC = 2 FLOPs), batch 1.
"""
from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..models.patchnet import PatchNet

__all__ = ["count_patchnet_flops", "flops_report", "fft_macs"]


def fft_macs(k: int) -> int:
    """MACs of one rfft2 (or irfft2) of a KxK real patch, counted as a separable DFT."""
    return 6 * k * k * (k // 2 + 1)


def _fft_formula(k_holder: dict):
    def formula(x_shape, *args, out_shape=None, **kwargs) -> int:
        # x: (..., K, K) for r2c; (..., K, K//2+1) for c2r; count per KxK patch, in FLOPs (= 2 MACs)
        patches = math.prod(x_shape[:-2])
        return 2 * patches * fft_macs(k_holder["k"])
    return formula


def _pool_macs(model: PatchNet) -> int:
    g = model.geometry
    macs, m = 0, g.corr_size
    channels = g.patches_per_side ** 2
    for _ in range(g.levels - 1):
        m = (m - 4) // 2
        channels //= 4
        macs += 4 * channels * m * m  # exp + normalisation per pooled score
        if model.box_regression:
            macs += 4 * 4 * channels * m * m  # weighted sum per pooled offset value
    return macs


def _sparse_aggregation_macs(model: PatchNet) -> int:
    g = model.geometry
    macs, m = 0, g.corr_size
    for level, conv in enumerate(model.score_convs):
        m -= 4
        macs += conv.parents * 4 * m * m  # 4 taps per parent
        if model.offset_convs is not None and level > 0:
            macs += conv.parents * 4 * 4 * 2 * m * m  # 4 coords x 4 taps x (min, max)
        if level < g.levels - 1:
            m //= 2
    return macs


@torch.no_grad()
def count_patchnet_flops(model: PatchNet) -> dict:
    """``{"macs", "macs_sparse", "params", "nonzero_params", "breakdown": {...}}`` for one match."""
    g = model.geometry
    t = torch.rand(1, 3, g.template_size, g.template_size) * 255
    s = torch.rand(1, 3, g.search_size, g.search_size) * 255
    holder = {"k": g.patch_size}
    aten = torch.ops.aten
    mapping = {aten._fft_r2c: _fft_formula(holder), aten._fft_c2r: _fft_formula(holder)}
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        model.forward_reference(t, s)
    by_op = {str(k): v // 2 for k, v in counter.get_flop_counts()["Global"].items()}
    fft = sum(v for k, v in by_op.items() if "fft" in k)
    conv = sum(v for k, v in by_op.items() if "convolution" in k)
    corr = g.patches_per_side ** 2 * 3 * g.patch_size ** 2 * g.corr_size ** 2
    # the ones-kernel window sum of x^2 (and, for zero-mean patches, of each of the 3 channels)
    energy = g.patch_size ** 2 * g.corr_size ** 2 * (4 if model.patch_norm == "zero_mean" else 1)
    coef = (2 * g.patch_size * (g.patch_size // 2 + 1) * 3 * g.patches_per_side ** 2) if model.fourier else 0
    pools = _pool_macs(model)
    aggregation_dense = conv - corr - energy
    macs = conv + fft + coef + pools
    sparse_agg = _sparse_aggregation_macs(model)
    return {
        "macs": int(macs),
        "macs_sparse": int(corr + energy + fft + coef + pools + sparse_agg),
        "params": int(sum(p.numel() for p in model.parameters())),
        "nonzero_params": model.nonzero_parameters(),
        "breakdown": {
            "correlation": int(corr),
            "window_energy": int(energy),
            "fourier_fft": int(fft),
            "fourier_coefficients": int(coef),
            "aggregation_dense": int(aggregation_dense),
            "aggregation_sparse": int(sparse_agg),
            "soft_select_pools": int(pools),
        },
        "unit": "multiply-accumulates per match (1 MAC = 2 FLOPs), batch 1",
    }


def flops_report(model: PatchNet | None = None) -> dict:
    """The report for ``model`` (default: PatchNet at the paper's settings)."""
    return count_patchnet_flops(model if model is not None else PatchNet())
