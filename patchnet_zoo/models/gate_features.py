"""The 13 hand-designed features a depth gate looks at, computed from one correlation map.

Per map (min-max normalised to [0, 1]): the true kurtosis (standardised 4th moment, 3 for a
Gaussian; the original code computed mean^4 / var^2, which is not a kurtosis), the entropy of a
100-bin histogram divided by log(100) (so it lies in [0, 1] whatever the bin count), the depth
index, the values of the 5 highest local maxima, and their squared distances from the map centre
in units of the half-width (so 1 = the edge of the search range). A sharp, single, central peak
(high kurtosis, low entropy, one dominant local maximum near the centre) is what an easy frame
looks like; several comparable peaks or a flat map is what a hard one looks like.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["N_GATE_FEATURES", "kurtosis", "histogram_entropy", "top_peaks", "gate_features"]

N_GATE_FEATURES = 13


def kurtosis(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Standardised 4th moment E[(x - mu)^4] / var^2 over the last dimension (population moments).

    A constant input has no defined kurtosis; it is returned as 0 (no peak at all)."""
    mu = x.mean(-1, keepdim=True)
    d = x - mu
    var = d.pow(2).mean(-1)
    m4 = d.pow(4).mean(-1)
    return torch.where(var > eps, m4 / var.clamp(min=eps).pow(2), torch.zeros_like(var))


def histogram_entropy(x: torch.Tensor, bins: int = 100) -> torch.Tensor:
    """Entropy of the ``bins``-bin histogram of values in [0, 1] (last dimension), / log(bins)."""
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    idx = (x.clamp(0, 1) * bins).long().clamp(max=bins - 1)
    counts = torch.zeros(*x.shape[:-1], bins, dtype=x.dtype, device=x.device)
    counts.scatter_add_(-1, idx, torch.ones_like(x))
    p = counts / x.shape[-1]
    ent = -(p * torch.log(p.clamp(min=1e-30))).sum(-1)
    return ent / math.log(bins)


def top_peaks(maps: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and squared centre distances of the ``k`` highest local maxima of (B, H, W) maps.

    A local maximum is a cell equal to the maximum of its 3x3 neighbourhood. Distances are in units
    of the half-width ((W - 1) / 2 cells). Maps with fewer than ``k`` maxima are padded with value 0
    and distance 0."""
    B, H, W = maps.shape
    pooled = F.max_pool2d(maps.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)
    is_peak = maps >= pooled
    scores = torch.where(is_peak, maps, torch.full_like(maps, -1.0)).flatten(1)
    kk = min(k, H * W)
    vals, idx = scores.topk(kk, dim=1)
    ys = (idx // W).to(maps.dtype) - (H - 1) / 2
    xs = (idx % W).to(maps.dtype) - (W - 1) / 2
    half = max((W - 1) / 2, (H - 1) / 2, 1.0)
    dist = (xs.pow(2) + ys.pow(2)) / half ** 2
    valid = vals >= 0
    vals = torch.where(valid, vals, torch.zeros_like(vals))
    dist = torch.where(valid, dist, torch.zeros_like(dist))
    if kk < k:
        pad = maps.new_zeros(B, k - kk)
        vals, dist = torch.cat([vals, pad], 1), torch.cat([dist, pad], 1)
    return vals, dist


def gate_features(maps: torch.Tensor, depth: int, bins: int = 100, k: int = 5) -> torch.Tensor:
    """(B, 13) features of min-max normalised (B, H, W) correlation maps at ``depth`` (1-based)."""
    if maps.ndim != 3:
        raise ValueError(f"maps must be (B, H, W), got {tuple(maps.shape)}")
    flat = maps.flatten(1)
    vals, dist = top_peaks(maps, k)
    depth_col = maps.new_full((maps.shape[0], 1), float(depth))
    return torch.cat([kurtosis(flat).unsqueeze(1), histogram_entropy(flat, bins).unsqueeze(1), depth_col,
                      vals, dist], 1)
