"""The building blocks of PatchNet, as plain ``nn.Module``s.

Structural sparsity is a property of the parametrisation here: each aggregation layer stores only
the weights at its allowed taps (every parent patch reads its 4 child patches, each at one kernel
tap). There is no dense kernel to mask, so no optimizer, weight decay or loaded state can make a
forbidden weight non-zero. ``dense_kernel()`` materialises the equivalent 5x5 kernels for the
reference path (used by tests and the FLOP counter).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TAP_SPACING = 4  # children are 4 cells apart at every level (see PatchNet docstring)
KERNEL = TAP_SPACING + 1
TAPS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row, col) of the child inside its parent's 2x2 block


def child_index(grid_side: int) -> torch.Tensor:
    """(P, 4) indices of the 4 children of each parent in a row-major ``grid_side``^2 patch grid."""
    half = grid_side // 2
    rows = []
    for pr in range(half):
        for pc in range(half):
            rows.append([(2 * pr + i) * grid_side + (2 * pc + j) for i, j in TAPS])
    return torch.tensor(rows, dtype=torch.long)


def tap_major_order(grid_side: int) -> torch.Tensor:
    """Row-major patch index of each position in the fast path's "tap-major" channel order.

    In that order the finest 2x2 tap is the most significant digit, recursively, so at every level
    the channels view as (4 taps, parents) and every tap is one contiguous slice, and the parents
    come out already in the same order for the next level."""
    levels = int(round(math.log2(grid_side)))
    order = torch.empty(grid_side * grid_side, dtype=torch.long)
    for r in range(grid_side):
        for c in range(grid_side):
            idx = 0
            for k in range(levels):  # finest bit first = most significant digit
                idx = idx * 4 + 2 * ((r >> k) & 1) + ((c >> k) & 1)
            order[idx] = r * grid_side + c
    return order


def parameters_key(*params: torch.Tensor) -> tuple:
    """Identifies the current values of ``params`` for an inference-time cache: storage and version
    counter, which every in-place update (an optimizer step, ``load_state_dict``) bumps. Inference
    tensors have no version counter; they cannot be updated outside inference mode anyway."""
    try:
        return tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
    except RuntimeError:
        return tuple((p.data_ptr(), None, p.dtype, p.device) for p in params)


class FourierReweighting(nn.Module):
    """Reweights every KxK patch (per channel) in the orthonormal 2-D real Fourier domain.

    One (K, K//2+1, 2) coefficient tensor (real and imaginary parts scaled separately) is shared by
    all patches and channels; initialised to 1, i.e. the identity.
    """

    def __init__(self, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.coef = nn.Parameter(torch.ones(patch_size, patch_size // 2 + 1, 2))
        self._matrix_cache: tuple | None = None

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():  # inference: the same linear map as one small matmul
            k = self.patch_size
            return (patches.reshape(-1, k * k) @ self.matrix().t()).view(patches.shape)
        return self._reweight(patches)

    def _reweight(self, patches: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft2(patches, norm="ortho")
        spec = torch.complex(spec.real * self.coef[..., 0], spec.imag * self.coef[..., 1])
        return torch.fft.irfft2(spec, s=(self.patch_size, self.patch_size), norm="ortho")

    def matrix(self) -> torch.Tensor:
        """The reweighting as a (K^2, K^2) matrix acting on flattened patches (it is linear), built
        by reweighting the K^2 basis patches; rebuilt whenever ``coef`` changes. Two FFTs per
        template cost more than the whole rest of encoding a template, the matmul far less."""
        key = parameters_key(self.coef)
        if self._matrix_cache is None or self._matrix_cache[0] != key:
            k = self.patch_size
            with torch.no_grad():
                basis = torch.eye(k * k, dtype=self.coef.dtype, device=self.coef.device).view(k * k, k, k)
                m = self._reweight(basis).reshape(k * k, k * k).t().contiguous()  # column j = image of e_j
            self._matrix_cache = (key, m)
        return self._matrix_cache[1]


class PatchCorrelation(nn.Module):
    """Splits templates into N^2 patches and correlates each with its own search crop.

    Output (B, N^2, M, M). The search side is normalised by its local energy:
    ``0.01 * <w, x> / sqrt(sum x^2 over the window + eps)``, with ``eps`` one tenth of the standard
    deviation of the window energies of that sample, plus 1e-9 (the paper).

    ``zero_mean``: every filter loses its per-channel mean (after the Fourier reweighting) and the
    energy is taken about each window's per-channel mean, so each patch correlation is a local
    zero-mean normalised cross-correlation: a patch's flat colour no longer correlates with every
    window alike (docs/design.md, "Zero-mean patches").
    """

    def __init__(self, patch_size: int, patches_per_side: int, stride: int, fourier: bool,
                 zero_mean: bool = False):
        super().__init__()
        self.k, self.n, self.stride = patch_size, patches_per_side, stride
        self.zero_mean = zero_mean
        self.fourier = FourierReweighting(patch_size) if fourier else None

    def filters(self, template: torch.Tensor, order: torch.Tensor | None = None, fft: bool = False) -> torch.Tensor:
        """(B, 3, KN, KN) normalised templates -> (B, N^2, 3, K, K) patch filters, in row-major patch
        order or in ``order`` (a permutation of the row-major indices). ``fft``: reweight through
        the FFTs even at inference (the FLOP counter counts what the paper describes)."""
        b, c = template.shape[:2]
        k, n = self.k, self.n
        p = template.reshape(b, c, n, k, n, k).permute(0, 2, 4, 1, 3, 5).reshape(b, n * n, c, k, k)
        if order is not None:
            p = p[:, order]
        if self.fourier is not None:
            p = self.fourier._reweight(p) if fft else self.fourier(p)
        return p - p.mean((-2, -1), keepdim=True) if self.zero_mean else p

    def forward(self, filters: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        """Returns the normalised correlation in (H, W, B, N^2) layout: that is how the grouped
        channels-last convolution lays it out in memory, so no transposition is ever paid."""
        corr = self.correlate(filters, search)
        if torch.is_grad_enabled():
            b, k = search.shape[0], self.k
            energy = window_energy(search, k, self.stride, self.zero_mean)  # (B, 1, H, W)
            eps = 0.1 * energy.flatten(1).std(1).view(b, 1, 1, 1) + 1e-9
            scale = (0.01 * torch.rsqrt(energy + eps)).permute(2, 3, 0, 1).contiguous()  # (H, W, B, 1)
            return corr * scale
        return corr.mul_(self.inference_scale(search))

    def correlate(self, filters: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        """The correlation before its normalisation, (H, W, B, N^2)."""
        b, p, c, k, _ = filters.shape
        s = search.shape[-1]
        x = search.reshape(1, b * c, s, s).contiguous(memory_format=torch.channels_last)
        w = filters.reshape(b * p, c, k, k).contiguous(memory_format=torch.channels_last)
        corr = F.conv2d(x, w, stride=self.stride, groups=b)[0]  # (B*P, H, W), memory (H, W, B*P)
        h, wd = corr.shape[-2:]
        return corr.permute(1, 2, 0).reshape(h, wd, b, p)

    def inference_scale(self, search: torch.Tensor) -> torch.Tensor:
        """The normalisation ``0.01 / sqrt(energy + eps)`` of (B, C, S, S) search crops at inference,
        as (H, W, B, 1): ``forward`` multiplies the correlation by it (``compiled_scores.score_maps``
        too)."""
        k, b = self.k, search.shape[0]
        if search.device.type == "cpu" and _doubles(k):
            # a few thousand numbers a box: numpy computes the same float32 scale without torch's
            # per-operation cost, which is most of the time of these small steps
            return torch.from_numpy(_energy_scale_numpy(search.detach().numpy(), k, self.stride, self.zero_mean))
        # the same operations in place (``energy`` is this call's own tensor)
        energy = window_energy(search, k, self.stride, self.zero_mean)
        eps = 0.1 * energy.flatten(1).std(1).view(b, 1, 1, 1) + 1e-9
        return energy.add_(eps).rsqrt_().mul_(0.01).permute(2, 3, 0, 1).contiguous()


def window_energy(x: torch.Tensor, k: int, stride: int, about_mean: bool = False) -> torch.Tensor:
    """Sum of squares of (B, C, S, S) over every k x k window at ``stride``, as (B, 1, H, W);
    ``about_mean``: about each window's per-channel mean (``sum x^2 - sum_c (sum x_c)^2 / k^2``,
    clamped at zero against rounding)."""
    sq = x.pow(2).sum(1, keepdim=True)
    planes = torch.cat([sq, x], 1) if about_mean else sq
    sums = window_sums(planes, k, stride)
    if not about_mean:
        return sums
    return (sums[:, :1] - sums[:, 1:].pow(2).sum(1, keepdim=True) / (k * k)).clamp_min(0)


def window_sums(x: torch.Tensor, k: int, stride: int) -> torch.Tensor:
    """Sum of every plane of (B, C, S, S) over every k x k window at ``stride``: (B, C, H, W).

    Training keeps the average pooling the shipped weights were trained with (bit for bit). At
    inference a power-of-two window is summed by doubling (``_sums_by_doubling``), several times
    faster than average pooling over many planes on CPU; same values to float rounding (tests
    check both)."""
    if torch.is_grad_enabled() or not _doubles(k):
        return F.avg_pool2d(x, k, stride) * (k * k)
    return _sums_by_doubling(x, k, stride)


def _doubles(k: int) -> bool:
    """Whether a k x k window can be summed by doubling: a power of two, 2 or more."""
    return k >= 2 and not k & (k - 1)


def _sums_by_doubling(x, k: int, stride: int):
    """Window sums of a (B, C, S, S) torch tensor or numpy array, one shifted add per halving of
    the window along each axis (k a power of two >= 2), then one strided add per axis."""
    for axis in (2, 3):
        n, span = x.shape[axis], 1
        while span < k // 2:
            x = _along(x, axis, slice(0, n - span)) + _along(x, axis, slice(span, n))
            n, span = n - span, span * 2
        last = (n - span - 1) // stride * stride  # start of the last window of 2 * span = k
        x = _along(x, axis, slice(0, last + 1, stride)) + _along(x, axis, slice(span, span + last + 1, stride))
    return x


def _along(x, axis: int, part: slice):
    index = [slice(None)] * x.ndim
    index[axis] = part
    return x[tuple(index)]


def _energy_scale_numpy(search: np.ndarray, k: int, stride: int, about_mean: bool) -> np.ndarray:
    """``PatchCorrelation``'s normalisation ``0.01 / sqrt(energy + eps)`` of (B, C, S, S) float32
    crops, as an (H, W, B, 1) float32 array: ``window_energy`` and the same eps, in numpy."""
    sq = (search * search).sum(1, keepdims=True)
    sums = _sums_by_doubling(np.concatenate([sq, search], 1) if about_mean else sq, k, stride)
    energy = sums[:, :1]
    if about_mean:
        means = sums[:, 1:]
        energy = np.maximum(energy - (means * means).sum(1, keepdims=True) / (k * k), 0)
    b = energy.shape[0]
    eps = 0.1 * energy.reshape(b, -1).std(1, ddof=1) + 1e-9
    scale = 0.01 / np.sqrt(energy + eps.astype(np.float32).reshape(b, 1, 1, 1))
    return np.ascontiguousarray(scale.transpose(2, 3, 0, 1))


class SparseScoreConv(nn.Module):
    """Score aggregation: parent = sum of its 4 children, each read at one tap (0|4, 0|4); no bias."""

    def __init__(self, grid_side: int):
        super().__init__()
        self.grid_side = grid_side
        self.register_buffer("child_idx", child_index(grid_side), persistent=False)
        self.register_buffer("parent_order", tap_major_order(grid_side // 2), persistent=False)
        parents = (grid_side // 2) ** 2
        self.weight = nn.Parameter(torch.full((parents, 4), 0.25))

    @property
    def parents(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (H, W, B, C_in) in tap-major channel order -> (H-4, W-4, B, P) in tap-major order."""
        if torch.is_grad_enabled():  # the op sequence the shipped weights were trained with
            h, w, b, _ = x.shape
            ho, wo = h - TAP_SPACING, w - TAP_SPACING
            wt = self.weight[self.parent_order]  # (P, 4) in tap-major parent order
            x5 = x.view(h, w, b, 4, self.parents)
            out = None
            for t, (i, j) in enumerate(TAPS):
                sl = x5[TAP_SPACING * i : TAP_SPACING * i + ho, TAP_SPACING * j : TAP_SPACING * j + wo, :, t]
                out = sl * wt[:, t] if out is None else out + sl * wt[:, t]
            return out
        # inference: weight every channel in one pass over the contiguous input, then add the 4
        # shifted taps (2-4x faster than 4 strided multiply-adds; same values to float rounding)
        return self.sum_taps(x * self._channel_weights())

    def sum_taps(self, weighted: torch.Tensor) -> torch.Tensor:
        """Inference: the parents from input channels already multiplied by their weights
        (``_channel_weights``; PatchNet.locate folds them into the correlation filters)."""
        h, w, b, _ = weighted.shape
        ho, wo = h - TAP_SPACING, w - TAP_SPACING
        y = weighted.view(h, w, b, 4, self.parents)
        # each tap as one strided view (y[4i : 4i + ho, 4j : 4j + wo, :, t] costs 4 indexing calls)
        s0, s1, s2, s3, s4 = y.stride()
        taps = [y.as_strided((ho, wo, b, self.parents), (s0, s1, s2, s4),
                             y.storage_offset() + TAP_SPACING * (i * s0 + j * s1) + t * s3)
                for t, (i, j) in enumerate(TAPS)]
        return (taps[0] + taps[1]).add_(taps[2]).add_(taps[3])

    def _channel_weights(self) -> torch.Tensor:
        """Inference: the weight of every input channel (tap-major), cached until the weight changes."""
        key = parameters_key(self.weight)
        cached = self.__dict__.get("_channel_cache")
        if cached is None or cached[0] != key:
            cached = (key, self.weight[self.parent_order].t().reshape(-1))
            self.__dict__["_channel_cache"] = cached
        return cached[1]

    def dense_kernel(self, in_channels: int) -> torch.Tensor:
        """The equivalent dense (P, C_in, 5, 5) kernel (zeros off the taps)."""
        k = self.weight.new_zeros(self.parents, in_channels, KERNEL, KERNEL)
        for t, (i, j) in enumerate(TAPS):
            k[torch.arange(self.parents), self.child_idx[:, t], TAP_SPACING * i, TAP_SPACING * j] = self.weight[:, t]
        return k


# Least-squares merge of two children's (min, max) along one axis into the parent's (min, max):
# exact for any translation plus scaling of the parent interval. Row = parent (min, max),
# column = child (min, max). Child 0 is the left/top one.
LS_MERGE = (
    ((0.75, 0.25), (-0.25, 0.25)),
    ((0.25, -0.25), (0.25, 0.75)),
)
# offset coordinate order: x_min, y_min, x_max, y_max; axis 0 = x, 1 = y
COORD_AXIS = (0, 1, 0, 1)
COORD_IS_MAX = (0, 0, 1, 1)


class SparseOffsetConv(nn.Module):
    """Box-offset aggregation: each parent coordinate reads the (min, max) of the same axis of its 4
    children at their taps. Initialised to the least-squares merge averaged over the 2 children
    along the other axis and halved (child cell units -> parent cell units, a parent cell being twice
    a child cell)."""

    def __init__(self, grid_side: int):
        super().__init__()
        self.grid_side = grid_side
        self.register_buffer("child_idx", child_index(grid_side), persistent=False)
        self.register_buffer("parent_order", tap_major_order(grid_side // 2), persistent=False)
        parents = (grid_side // 2) ** 2
        init = torch.zeros(4, 4, 2)  # (parent coord, tap, child min|max of the same axis)
        for o in range(4):
            axis, is_max = COORD_AXIS[o], COORD_IS_MAX[o]
            for t, (i, j) in enumerate(TAPS):
                along = j if axis == 0 else i  # which child along this axis: 0 = left/top
                init[o, t] = torch.tensor(LS_MERGE[along][is_max]) * 0.5 * 0.5
        self.weight = nn.Parameter(init.unsqueeze(0).repeat(parents, 1, 1, 1))  # (P, 4, 4, 2)
        self.bias = nn.Parameter(torch.zeros(parents, 4))
        # input coordinate (min, max) feeding each output coordinate
        src = torch.tensor([[0, 2], [1, 3], [0, 2], [1, 3]])
        self.register_buffer("src", src, persistent=False)
        # flat positions of every stored weight inside a dense (P, out, tap, in) tensor, in row-major
        # and in tap-major parent order: one scatter builds the dense weight, no Python loop
        inverse = torch.empty_like(self.parent_order)
        inverse[self.parent_order] = torch.arange(parents)
        p_idx, o_idx, t_idx, m_idx = torch.meshgrid(
            torch.arange(parents), torch.arange(4), torch.arange(4), torch.arange(2), indexing="ij")
        in_idx = src[o_idx, m_idx]
        for name, rows in (("dense_index", p_idx), ("dense_index_fast", inverse[p_idx])):
            flat = ((rows * 4 + o_idx) * 4 + t_idx) * 4 + in_idx
            self.register_buffer(name, flat.flatten(), persistent=False)

    @property
    def parents(self) -> int:
        return self.weight.shape[0]

    def _scatter(self, index: torch.Tensor) -> torch.Tensor:
        dense = self.weight.new_zeros(self.parents * 64)
        return dense.index_copy(0, index, self.weight.flatten()).view(self.parents, 4, 4, 4)

    def dense_weight(self) -> torch.Tensor:
        """(P, 4 out coords, 4 taps, 4 in coords) with zeros where the axes differ (row-major parents)."""
        return self._scatter(self.dense_index)

    def forward(self, off: torch.Tensor) -> torch.Tensor:
        """off: (H, W, B, C_in, 4) in tap-major order -> (H-4, W-4, B, P, 4) in tap-major order."""
        h, w, b, c, _ = off.shape
        ho, wo = h - TAP_SPACING, w - TAP_SPACING
        o6 = off.view(h, w, b, 4, self.parents, 4)
        taps = torch.stack([o6[TAP_SPACING * i : TAP_SPACING * i + ho, TAP_SPACING * j : TAP_SPACING * j + wo, :, t]
                            for t, (i, j) in enumerate(TAPS)], 3)  # (ho, wo, B, tap, P, in)
        out = torch.einsum("hwbtpi,poti->hwbpo", taps, self._scatter(self.dense_index_fast))
        return out + self.bias[self.parent_order]

    def dense_kernel(self, in_parents: int) -> torch.Tensor:
        """Equivalent dense (P*4, C_in*4, 5, 5) kernel over channel = patch*4 + coord."""
        dw = self.dense_weight()
        k = dw.new_zeros(self.parents * 4, in_parents * 4, KERNEL, KERNEL)
        for p in range(self.parents):
            for t, (i, j) in enumerate(TAPS):
                c = int(self.child_idx[p, t])
                k[p * 4 : p * 4 + 4, c * 4 : c * 4 + 4, TAP_SPACING * i, TAP_SPACING * j] = dw[p, :, t, :]
        return k


class SoftSelectPool(nn.Module):
    """2x2/2 pooling: hard max for scores; for offsets a soft selection
    ``sum softmax(alpha * s) * (offset + b[position])`` with learned alpha and per-position bias
    ``b`` (initialised to the position relative to the window centre, +-0.5 input cells)."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(()))
        pos = torch.tensor([-0.5, 0.5])
        b = torch.zeros(4, 2, 2)  # (coord, window row, window col)
        for o in range(4):
            b[o] = pos.view(1, 2).expand(2, 2) if COORD_AXIS[o] == 0 else pos.view(2, 1).expand(2, 2)
        self.bias = nn.Parameter(b)

    def forward(self, score: torch.Tensor, off: torch.Tensor | None = None, with_offsets: bool = True):
        """score (H, W, B, P); off (H, W, B, P, 4) or None for zero input offsets (the first block).

        The four window positions are stacked on a leading axis first, so every step is one
        operation over a contiguous tensor (a softmax over a trailing axis of 4, or reductions over
        strided axes, are an order of magnitude slower on CPU)."""
        h, w, b, p = score.shape
        win = score.view(h // 2, 2, w // 2, 2, b, p)
        s4 = torch.stack([win[:, i, :, j] for i, j in TAPS])  # (4, h/2, w/2, B, P)
        pooled = s4.amax(0)
        if not with_offsets:
            return pooled, None
        e = torch.exp((s4 - pooled) * self.alpha)
        wt = e / e.sum(0)
        out = (wt.reshape(4, -1).t() @ self.bias.reshape(4, 4).t()).view(h // 2, w // 2, b, p, 4)
        if off is not None:
            ow = off.view(h // 2, 2, w // 2, 2, b, p, 4)
            o4 = torch.stack([ow[:, i, :, j] for i, j in TAPS])  # (4, h/2, w/2, B, P, 4)
            out = out + (wt.unsqueeze(-1) * o4).sum(0)
        return pooled, out
