"""PatchNet (Mao, Zhu, Han, Dally): short-range template matching with patch correlation.

Shapes at the defaults (K = 8 pixels per patch, N = 8 patches per side, 7x7 response):

| stage                 | score        | offsets (x_min, y_min, x_max, y_max per score channel) |
|-----------------------|--------------|----------------------------------------------------------|
| patch correlation     | 64 x 56 x 56 | -                                                        |
| sparse conv 5x5       | 16 x 52 x 52 | zeros                                                    |
| soft-select pool 2x2  | 16 x 26 x 26 | 16 x 4 x 26 x 26 (per-position bias)                     |
| sparse conv 5x5       |  4 x 22 x 22 | 4 x 4 x 22 x 22                                          |
| soft-select pool 2x2  |  4 x 11 x 11 | 4 x 4 x 11 x 11                                          |
| sparse conv 5x5       |  1 x 7 x 7   | 1 x 4 x 7 x 7                                            |

The paper's first 2x2 pooling is folded into a stride-2 correlation (stride K/4 in general), as the
authors' code did; the FLOP count reports exactly what runs. Children are then 4 correlation cells
apart at every level, which is why every aggregation kernel is 5x5 with taps at (0|4, 0|4), and one
response cell is always template/8 pixels, i.e. one eighth of the box.

Inputs are crops on the 0-255 RGB scale; the model centres them itself (``input_mean``).
"""
from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin

from .compiled_scores import compiled_score_maps
from .layers import (TAP_SPACING, TAPS, PatchCorrelation, SoftSelectPool, SparseOffsetConv, SparseScoreConv,
                     parameters_key, tap_major_order)

IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
INPUT_MEANS = ("dataset", "box")
PATCH_NORMS = ("energy", "zero_mean")


@dataclass(frozen=True)
class PatchNetGeometry:
    """Sizes derived from (K, N, response size); each is computed once per geometry (every match
    reads several of them)."""

    patch_size: int
    patches_per_side: int
    response_size: int

    @functools.cached_property
    def levels(self) -> int:
        return int(round(math.log2(self.patches_per_side)))

    @functools.cached_property
    def template_size(self) -> int:
        return self.patch_size * self.patches_per_side

    @functools.cached_property
    def corr_stride(self) -> int:
        return self.patch_size // 4

    @functools.cached_property
    def corr_size(self) -> int:
        m = self.response_size + 4
        for _ in range(self.levels - 1):
            m = 2 * m + 4
        return m

    @functools.cached_property
    def search_size(self) -> int:
        return self.corr_size * self.corr_stride + self.patch_size - 1

    @functools.cached_property
    def search_scale(self) -> float:
        """Search window side / box side (119/64 = 1.859 at the defaults)."""
        return self.search_size / self.template_size

    @functools.cached_property
    def max_shift_cells(self) -> int:
        return self.response_size // 2


class PatchNet(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="patchnet_zoo",
    tags=["template-matching", "object-tracking", "video-object-detection", "patchnet"],
    license="mit",
    repo_url="https://github.com/patchnet-zoo/patchnet_zoo",
):
    """Patch correlation + Fourier reweighting + structurally sparse aggregation + hierarchical box
    regression.

    Args:
        patch_size: K, pixels per patch side (a multiple of 4).
        patches_per_side: N, a power of two >= 2.
        response_size: side of the response map (odd); 7 gives the paper's +-3 cells.
        fourier: Fourier reweighting of the patches (ablation: False).
        box_regression: hierarchical box regression (ablation: False -> offsets are all zero).
        pixel_mean: per-channel RGB mean on the 0-255 scale: subtracted from every crop with
            ``input_mean="dataset"``, and the colour of the crops' out-of-frame parts.
        input_mean: what every crop is centred on before the correlation. ``"dataset"``
            (default, the paper): the fixed ``pixel_mean``. ``"box"``: the mean colour of the box
            the crop is centred on (the whole template; the template-sized middle of a search
            crop), so that a scene much darker or brighter than ``pixel_mean`` does not drown every
            patch correlation in one constant and flatten the score map (docs/design.md,
            "Centring the crops").
        patch_norm: how each patch correlation is normalised. ``"energy"`` (default, the paper):
            by the search window's energy only. ``"zero_mean"``: filters and windows also lose
            their per-channel means, so every patch correlation is a local zero-mean normalised
            cross-correlation, blind to a patch's flat colour (docs/design.md, "Zero-mean patches").
    """

    def __init__(
        self,
        patch_size: int = 8,
        patches_per_side: int = 8,
        response_size: int = 7,
        fourier: bool = True,
        box_regression: bool = True,
        pixel_mean: tuple[float, float, float] = IMAGENET_MEAN_255,
        input_mean: str = "dataset",
        patch_norm: str = "energy",
    ):
        super().__init__()
        if input_mean not in INPUT_MEANS:
            raise ValueError(f"input_mean must be one of {INPUT_MEANS}, got {input_mean!r}")
        if patch_norm not in PATCH_NORMS:
            raise ValueError(f"patch_norm must be one of {PATCH_NORMS}, got {patch_norm!r}")
        if patch_size < 4 or patch_size % 4:
            raise ValueError(f"patch_size must be a positive multiple of 4, got {patch_size}")
        if patches_per_side < 2 or patches_per_side & (patches_per_side - 1):
            raise ValueError(f"patches_per_side must be a power of two >= 2, got {patches_per_side}")
        if response_size < 1 or response_size % 2 == 0:
            raise ValueError(f"response_size must be odd and positive, got {response_size}")
        self.geometry = PatchNetGeometry(patch_size, patches_per_side, response_size)
        self.fourier = fourier
        self.box_regression = box_regression
        self.input_mean = input_mean
        self.patch_norm = patch_norm
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(1, 3, 1, 1))
        g = self.geometry
        self.correlation = PatchCorrelation(patch_size, patches_per_side, g.corr_stride, fourier,
                                            zero_mean=patch_norm == "zero_mean")
        sides = [patches_per_side >> i for i in range(g.levels)]  # child grid side at each level
        self.score_convs = nn.ModuleList(SparseScoreConv(s) for s in sides)
        self.pools = nn.ModuleList(SoftSelectPool() for _ in range(g.levels - 1))
        # the first level's offsets are zero, so offset convs exist from the second level on
        self.offset_convs = nn.ModuleList(SparseOffsetConv(s) for s in sides[1:]) if box_regression else None
        self.register_buffer("fast_order", tap_major_order(patches_per_side), persistent=False)
        for level, nodes in enumerate(peak_tree(g.levels)):
            self.register_buffer(f"peak_nodes_{level}", nodes, persistent=False)

    # ----------------------------------------------------------------------------------- forward
    @property
    def template_size(self) -> int:
        return self.geometry.template_size

    @property
    def search_size(self) -> int:
        return self.geometry.search_size

    def encode_template(self, template: torch.Tensor) -> torch.Tensor:
        """(B, 3, KN, KN) crops on the 0-255 scale -> (B, N^2, 3, K, K) correlation filters, in the
        fast path's tap-major patch order (``fast_order``). Cache the result to match one template
        against many frames."""
        self._check_crop(template, self.template_size, "template")
        return self.correlation.filters(self.centred(template), self.fast_order)

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(score (B, 1, R, R), offsets (B, 4, R, R))`` in response cells."""
        return self.match_filters(self.encode_template(template), search)

    def match_filters(self, filters: torch.Tensor, search: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_crop(search, self.search_size, "search")
        if filters.shape[0] != search.shape[0]:
            raise ValueError(f"{filters.shape[0]} templates but {search.shape[0]} search crops")
        # (H, W, B, C) layout and tap-major channel order from here on
        s = self.correlation(filters, self.centred(search))
        off = None
        for level, conv in enumerate(self.score_convs):
            new_s = conv(s)
            if self.offset_convs is not None and level > 0:
                off = self.offset_convs[level - 1](off)
            s = new_s
            if level < len(self.pools):
                s, off = self.pools[level](s, off, with_offsets=self.offset_convs is not None)
        score = s.permute(2, 3, 0, 1)  # (B, 1, R, R)
        if off is None:
            return score, score.new_zeros(score.shape[0], 4, *score.shape[2:])
        return score, off[:, :, :, 0, :].permute(2, 3, 0, 1)

    def locate(self, filters: torch.Tensor, search: torch.Tensor, select_alpha: float | None = None,
               rigid: bool = False, compiled: bool = False) -> "Located":
        """Inference: the score map and the box offsets at its peak only.

        ``decode`` reads the offsets at one cell, and that cell's offsets depend on a small tree of
        cells below it (4 children, each soft-selected from a 2x2 window, per level: 256 level-0
        cells at N = 8). So the offset maps are never built: the score path runs with plain max
        pooling and the offsets are computed on the tree of the peak alone. Same numbers as
        ``match_filters`` at the peak, a fraction of the operations (tests check both).
        ``select_alpha`` replaces the learned soft-select temperatures of the offsets (None: keep).
        ``rigid`` also returns ``rigid_shift``: the centre shift, in response cells, of the best
        rigid placement of the whole template within the peak cell (``rigid_placement``).
        ``compiled`` runs the score path as one compiled graph (``compiled_scores``; the same maps,
        bit for bit), eagerly where compiling is not possible."""
        self._check_crop(search, self.search_size, "search")
        if filters.shape[0] != search.shape[0]:
            raise ValueError(f"{filters.shape[0]} templates but {search.shape[0]} search crops")
        arrays = self._inference_arrays()
        # the first score convolution weighs each correlation channel by a constant: that weight is
        # folded into the filters (3,000 numbers a box) instead of a pass over the correlation volume
        weighted = filters * arrays.channel_weights[0].view(1, -1, 1, 1, 1)
        centred = self.centred(search)
        maps = None
        if compiled:
            maps = compiled_score_maps(self.correlation.correlate(weighted, centred),
                                       self.correlation.inference_scale(centred), arrays.channel_weights)
        if maps is None:
            maps = self._score_maps_eager(weighted, centred, arrays)
        score = maps[-1].permute(2, 3, 0, 1)  # (B, 1, R, R)
        b, r = score.shape[0], score.shape[-1]
        flat = _peak_index(_as_numpy(score).reshape(b, r * r))
        best = _from_numpy(flat, score.device)
        peak = np.stack(np.divmod(flat, r), 1)  # (B, 2) row, col
        first_nodes = self._first_level_nodes(maps[0], peak, arrays) if rigid else None
        shift = _from_numpy(self.rigid_placement(first_nodes, peak, arrays), score.device) if rigid else None
        if arrays.tree is None:  # no box regression, or a single level (whose offsets are zero)
            return Located(score, best, score.new_zeros(b, 4), shift)
        offsets = self._offsets_on_tree(maps, peak, arrays.tree, select_alpha, first_nodes)
        return Located(score, best, _from_numpy(offsets, score.device), shift)

    def _score_maps_eager(self, weighted: torch.Tensor, centred: torch.Tensor,
                          arrays: "_InferenceArrays") -> list[torch.Tensor]:
        """Every score level's output (H, W, B, C), tap-major channels; the last is the score."""
        s = self.correlation(weighted, centred)  # (H, W, B, C), tap-major channels
        maps = []
        for level, conv in enumerate(arrays.score_convs):
            s = conv.sum_taps(s if level == 0 else s * arrays.channel_weights[level])
            maps.append(s)
            if level < len(arrays.score_convs) - 1:  # 2x2 max pooling
                h, w = s.shape[0] // 2, s.shape[1] // 2
                win = s.view(h, 2, w, 2, *s.shape[2:])
                rows = torch.maximum(win.select(1, 0), win.select(1, 1))  # (h, w, 2, B, C)
                s = torch.maximum(rows.select(2, 0), rows.select(2, 1))
        return maps

    def _inference_arrays(self) -> "_InferenceArrays":
        """What ``locate`` derives from the parameters: every score convolution's channel weights,
        the peak tree's weights and the rigid placement's matrix. Built once and reused until a
        parameter changes (an optimizer step, a load, a move to another device or dtype), which
        one check of all parameters per match finds (cheaper than one check per piece)."""
        slots = self.__dict__.get("_parameter_slots")
        if slots is None:  # where every parameter lives, so that a reassigned one is seen too
            slots = [(m._parameters, name) for m in self.modules() for name in m._parameters]
            self.__dict__["_parameter_slots"] = slots
        key = parameters_key(*(params[name] for params, name in slots))
        cached = self.__dict__.get("_inference_cache")
        if cached is None or cached[0] != key:
            with torch.no_grad():
                convs = list(self.score_convs)
                arrays = _InferenceArrays(
                    score_convs=convs,
                    channel_weights=[conv._channel_weights() for conv in convs],
                    rigid=self._rigid_arrays(),
                    tree=self._tree_arrays() if self.offset_convs else None)
            cached = (key, arrays)
            self.__dict__["_inference_cache"] = cached
        return cached[1]

    def _first_level_nodes(self, first: torch.Tensor, peak: np.ndarray, arrays: "_InferenceArrays") -> np.ndarray:
        """(B, n) values of the first aggregation level's output (H, W, B, C) at the first-level
        nodes of each peak's tree (``peak_nodes_0`` order), in one flat gather."""
        _, w, b, c = first.shape
        pooled = 1 << (self.geometry.levels - 1)  # first-level rows per response cell
        # flat index: ((row * W + col) * B + batch) * C + channel, rows counted from pooled * peak
        base = ((peak[:, 0] * (pooled * w) + peak[:, 1] * pooled) * b + np.arange(b)) * c
        return _take_flat(first, base[:, None] + arrays.first_node_offsets(w, b * c))

    def rigid_placement(self, first_nodes: np.ndarray, peak: np.ndarray, arrays: "_InferenceArrays") -> np.ndarray:
        """Centre shift (B, 2) float32 (dx, dy) in response cells of the best rigid template placement in
        each box's peak cell.

        The pooled score lets every group of patches settle at its own spot within a cell, which
        makes it robust to deformation (and good at picking the cell) but leaves the box's position
        within the cell to the regression. Summing the patch correlations with every patch at its
        place in the template (the aggregation's weights multiplied along each patch's path, no
        pooling) scores whole-template placements one correlation step apart. The placements pooled
        into the peak cell are exactly the first level's nodes of the peak's tree: their values
        (``first_nodes``, from ``_first_level_nodes``; the offsets read the same ones) and one small
        matrix product give every placement's sum. The best placement, refined by a parabola where
        it has neighbours in the cell, gives the centre."""
        g = self.geometry
        b = first_nodes.shape[0]
        pooled = 1 << (g.levels - 1)  # placements per cell and axis
        rigid = (first_nodes @ arrays.rigid[0]).reshape(b, pooled, pooled)  # (B, row, col)
        if b == 1:  # one box (a tracker's every frame): the same arithmetic on plain floats
            return _rigid_shift_one(rigid.reshape(-1), peak[0], pooled, g)
        return _rigid_shift_batch(rigid, peak, pooled, g)

    def _rigid_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The first level's nodes of the peak tree as (row, col, channel) offsets, and the
        (nodes, placements) matrix that sums each placement's blocks, each weighted by the product
        of the aggregation weights above the first level on its path to the root
        (``_inference_arrays`` keeps them)."""
        side = self.geometry.patches_per_side // 2  # blocks per side after the first level
        block = self.score_convs[0].parent_order.cpu().numpy()  # tap-major channel -> row-major block
        br, bc = np.divmod(block, side)
        weights = np.ones(len(block), np.float32)
        for level in range(1, len(self.score_convs)):
            children = side >> (level - 1)  # grid side of this level's children
            wt = self.score_convs[level].weight.detach().cpu().numpy()
            r, c = br >> (level - 1), bc >> (level - 1)
            weights *= wt[(r // 2) * (children // 2) + c // 2, (r % 2) * 2 + c % 2]
        nodes = self.peak_nodes_0.cpu().numpy()  # (n, 3) channel, row, col from pooled * peak
        channel, rows, cols = nodes[:, 0], nodes[:, 1], nodes[:, 2]
        step = 2 * TAP_SPACING  # one block = two patches = 8 correlation steps
        pooled = 1 << (self.geometry.levels - 1)
        place_r, place_c = rows - step * br[channel], cols - step * bc[channel]
        assert ((place_r >= 0) & (place_r < pooled) & (place_c >= 0) & (place_c < pooled)).all()
        matrix = np.zeros((len(nodes), pooled * pooled), np.float32)
        matrix[np.arange(len(nodes)), place_r * pooled + place_c] = weights[channel]
        return matrix, rows.astype(np.int64), cols.astype(np.int64), channel.astype(np.int64)

    def _offsets_on_tree(self, maps: list[torch.Tensor], peak: np.ndarray, tree: "_PeakTree",
                         select_alpha: float | None = None, first_nodes: np.ndarray | None = None) -> np.ndarray:
        """Box offsets (B, 4) at ``peak`` ((B, 2) row, col of the last level), bottom-up over the peak tree.

        A few hundred numbers per box: numpy does the gathers, soft selections and merges without
        torch's per-operation cost (the same float32 arithmetic, to rounding). ``first_nodes``: the
        first level's values at the tree's nodes, if already gathered (``_first_level_nodes``)."""
        levels = len(maps)
        b = peak.shape[0]
        batch = np.arange(b)
        pooled = None  # soft-selected offsets of the level below, (B, nodes, 4)
        for level in range(levels):
            if level == 0:
                off = None  # the first level has no offsets
            else:
                weight, bias = tree.weights[level - 1]  # (n, tap * in, out), (n, out)
                off = (pooled.reshape(b, -1, 16, 1) * weight).sum(2) + bias
            if level == levels - 1:
                return np.ascontiguousarray(off[:, 0])
            if level == 0 and first_nodes is not None:
                values = first_nodes
            else:
                a = maps[level]  # (H, W, B, C)
                _, w, _, c = a.shape
                scale = 1 << (levels - 1 - level)
                # flat index into a: ((row * W + col) * B + batch) * C + channel
                base = ((peak[:, 0] * (scale * w) + peak[:, 1] * scale) * b + batch) * c  # (B,)
                values = _take_flat(a, base[:, None] + tree.node_offsets(level, w, b * c))
            alpha = tree.alphas[level] if select_alpha is None else np.float32(select_alpha)
            sel = _softmax_last(values.reshape(b, -1, 4) * alpha)  # (B, parents, 4 windows)
            window_bias = tree.window_biases[level]  # (window, coord)
            if off is None:
                pooled = sel @ window_bias
            else:
                pooled = (sel[..., None] * (off.reshape(b, -1, 4, 4) + window_bias)).sum(2)
        raise AssertionError("unreachable")

    def _tree_arrays(self) -> "_PeakTree":
        """The peak tree's node indices and, per offset level, every node's (tap * in, out) weights
        and (out,) bias, gathered from the sparse offset convolutions, with the pools' alphas and
        biases, as numpy arrays (``_inference_arrays`` keeps them)."""
        weights = []
        with torch.no_grad():
            for level, conv in enumerate(self.offset_convs, start=1):
                parents = getattr(self, f"peak_nodes_{level}")[:, 0]
                dense = conv._scatter(conv.dense_index_fast)[parents]  # (n, out, tap, in)
                weights.append((dense.permute(0, 2, 3, 1).reshape(len(parents), 16, 4).cpu().numpy(),
                                conv.bias[conv.parent_order][parents].cpu().numpy()))
            tree = _PeakTree(
                nodes=[getattr(self, f"peak_nodes_{level}").cpu().numpy() for level in range(len(self.pools))],
                weights=weights,
                alphas=[pool.alpha.detach().cpu().numpy().astype(np.float32) for pool in self.pools],
                window_biases=[pool.bias.detach().reshape(4, 4).t().contiguous().cpu().numpy() for pool in self.pools])
        return tree

    def forward_reference(self, template: torch.Tensor, search: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same function through dense ``F.conv2d`` kernels, in the layout the paper counts:
        the first score convolution grouped by parent (4 inputs each), every later aggregation
        convolution dense over all its input channels. For tests and FLOP counting only."""
        filters = self.correlation.filters(self.centred(template), fft=True)  # row-major patch order
        b, p = filters.shape[:2]
        centred = self.centred(search)
        x = centred.reshape(1, -1, self.search_size, self.search_size)
        corr = F.conv2d(x, filters.reshape(b * p, *filters.shape[2:]), stride=self.geometry.corr_stride, groups=b)
        corr = corr.view(b, p, corr.shape[-2], corr.shape[-1])
        k = self.geometry.patch_size
        energy = F.conv2d(centred.pow(2).sum(1, keepdim=True),
                          corr.new_ones(1, 1, k, k), stride=self.geometry.corr_stride)
        if self.patch_norm == "zero_mean":  # about each window's per-channel mean
            sums = F.conv2d(centred, corr.new_ones(3, 1, k, k), stride=self.geometry.corr_stride, groups=3)
            energy = (energy - sums.pow(2).sum(1, keepdim=True) / (k * k)).clamp_min(0)
        eps = 0.1 * energy.flatten(1).std(1).view(b, 1, 1, 1) + 1e-9
        s = 0.01 * corr / torch.sqrt(energy + eps)
        off = None
        for level, conv in enumerate(self.score_convs):
            kernel = conv.dense_kernel(s.shape[1])
            if level == 0:  # grouped: each parent's 4 children made contiguous
                new_s = F.conv2d(s[:, conv.child_idx.flatten()], kernel.gather(
                    1, conv.child_idx.view(-1, 4, 1, 1).expand(-1, -1, 5, 5)), groups=conv.parents)
            else:
                new_s = F.conv2d(s, kernel)
            if self.offset_convs is not None and level > 0:
                oc = self.offset_convs[level - 1]
                o = F.conv2d(off.flatten(1, 2), oc.dense_kernel(off.shape[1]), oc.bias.flatten())
                off = o.view(b, oc.parents, 4, o.shape[-2], o.shape[-1])
            s = new_s
            if level < len(self.pools):  # pools run in (H, W, B, C) layout
                ps, poff = self.pools[level](s.permute(2, 3, 0, 1), None if off is None else off.permute(3, 4, 0, 1, 2),
                                             with_offsets=self.offset_convs is not None)
                s = ps.permute(2, 3, 0, 1)
                off = None if poff is None else poff.permute(2, 3, 4, 0, 1)
        r = s.shape[-1]
        offsets = off.reshape(b, 4, r, r) if off is not None else s.new_zeros(b, 4, r, r)
        return s, offsets

    def centred(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) crops on the 0-255 scale minus what ``input_mean`` says: ``pixel_mean``, or
        per crop and channel the mean of its middle template-sized square (the box it is centred on)."""
        if self.input_mean == "dataset":
            return crops - self.pixel_mean
        t = self.template_size
        lo = (crops.shape[-1] - t) // 2
        return crops - crops[:, :, lo:lo + t, lo:lo + t].mean((2, 3), keepdim=True)

    @staticmethod
    def _check_crop(x: torch.Tensor, size: int, what: str) -> None:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != size or x.shape[3] != size:
            raise ValueError(f"{what} crops must be (B, 3, {size}, {size}); got {tuple(x.shape)}")

    def with_response_size(self, response_size: int) -> "PatchNet":
        """The same model (shared weights) over a larger or smaller search window.

        Every weight is independent of the search size, so a model trained with a 7x7 response can
        search a 13x13 one (2.07x the window side, +-6 cells = +-75 % of the box) at a higher cost."""
        if response_size == self.geometry.response_size:
            return self
        if response_size < 1 or response_size % 2 == 0:
            raise ValueError(f"response_size must be odd and positive, got {response_size}")
        other = copy.copy(self)  # shares parameters, buffers and submodules
        other.geometry = PatchNetGeometry(self.geometry.patch_size, self.geometry.patches_per_side, response_size)
        return other

    # -------------------------------------------------------------------------------- inspection
    def nonzero_parameters(self) -> int:
        """Trainable values that can be non-zero (structural zeros are not stored at all)."""
        return int(sum((p != 0).sum() for p in self.parameters()))

    def extra_repr(self) -> str:
        g = self.geometry
        return (f"K={g.patch_size}, N={g.patches_per_side}, template={g.template_size}, "
                f"search={g.search_size}, response={g.response_size}, fourier={self.fourier}, "
                f"box_regression={self.box_regression}, patch_norm={self.patch_norm}")


def peak_tree(levels: int) -> list[torch.Tensor]:
    """The cells whose values the box offsets at one response cell depend on, per level.

    Entry ``l`` is an (n_l, 3) tensor of (channel, row, col) in level ``l``'s score-convolution
    output, with the row/col relative to ``2**(levels-1-l)`` times the peak cell. Nodes come in
    groups of 4 pooling windows per pooled cell, and pooled cells in groups of 4 taps per parent,
    so a ``view(..., 4)`` always groups siblings."""
    nodes = [(0, 0, 0)]  # the peak itself, in the last level
    out = [torch.tensor(nodes)]
    for level in range(levels - 1, 0, -1):
        parents = 4 ** (levels - 1 - level)  # channels of level ``level``
        children = [(t * parents + p, r + 4 * i, c + 4 * j) for p, r, c in nodes for t, (i, j) in enumerate(TAPS)]
        nodes = [(ch, 2 * r + i, 2 * c + j) for ch, r, c in children for i, j in TAPS]
        out.insert(0, torch.tensor(nodes))
    return out


def peak_cell(score: torch.Tensor) -> torch.Tensor:
    """Flat index of the peak of each (B, 1, R, R) map; a flat map has no peak and keeps the centre
    (argmax would pick the corner cell)."""
    b, _, r, _ = score.shape
    return _from_numpy(_peak_index(_as_numpy(score).reshape(b, r * r)), score.device)


def _peak_index(s: np.ndarray) -> np.ndarray:
    """``peak_cell`` on (B, R*R) numpy maps (a few numbers a box: numpy, not torch's per-op cost)."""
    flat = (s.max(1) - s.min(1)) <= 1e-12
    return np.where(flat, s.shape[1] // 2, s.argmax(1))


def _as_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as numpy: a view on the CPU (no conversion call), else a copy."""
    return t.detach().numpy() if t.device.type == "cpu" else t.detach().cpu().numpy()


def _from_numpy(a: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t if device.type == "cpu" else t.to(device)


@dataclass
class Located:
    """``PatchNet.locate``'s answer: the score map, its peak and the box offsets there."""

    score: torch.Tensor  # (B, 1, R, R)
    best: torch.Tensor  # (B,) flat index of the peak
    offsets: torch.Tensor  # (B, 4) x_min, y_min, x_max, y_max offsets at the peak, in cells
    rigid_shift: torch.Tensor | None = None  # (B, 2) rigid centre shift in cells (``locate(rigid=True)``)


@dataclass
class Decoded:
    """Result of decoding a response map: boxes in image pixels (x, y, w, h) and confidences."""

    boxes: torch.Tensor  # (B, 4)
    confidence: torch.Tensor  # (B,)
    cell: torch.Tensor  # (B, 2) peak (dx, dy) in cells relative to the centre
    peak: torch.Tensor  # (B,) raw score at the peak


def decode(score: torch.Tensor, offsets: torch.Tensor, prev_cxcywh: torch.Tensor) -> Decoded:
    """Peak -> box, for a batch, without loops (``offsets``: the full (B, 4, R, R) maps)."""
    b, _, r, _ = score.shape
    best = peak_cell(score)
    off = offsets.reshape(b, 4, r * r).gather(2, best.view(b, 1, 1).expand(b, 4, 1)).squeeze(2)
    return decode_peak(score, best, off, prev_cxcywh)


def decode_peak(score: torch.Tensor, best: torch.Tensor, off: torch.Tensor, prev_cxcywh: torch.Tensor,
                centre_gain: float = 1.0, centre_shift: torch.Tensor | None = None) -> Decoded:
    """Peak -> box from the offsets at the peak only (``PatchNet.locate``'s answer).

    ``s' = relu(s - 0.75 max s)``; peaks are the 3x3 local maxima of ``s'``; confidence = largest
    peak / sum of peaks (1.0 = one dominant peak; 0.0 for a flat map, which stays at the centre). The
    box is the previous box shifted by the peak cell (one cell = box/8) with the 4 boundary offsets
    read at that cell added; ``centre_gain`` scales the centre's part of those offsets (their mean
    per axis), leaving the size as regressed. ``centre_shift`` ((B, 2) dx, dy in cells from the
    window's centre, e.g. ``Located.rigid_shift``) replaces the box's centre, the size still as regressed.
    """
    # a few numbers per box: numpy decodes them in a fraction of the time of torch's per-op cost
    # (same float32 arithmetic); the answer goes back to the score's device
    b, _, r, _ = score.shape
    s = _as_numpy(score).reshape(b, r * r)
    best_n, off_n, prev = _as_numpy(best), _as_numpy(off), _as_numpy(prev_cxcywh)
    rows = np.arange(b)
    mx, mn = s.max(1), s.min(1)
    sp = np.zeros((b, r * r + 1), s.dtype)  # the last column: zero, for neighbours off the map
    np.maximum(s - 0.75 * mx[:, None], 0, out=sp[:, :-1])
    peaks = np.where(sp[:, :-1] == sp[:, _neighbours_3x3(r)].max(2), sp[:, :-1], 0)  # zero where not a peak
    total = peaks.sum(1)
    live = (total > 0) & ((mx - mn) > 1e-12)
    confidence = np.where(live, peaks[rows, best_n] / np.maximum(total, 1e-12), 0).astype(s.dtype)
    half = r // 2
    cell = np.empty((b, 2), s.dtype)
    cell[:, 0], cell[:, 1] = best_n % r - half, best_n // r - half
    size = prev[:, 2:]
    unit = size / 8.0  # one response cell, in pixels per axis
    # the box's centre is its cell plus the mean of its two boundary offsets per axis (scaled by
    # ``centre_gain``), or the given shift; the size is the regressed one either way
    lo_off, hi_off = off_n[:, 0:2], off_n[:, 2:4]
    if centre_shift is not None:
        centre = _as_numpy(centre_shift)
    else:
        centre = cell + (centre_gain * 0.5) * (lo_off + hi_off)
    half_span = 0.5 * (hi_off - lo_off)  # half the box's size, in cells
    boxes = np.concatenate([prev[:, :2] - size / 2 + (centre - half_span) * unit, size + 2 * half_span * unit], 1)
    dev = score.device
    return Decoded(boxes=_from_numpy(boxes, dev), confidence=_from_numpy(confidence, dev),
                   cell=_from_numpy(cell, dev), peak=_from_numpy(s[rows, best_n], dev))


@dataclass
class _InferenceArrays:
    """``PatchNet._inference_arrays``: what ``locate`` derives from the parameters."""

    score_convs: list  # the score convolutions, in order
    channel_weights: list  # per score convolution, (C_in,) weight of each tap-major input channel
    rigid: tuple  # ``PatchNet._rigid_arrays``
    tree: "_PeakTree | None"  # ``PatchNet._tree_arrays``; None without box offsets
    _first_offsets: dict = field(default_factory=dict)

    def first_node_offsets(self, width: int, cell_stride: int) -> np.ndarray:
        """(n,) flat offsets of the first level's tree nodes from the peak's own cell in a (H,
        ``width``, B, C) map, ``cell_stride`` = B * C; the same for every match of one window and batch size."""
        found = self._first_offsets.get((width, cell_stride))
        if found is None:
            rows, cols, channels = self.rigid[1:]
            found = self._first_offsets[(width, cell_stride)] = (rows * width + cols) * cell_stride + channels
        return found


@dataclass
class _PeakTree:
    """``PatchNet._tree_arrays``: what the offsets on the peak's tree need, as numpy arrays."""

    nodes: list  # per pooled level, (n, 3) channel, drow, dcol
    weights: list  # per offset level, ((n, 16, 4) weights, (n, 4) biases)
    alphas: list  # per pool, the soft-select temperature
    window_biases: list  # per pool, (4 windows, 4 coords)
    _offsets: dict = field(default_factory=dict)

    def node_offsets(self, level: int, width: int, cell_stride: int) -> np.ndarray:
        """(n,) flat offsets of level ``level``'s nodes from the peak's own cell in a (H, ``width``,
        B, C) map, ``cell_stride`` = B * C; the same for every match of one window and batch size."""
        key = (level, width, cell_stride)
        found = self._offsets.get(key)
        if found is None:
            nodes = self.nodes[level]
            found = self._offsets[key] = (nodes[:, 1] * width + nodes[:, 2]) * cell_stride + nodes[:, 0]
        return found


def _rigid_shift_batch(rigid: np.ndarray, peak: np.ndarray, pooled: int, g) -> np.ndarray:
    """``PatchNet.rigid_placement`` after the placement sums: ``rigid`` (B, pooled, pooled) float32,
    ``peak`` (B, 2) row, col; returns the (B, 2) float32 shift (dx, dy) in response cells."""
    b = rigid.shape[0]
    yi, xi = np.divmod(rigid.reshape(b, -1).argmax(1), pooled)
    at = np.stack([yi, xi], 1)  # (B, 2)
    batch = np.arange(b)[:, None]
    last = pooled - 1
    ny = np.minimum(np.maximum(yi[:, None] + np.array([[-1, 1, 0, 0]]), 0), last)
    nx = np.minimum(np.maximum(xi[:, None] + np.array([[0, 0, -1, 1]]), 0), last)
    around = rigid[batch, ny, nx].reshape(b, 2, 2)  # (B, axis, before | after)
    curve = around[:, :, 0] + around[:, :, 1] - 2 * rigid[batch[:, 0], yi, xi][:, None]
    ok = (at > 0) & (at < last) & (curve < 0)  # a parabola where both neighbours are in the cell
    step = np.where(ok, 0.5 * (around[:, :, 0] - around[:, :, 1]) / np.where(ok, curve, -1.0), 0.0)
    pos = peak * pooled + at + step  # (B, 2) placement row, col in correlation steps
    # placement (top-left patch at this correlation row/col) -> template centre vs crop centre
    shift_px = g.corr_stride * pos + ((g.template_size - 1) / 2 - (g.search_size - 1) / 2)
    out = shift_px[:, ::-1] * (g.patches_per_side / g.template_size)  # (dx, dy) in cells
    return np.ascontiguousarray(out, dtype=np.float32)


def _rigid_shift_one(sums: np.ndarray, peak: np.ndarray, pooled: int, g) -> np.ndarray:
    """``PatchNet.rigid_placement`` for one box: ``sums`` the (pooled * pooled,) float32 placement
    sums of its peak cell, row-major. A few dozen numbers: plain Python floats cost a fraction of
    numpy's per-call time. Each float32 operation of the vectorised form is computed in float64 and
    rounded to float32 (exactly float32's own result for +, -, * and /), the float64 ones as they
    are, in the same order: the same shift, bit for bit (tests hold the two forms to each other)."""
    f32 = np.float32
    k = int(sums.argmax())
    at = divmod(k, pooled)  # row, col of the best placement in the cell
    v = sums.tolist()
    top = v[k]
    last = pooled - 1
    step = [0.0, 0.0]
    for axis, stride in ((0, pooled), (1, 1)):
        if 0 < at[axis] < last:
            before, after = v[k - stride], v[k + stride]
            curve = float(f32(float(f32(before + after)) - 2 * top))
            if curve < 0:  # a parabola through the neighbours
                step[axis] = float(f32(0.5 * float(f32(before - after)) / curve))
    offset = (g.template_size - 1) / 2 - (g.search_size - 1) / 2
    to_cells = g.patches_per_side / g.template_size
    row, col = (g.corr_stride * (int(peak[i]) * pooled + at[i] + step[i]) + offset for i in (0, 1))
    return np.array([[col * to_cells, row * to_cells]], dtype=np.float32)


def _take_flat(a: torch.Tensor, flat: np.ndarray) -> np.ndarray:
    """``a.reshape(-1)[flat]`` as float32 numpy; on the CPU without a torch indexing call."""
    if a.device.type == "cpu" and a.is_contiguous():
        return a.detach().numpy().reshape(-1)[flat]
    return a.reshape(-1)[torch.from_numpy(flat).to(a.device)].detach().cpu().numpy()


def _softmax_last(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@functools.lru_cache(maxsize=8)
def _neighbours_3x3(r: int) -> np.ndarray:
    """(R*R, 9) flat indices of each cell's 3x3 neighbourhood in an R x R map, R*R (a zero cell
    appended to the map) where a neighbour lies off the map."""
    rows, cols = np.divmod(np.arange(r * r), r)
    nr, nc = rows[:, None] + np.repeat([-1, 0, 1], 3), cols[:, None] + np.tile([-1, 0, 1], 3)
    inside = (nr >= 0) & (nr < r) & (nc >= 0) & (nc < r)
    table = np.where(inside, nr * r + nc, r * r)
    table.flags.writeable = False  # shared by every call
    return table
