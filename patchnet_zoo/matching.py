"""Image-level matching: frames and boxes in, boxes and confidences out, batched over boxes.

This is the one hot path every tracker, detector adapter and benchmark goes through:
crop all templates of the key frame in one call, crop all search windows of the current frame in
one call, one PatchNet forward, one batched decode. No Python loop per box.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .geometry import as_boxes, check_boxes, clip_boxes, crop_windows, to_frame_tensor, xywh_to_cxcywh
from .models.compiled_match import compiled_match, graph_constants
from .models.patchnet import PatchNet, decode_peak

__all__ = ["Templates", "MatchResult", "PatchMatcher"]


@dataclass
class Templates:
    """Encoded templates of one key frame: reuse them for every frame until the next key frame."""

    filters: torch.Tensor  # (B, N^2, 3, K, K)
    boxes: torch.Tensor  # (B, 4) x,y,w,h in the key frame

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def select(self, keep: torch.Tensor) -> "Templates":
        return Templates(self.filters[keep], self.boxes[keep])


@dataclass
class MatchResult:
    boxes: torch.Tensor  # (B, 4) x,y,w,h in the current frame
    confidence: torch.Tensor  # (B,) peak ratio, 1.0 = one dominant peak
    searches: torch.Tensor | None = None  # (B,) PatchNet searches per box (> 1 where the edge was followed)


class PatchMatcher:
    """Wraps a ``PatchNet`` with the crops and decoding, so callers speak frames and boxes.

    Args:
        model: a PatchNet (its weights are used as they are; it is put in eval mode).
        min_size: smallest width/height (pixels) a predicted box may shrink to.
        response_size: search extent in response cells (odd; default: the model's own, 7 = the
            paper's +-3 cells = +-37.5 % of the box). Larger values search a wider window with the
            same weights, at a cost that grows with the window's area.
        select_alpha: temperature of the offsets' soft selection at inference (default: the
            learned alpha, as in the paper). Larger values follow the strongest child more
            closely; the offsets then shrink less towards the window centres.
        centre_gain: factor on the regressed shift of the box centre within the peak cell (1 = the
            paper's decoding). The trained regression recovers about half of a sub-cell shift;
            a gain above 1 undoes that shrinkage (docs/design.md, "Sub-cell shrinkage").
        edge_follow: how many more searches a box gets whose score peak lies on the window's
            edge, each centred on the last answer (0 = one search, as in the paper). A peak on the
            edge is often a target that has moved beyond the window; the next search has it in
            reach. Only those boxes are searched again, so the cost grows with how often it happens.
        rigid_centre: centre each box on the best placement of the whole template within the peak
            cell (the patch correlations summed with the aggregation's weights, without its pooling;
            ``PatchNet.rigid_placement``) instead of the regressed offsets, which recover only about
            half of a sub-cell shift; the size stays as regressed (docs/design.md, "Rigid centre").
        compiled: run each search after its crop, from the centring to the decoded box, as one
            compiled graph (``models.compiled_match``: ahead of time, else ``torch.compile``) where
            a call has one box:
            the same operations in less time, the boxes the same to float rounding (within 1e-3
            pixels in the tests; a near-tie between two cells may fall the other way). Calls with more boxes
            compile the score path alone (``PatchNet.locate(compiled=True)``: the same boxes as
            eagerly, bit for bit). Needs a C++ compiler; the first match of each new model, window
            and decoding compiles (seconds; later processes load it from torch's compile cache).
            Where compiling fails, a warning is logged and matching runs eagerly (docs/design.md,
            "A compiled match").
    """

    def __init__(self, model: PatchNet, min_size: float = 2.0, response_size: int | None = None,
                 select_alpha: float | None = None, centre_gain: float = 1.0, edge_follow: int = 0,
                 rigid_centre: bool = False, compiled: bool = False):
        if select_alpha is not None and not (math.isfinite(float(select_alpha)) and float(select_alpha) > 0):
            raise ValueError(f"select_alpha must be a positive number or None, got {select_alpha!r}")
        if not (math.isfinite(float(centre_gain)) and float(centre_gain) >= 0):
            raise ValueError(f"centre_gain must be a number >= 0, got {centre_gain!r}")
        if isinstance(edge_follow, bool) or not isinstance(edge_follow, int) or edge_follow < 0:
            raise ValueError(f"edge_follow must be an integer >= 0, got {edge_follow!r}")
        model = model.eval()
        self.model = model.with_response_size(response_size) if response_size else model
        self.min_size = min_size
        self.select_alpha = None if select_alpha is None else float(select_alpha)
        self.centre_gain = float(centre_gain)
        self.edge_follow = int(edge_follow)
        self.rigid_centre = bool(rigid_centre)
        if not isinstance(compiled, bool):
            raise TypeError(f"compiled must be True or False, got {compiled!r}")
        self.compiled = compiled

    def with_response_size(self, response_size: int | None) -> "PatchMatcher":
        """The same matcher (weights and decoding) over another search window; ``None``: this one."""
        return self.replace(response_size=response_size) if response_size else self

    def replace(self, **changes) -> "PatchMatcher":
        """A matcher with the same weights and the given ``__init__`` options changed (checked as
        in ``__init__``); the others, the search window included, are kept."""
        options = dict(min_size=self.min_size, response_size=None, select_alpha=self.select_alpha,
                       centre_gain=self.centre_gain, edge_follow=self.edge_follow,
                       rigid_centre=self.rigid_centre, compiled=self.compiled)
        unknown = set(changes) - set(options)
        if unknown:
            raise TypeError(f"PatchMatcher has no option {', '.join(sorted(unknown))}")
        return PatchMatcher(self.model, **{**options, **changes})

    @property
    def template_size(self) -> int:
        return self.model.template_size

    @property
    def search_scale(self) -> float:
        return self.model.geometry.search_scale

    @torch.inference_mode()
    def encode(self, frame, boxes) -> Templates:
        """Crop and encode the templates ``boxes`` (x,y,w,h) of ``frame``, all in one call."""
        f = to_frame_tensor(frame)
        b = as_boxes(boxes)
        check_boxes(b, (f.shape[1], f.shape[2]), what="template box")
        crops = self._crop(f, xywh_to_cxcywh(b), 1.0, self.model.template_size)
        filters = self.model.encode_template(crops)  # (B, N^2, 3, K, K)
        # stored channels-last per filter, the layout the correlation convolution takes, so that
        # each match uses them as they are instead of copying them (same values)
        filters = filters.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
        return Templates(filters, b)

    @torch.inference_mode()
    def match(self, templates: Templates, frame, search_boxes=None) -> MatchResult:
        """Find each template in ``frame``. The search window of template i is centred on
        ``search_boxes[i]`` (default: the template's own box) and is ``search_scale`` times its size.
        """
        f = to_frame_tensor(frame)
        prev = templates.boxes if search_boxes is None else as_boxes(search_boxes)
        if prev.shape[0] != len(templates):
            raise ValueError(f"{len(templates)} templates but {prev.shape[0]} search boxes")
        if len(templates) == 0:
            return MatchResult(torch.empty(0, 4), torch.empty(0), torch.empty(0, dtype=torch.long))
        check_boxes(prev, None, what="search box")
        c = xywh_to_cxcywh(prev)
        boxes, confidence, cell, peak = self._search(templates.filters, f, c)
        searches = torch.ones(len(templates), dtype=torch.long)
        rim = self.model.geometry.response_size // 2
        followed = torch.arange(len(templates)) if self.edge_follow else None  # may still be followed
        for _ in range(self.edge_follow):
            # a peak on the window's edge may be a target beyond it: search again, centred there,
            # and keep that answer where its peak scores higher (the target seen whole, not cut)
            edge = followed[((cell[followed].abs() >= rim).any(1) & (confidence[followed] > 0))]
            if edge.numel() == 0:
                break
            searches[edge] += 1
            centre = c[edge].clone()
            centre[:, :2] = boxes[edge, :2] + boxes[edge, 2:] / 2
            b2, conf2, cell2, peak2 = self._search(templates.filters[edge], f, centre)
            better = peak2 > peak[edge]
            followed, centre = edge[better], centre[better]
            c[followed], boxes[followed], confidence[followed] = centre, b2[better], conf2[better]
            cell[followed], peak[followed] = cell2[better], peak2[better]
        # a search window wholly outside the frame sees only fill: keep the box, confidence 0
        # (a few numbers per box: checked in numpy, without torch's per-op cost)
        cn = c.numpy()
        half = cn[:, 2:] * (self.search_scale / 2)
        frame_wh = np.array([f.shape[2], f.shape[1]])
        outside = ((cn[:, :2] + half <= 0) | (cn[:, :2] - half >= frame_wh)).any(1)
        if outside.any():
            outside = torch.from_numpy(outside)
            boxes[outside] = prev[outside]
            confidence[outside] = 0.0
        # keep boxes usable: a degenerate regression falls back to the previous size
        small = (boxes.numpy()[:, 2:] < self.min_size).any(1)
        if small.any():
            small = torch.from_numpy(small)
            centre = boxes[small, :2] + boxes[small, 2:] / 2
            boxes[small] = torch.cat([centre - prev[small, 2:] / 2, prev[small, 2:]], 1)
        return MatchResult(boxes, confidence, searches)

    @torch.inference_mode()
    def match_one(self, templates: Templates, frame, box) -> tuple[list[float], float, int]:
        """``match`` for one template and one search box (x, y, w, h as four numbers): the box
        found as four floats, its confidence and the number of searches made.

        The same numbers as ``match`` gives that box, bit for bit, without the batch bookkeeping:
        a tracker matches one box a frame, and for so few numbers numpy's and torch's per-call
        costs are a tenth of the match. Anything but one template without edge following goes
        through ``match``."""
        if len(templates) != 1 or self.edge_follow:
            r = self.match(templates, frame, as_boxes(box))
            return r.boxes[0].tolist(), float(r.confidence[0]), 1 if r.searches is None else int(r.searches[0])
        f = to_frame_tensor(frame)
        f32 = np.float32
        a = np.asarray(box.detach().cpu() if torch.is_tensor(box) else box, np.float64)
        if a.size != 4:
            raise ValueError(f"match_one takes one box of four numbers (x, y, w, h); got shape {a.shape}")
        x, y, w, h = a.astype(np.float32).reshape(4)  # float32 scalars, as ``as_boxes`` makes the box
        if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(w) and np.isfinite(h) and w > 0 and h > 0):
            check_boxes(as_boxes(box), None, what="search box")  # raises, with its message
        cx, cy = x + w / f32(2), y + h / f32(2)  # xywh_to_cxcywh in float32
        c = torch.from_numpy(np.array([[cx, cy, w, h]], np.float32))
        boxes, confidence, _, _ = self._search(templates.filters, f, c)
        # the window wholly outside the frame: the box kept, confidence 0 (as in ``match``)
        hw, hh = w * f32(self.search_scale / 2), h * f32(self.search_scale / 2)
        if cx + hw <= 0 or cy + hh <= 0 or cx - hw >= f.shape[2] or cy - hh >= f.shape[1]:
            boxes, conf = torch.from_numpy(np.array([[x, y, w, h]], np.float32)), 0.0
        else:
            conf = float(confidence[0])
        found = boxes[0].tolist()
        if found[2] < self.min_size or found[3] < self.min_size:  # rare: ``match``'s own operations
            prev_wh = torch.from_numpy(np.array([[w, h]], np.float32))
            centre = boxes[:, :2] + boxes[:, 2:] / 2
            found = torch.cat([centre - prev_wh / 2, prev_wh], 1)[0].tolist()
        return found, conf, 1

    @torch.inference_mode()
    def blend(self, templates: Templates, frame, boxes, rows, rate: float) -> Templates:
        """Templates whose rows ``rows`` moved towards the look of ``boxes`` (x,y,w,h, one per row)
        in ``frame``: ``(1 - rate) * old + rate * encode(frame, box)``, all in one encode call.

        Templates are linear correlation filters, so repeated blends keep a running average of what
        each object looked like. A box with less than one pixel of width or height inside the frame
        keeps its template. The key-frame boxes of ``templates`` are kept.
        """
        f = to_frame_tensor(frame)
        rows = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
        chosen = as_boxes(boxes)
        if chosen.shape[0] != rows.numel():
            raise ValueError(f"{rows.numel()} template rows but {chosen.shape[0]} boxes")
        inside = clip_boxes(chosen, (f.shape[1], f.shape[2]))
        usable = (inside[:, 2:] >= 1.0).all(1)  # a template needs some of its box inside the frame
        rows, chosen = rows[usable], chosen[usable]
        if rows.numel() == 0:
            return templates
        fresh = self.encode(f, chosen).filters
        filters = templates.filters.clone()
        filters[rows] = (1.0 - rate) * filters[rows] + rate * fresh
        return Templates(filters, templates.boxes)

    def __call__(self, key_frame, key_boxes, frame, search_boxes=None) -> MatchResult:
        """One-shot: encode the templates of ``key_frame`` and match them in ``frame``."""
        return self.match(self.encode(key_frame, key_boxes), frame, search_boxes)

    def _search(self, filters: torch.Tensor, frame: torch.Tensor, cxcywh: torch.Tensor):
        """Boxes (x,y,w,h), confidences, peak cells and peak scores of one search per window ``cxcywh``."""
        crops = self._crop(frame, cxcywh, self.search_scale, self.model.search_size)
        if self.compiled and filters.shape[0] == 1:  # one box: the rest of the search compiled whole
            found = self._compiled_search(filters, crops, cxcywh)
            if found is not None:
                return found
        located = self.model.locate(filters, crops, select_alpha=self.select_alpha, rigid=self.rigid_centre,
                                    compiled=self.compiled)
        dec = decode_peak(located.score, located.best, located.offsets, cxcywh, centre_gain=self.centre_gain,
                          centre_shift=located.rigid_shift)
        return dec.boxes, dec.confidence, dec.cell, dec.peak

    def _compiled_search(self, filters: torch.Tensor, crops: torch.Tensor, cxcywh: torch.Tensor):
        """``_search`` after the crop, through the compiled graph; None where it cannot run (the
        caller goes eager)."""
        model, g = self.model, self.model.geometry
        arrays = model._inference_arrays()
        cached = self.__dict__.get("_graph_cache")
        if cached is None or cached[0] is not arrays:  # rebuilt when a parameter changes
            cached = (arrays, graph_constants(model, arrays, self.select_alpha))
            self.__dict__["_graph_cache"] = cached
        return compiled_match(
            crops, filters, cxcywh, cached[1], patch_size=g.patch_size, stride=g.corr_stride,
            zero_mean=model.patch_norm == "zero_mean", box_mean=model.input_mean == "box",
            template_size=g.template_size, response_size=g.response_size, levels=g.levels,
            rigid=self.rigid_centre, centre_gain=self.centre_gain)

    def _crop(self, frame: torch.Tensor, cxcywh: torch.Tensor, scale: float, out: int) -> torch.Tensor:
        c = cxcywh.detach().cpu().numpy()  # 4 numbers a box: numpy, not torch's per-op cost
        return crop_windows(frame, c[:, :2], c[:, 2:] * np.float32(scale), out, self.model.pixel_mean.view(3))
