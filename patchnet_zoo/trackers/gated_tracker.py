"""``GatedTracker``: the adaptive-depth gated Siamese network as an ``init`` / ``update`` tracker.

Per frame it crops a search window (twice the key's context side) around the last position, runs
the policy (``fixed`` depth, ``soft`` or ``hard`` gating; hard gating stops the backbone at the
exit depth), moves to the refined peak of the response and estimates the size by a three-scale
search done where it is cheap: the key crop is taken at three scales once, at ``init``, so the
extra scales cost only two more correlations at the depth used (no extra backbone run). The
size follows the best scale (penalised against changing, damped), as in SiamFC.

``gflops_per_frame`` is the mean cost of the updates so far, in G multiply-accumulates, from
MACs counted with ``FlopCounterMode`` per backbone stage and correlation
(``models.gated_siamese.count_depth_macs``) and summed over what each update really ran;
``last_depth`` / ``depths`` and ``last_gmacs`` / ``gmacs`` hold the per-frame values.
"""
from __future__ import annotations

import numpy as np
import torch

from ..accel.tracker_adapters import SingleObjectTracker
from ..data.siamese_pairs import MEAN_FILL, context_side
from ..geometry import as_boxes, check_boxes, crop_windows, to_frame_tensor
from ..models.gated_siamese import N_DEPTHS, POLICIES, GatedSiameseTracker, count_depth_macs, policy_macs

__all__ = ["GatedTracker", "parse_policy", "load_gated_model"]

_MODEL_CACHE: dict = {}


def load_gated_model(name: str = "gated_siamese", weights_path: str | None = None) -> GatedSiameseTracker:
    """The pretrained model (packaged weights, sha256-checked), loaded once per process."""
    key = (name, str(weights_path))
    if key not in _MODEL_CACHE:
        from ..registry import create_model

        model = create_model(name, pretrained=weights_path is None, weights_path=weights_path)
        _MODEL_CACHE[key] = model.eval()
    return _MODEL_CACHE[key]


def parse_policy(spec: str | None) -> dict:
    """``"hard"``, ``"hard0.4"`` / ``"hard@0.4"`` (threshold), ``"soft"``, ``"fixed3"`` / ``"d3"`` / ``"3"``
    -> keyword arguments of ``GatedTracker``."""
    s = (spec or "hard").strip().lower().replace("@", "").replace("=", "")
    if s.startswith("hard"):
        rest = s[4:].lstrip(":t")
        return {"policy": "hard", "threshold": float(rest)} if rest else {"policy": "hard"}
    if s == "soft":
        return {"policy": "soft"}
    for prefix in ("fixed", "depth", "d", ""):
        if s.startswith(prefix) and s[len(prefix):].isdigit():
            d = int(s[len(prefix):])
            if 1 <= d <= N_DEPTHS:
                return {"policy": "fixed", "depth": d}
    raise ValueError(f"unknown gated policy {spec!r}; use hard, hard<T> (e.g. hard0.4), soft or fixed1..fixed5")


class GatedTracker(SingleObjectTracker):
    """Args:
        model: a ``GatedSiameseTracker`` (default: the packaged pretrained one).
        policy: ``"hard"``, ``"soft"`` or ``"fixed"``; ``depth`` for fixed, ``threshold`` for hard
            (default: the model's ``gate_threshold``).
        scale_step: the key scales are ``1, 1/scale_step, scale_step``; 1 switches the size search off.
        scale_penalty: factor on the peak of a changed scale (prefer keeping the size).
        scale_lr: damping of the size update (0 = never change, 1 = take the best scale at once).
        window: weight of a cosine window on the response (prefers small motions).

    The scale defaults (penalty 0.95, damping 0.3) were chosen on the first 80 frames of six train
    sequences (car1, Human3, Biker, S0601, wakeboard10, motocross), never on the val split: with
    SiamFC's 0.97 / 0.5 the depth-5 size drifts (success 0.46 there, 0.57 with these).
    """

    def __init__(self, model: GatedSiameseTracker | None = None, policy: str = "hard", depth: int | None = None,
                 threshold: float | None = None, scale_step: float = 1.04, scale_penalty: float = 0.95,
                 scale_lr: float = 0.3, window: float = 0.2, name: str | None = None):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if policy == "fixed" and (depth is None or not 1 <= int(depth) <= N_DEPTHS):
            raise ValueError(f"the fixed policy needs depth in 1..{N_DEPTHS}, got {depth}")
        if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if scale_step < 1.0 or not 0.0 <= scale_lr <= 1.0 or not 0.0 <= window < 1.0:
            raise ValueError("need scale_step >= 1, scale_lr in [0, 1], window in [0, 1)")
        self.model = (model if model is not None else load_gated_model()).eval()
        self.policy, self.depth = policy, (int(depth) if depth is not None else None)
        self.threshold = float(threshold) if threshold is not None else self.model.gate_threshold
        self.scales = [1.0] if scale_step == 1.0 else [1.0, 1.0 / scale_step, scale_step]
        self.scale_penalty, self.scale_lr, self.window = scale_penalty, scale_lr, window
        label = {"hard": f"hard{self.threshold:g}", "soft": "soft", "fixed": f"fixed{self.depth}"}[policy]
        self.name = name or f"gated:{label}"
        self.counts = _macs_table(self.model, len(self.scales))
        G = self.model.grid
        hann = torch.hann_window(G + 2, periodic=False)[1:-1]
        win = torch.outer(hann, hann)
        self._window = (win / win.sum()).view(1, G, G)
        self.depths: list[int] = []
        self.gmacs: list[float] = []
        self.probs: list[list[float]] = []
        self.ok = True
        self._filters = None

    # ------------------------------------------------------------------------------ cost
    @property
    def gflops_per_frame(self) -> float:  # noqa: D401 - attribute of SingleObjectTracker
        """Mean GMACs of the updates so far (before any: the cost of one update at the deepest
        depth this policy can reach)."""
        if self.gmacs:
            return float(np.mean(self.gmacs))
        d = self.depth if self.policy == "fixed" else N_DEPTHS
        return self._step_macs(d) / 1e9

    @gflops_per_frame.setter
    def gflops_per_frame(self, value) -> None:  # the base class assigns it; the count wins
        pass

    @property
    def last_depth(self) -> int | None:
        return self.depths[-1] if self.depths else None

    @property
    def last_gmacs(self) -> float | None:
        return self.gmacs[-1] if self.gmacs else None

    def _step_macs(self, exit_depth: int) -> int:
        c, policy = self.counts, self.policy
        # soft gating visits every depth like a hard exit at depth 5 (stages, correlations, gates)
        total = policy_macs(c["one"], exit_depth, "fixed" if policy == "fixed" else "hard")
        if len(self.scales) > 1:
            extra_depths = range(1, N_DEPTHS + 1) if policy == "soft" else [exit_depth]
            total += sum(c["extra"][d - 1] for d in extra_depths)
        return int(total)

    # ------------------------------------------------------------------------------ tracking
    def init(self, image, box) -> None:
        frame = to_frame_tensor(image)
        b = as_boxes(box, torch.float64)
        check_boxes(b, tuple(frame.shape[1:]), "init box")
        b = b[0].numpy()
        self._centre = b[:2] + b[2:] / 2
        self._size = b[2:].astype(np.float64).copy()
        self._frame_hw = tuple(frame.shape[1:])
        side = float(context_side(*self._size))
        m = self.model
        sides = torch.tensor([[side * k, side * k] for k in self.scales], dtype=torch.float32)
        centres = torch.tensor(np.repeat(self._centre[None], len(self.scales), 0), dtype=torch.float32)
        keys = crop_windows(frame, centres, sides, m.key_size, MEAN_FILL)
        with torch.inference_mode():
            self._filters = m.embed_key(keys)
        self.depths, self.gmacs, self.probs = [], [], []
        self.ok = True

    def update(self, image) -> np.ndarray:
        if self._filters is None:
            raise RuntimeError("call init(image, box) before update(image)")
        frame = to_frame_tensor(image)
        m = self.model
        side = float(context_side(*self._size))
        search_side = 2.0 * side
        crop = crop_windows(frame, torch.tensor(self._centre[None], dtype=torch.float32),
                            torch.tensor([[search_side, search_side]], dtype=torch.float32), m.search_size, MEAN_FILL)
        with torch.inference_mode():
            step = m.track([f[:1] for f in self._filters], crop, self.policy, self.depth, self.threshold)
            d = int(step.depth[0])
            logits = step.logits[0]  # (1, G, G): scale 1
            if len(self.scales) > 1:
                extra = self._extra_scales(step, d)
                logits = torch.cat([logits, extra], 0)  # (K, G, G)
            prob = torch.softmax(logits.flatten(1), 1).view_as(logits)
            prob = (1 - self.window) * prob + self.window * self._window
            peaks = prob.flatten(1).amax(1)
            pen = torch.tensor([1.0] + [self.scale_penalty] * (len(self.scales) - 1))
            best = int(torch.argmax(peaks * pen))
            score = torch.log(prob[best].clamp(min=1e-12))
            disp, _ = m.displacement(score.unsqueeze(0))
        disp = disp[0].double().numpy() * (search_side / m.search_size)
        self._centre = self._centre + disp
        k = self.scales[best]
        self._size = self._size * (1.0 + self.scale_lr * (1.0 / k - 1.0))
        H, W = self._frame_hw = tuple(frame.shape[1:])
        self._size = np.clip(self._size, 4.0, [W, H])
        self._centre = np.clip(self._centre, 0.0, [W, H])
        self.depths.append(d)
        self.gmacs.append(self._step_macs(d) / 1e9)
        self.probs.append([float(x) for x in step.probs[0]])
        return np.array([*(self._centre - self._size / 2), *self._size], dtype=np.float64)

    def relocate(self, box) -> None:
        """Search around ``box`` (x,y,w,h; e.g. the inter-frame estimate of ``SkipFrameTracker``)
        on the next ``update``; the key and the size estimate stay. Invalid boxes are ignored."""
        b = np.asarray(box, dtype=np.float64).reshape(-1)
        if self._filters is None or b.shape != (4,) or not np.isfinite(b).all() or b[2] <= 0 or b[3] <= 0:
            return
        self._centre = b[:2] + b[2:] / 2

    def _extra_scales(self, step, d: int) -> torch.Tensor:
        """Logits of the other key scales, from the search features that already ran."""
        m = self.model
        def at(depth: int) -> torch.Tensor:
            raw = m.correlate(depth, self._filters[depth - 1][1:], step.feats[depth - 1])  # (1, K-1, h, w)
            return m.logits(depth, m.to_grid(raw))[0]
        if self.policy != "soft":
            return at(d)
        p = step.probs[0]
        return sum(p[i] * at(i + 1) for i in range(N_DEPTHS))

    def __repr__(self) -> str:
        return f"GatedTracker(name={self.name!r}, policy={self.policy!r}, depth={self.depth}, threshold={self.threshold})"


def _macs_table(model: GatedSiameseTracker, n_scales: int) -> dict:
    """Per-depth MACs with one key (the policy) and with the extra key scales, cached per model."""
    key = (id(model), n_scales)
    cached = _MACS_TABLE.get(key)
    if cached is None or cached[0] is not model:
        one = count_depth_macs(model, 1)
        extra = [0] * N_DEPTHS
        if n_scales > 1:
            extra = count_depth_macs(model, n_scales - 1)["corr"]
        cached = (model, {"one": one, "extra": extra})
        _MACS_TABLE[key] = cached
    return cached[1]


_MACS_TABLE: dict = {}
