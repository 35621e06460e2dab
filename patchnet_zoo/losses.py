"""PatchNet's training objective: the margin localisation loss (paper eq. 2) plus smooth-L1 box
regression read at each sample's own ground-truth cell (the original used sample 0's cell for the
whole batch, which forced batch size 1)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["localisation_margin_loss", "box_offset_loss", "patchnet_loss", "search_targets"]


def localisation_margin_loss(score: torch.Tensor, cell: torch.Tensor, cap: float = 2.0) -> torch.Tensor:
    """sum_x max(S[x] - S[x_gt] + min(D(x, x_gt), cap), 0), normalised by R^2/4, mean over the batch.

    score (B, 1, R, R); cell (B, 2) integer (dx, dy) relative to the centre.
    """
    b, _, r, _ = score.shape
    half = r // 2
    gx, gy = cell[:, 0].long() + half, cell[:, 1].long() + half
    s = score.view(b, r, r)
    s_gt = s[torch.arange(b), gy, gx].view(b, 1, 1)
    ys = torch.arange(r, device=score.device).view(1, r, 1)
    xs = torch.arange(r, device=score.device).view(1, 1, r)
    dist = ((ys - gy.view(b, 1, 1)).abs() + (xs - gx.view(b, 1, 1)).abs()).to(score.dtype)
    margin = F.relu(s - s_gt + dist.clamp(max=cap))
    return margin.sum((1, 2)).mean() / (r * r / 4.0)


def box_offset_loss(offsets: torch.Tensor, cell: torch.Tensor, target: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    """Smooth L1 (beta = 1) on ``scale`` x the 4 offsets read at each sample's ground-truth cell."""
    b, _, r, _ = offsets.shape
    half = r // 2
    idx = ((cell[:, 1].long() + half) * r + cell[:, 0].long() + half).view(b, 1, 1).expand(b, 4, 1)
    pred = offsets.view(b, 4, r * r).gather(2, idx).squeeze(2)
    return F.smooth_l1_loss(pred * scale, target * scale, beta=1.0)


def patchnet_loss(score, offsets, cell, offset_target, box_regression: bool = True) -> dict[str, torch.Tensor]:
    loc = localisation_margin_loss(score, cell)
    out = {"loc": loc}
    if box_regression:
        out["box"] = box_offset_loss(offsets, cell, offset_target)
        out["loss"] = loc + out["box"]
    else:
        out["loss"] = loc
    return out


def search_targets(search_cxcywh: torch.Tensor, target_xywh: torch.Tensor, max_shift: int = 3, step: int = 4):
    """Ground-truth cell and offsets for a search window based on ``search_cxcywh``.

    cell = round((target centre - search centre) / (box/8)); a cell beyond +-``max_shift`` moves the
    window by whole multiples of ``step`` cells so the target lands inside. Returns the (possibly
    moved) window centre, the cell (B, 2) and the offset target (B, 4) =
    (target box - base box)/(box/8) - cell, in (x_min, y_min, x_max, y_max) order.
    """
    cs = search_cxcywh[:, 2:] / 8.0
    centre = search_cxcywh[:, :2].clone()
    tc = target_xywh[:, :2] + target_xywh[:, 2:] / 2
    raw = torch.round((tc - centre) / cs)
    move = torch.where(raw.abs() > max_shift, step * torch.round(raw / step), torch.zeros_like(raw))
    centre = centre + move * cs
    cell = torch.round((tc - centre) / cs).clamp(-max_shift, max_shift)
    base_lo = centre - search_cxcywh[:, 2:] / 2
    base_hi = centre + search_cxcywh[:, 2:] / 2
    t_lo, t_hi = target_xywh[:, :2], target_xywh[:, :2] + target_xywh[:, 2:]
    off = torch.cat([(t_lo - base_lo) / cs - cell, (t_hi - base_hi) / cs - cell], 1)
    return centre, cell.long(), off
