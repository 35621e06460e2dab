"""Fit any detector into one interface: ``detector(rgb_frame) -> Detections``.

A ``Detector`` takes an RGB ``HxWx3`` uint8 numpy frame and returns ``Detections`` (``x1, y1, x2,
y2`` pixels of that frame, score, class id; every box ``from_key_frame=True``). It may say what one
call costs in ``gflops_per_frame`` (G multiply-accumulates, the paper's "FLOPs" convention; ``None``
where unknown), which the FLOPs projections use.

``adapt_detector(obj)`` recognises:

=============================  =====================================================================
object                         adapter
=============================  =====================================================================
a ``Detector``                 returned as it is
effdet ``DetBenchPredict`` or  ``EffDetAdapter``: letterbox to the model's size, ImageNet
``EfficientDet``               normalisation, zero-padded output rows dropped, class ids shifted by
                               ``class_offset`` (-1: effdet counts from 1, background = 0)
a torchvision detection model  ``TorchvisionAdapter``: the model resizes and normalises itself;
                               labels shifted by ``class_offset`` (-1: torchvision's COCO models
                               count background as 0)
an ONNX Runtime session or a   ``OnnxDetector`` (a FastestDet-style graph, one ``1 x (5 + C) x H x
path to a ``.onnx`` file       W`` output, becomes a ``FastestDet``)
a string                       ``make_detector(spec)``
any other callable             ``CallableAdapter``: ``f(rgb_frame)`` may return ``Detections``, an
                               ``sv.Detections``, a dict (``boxes``/``xyxy``, ``scores``, ``labels``
                               / ``class_ids``), a tuple ``(boxes, scores, class_ids)`` or an
                               ``(N, 4 | 5 | 6)`` array ``x1, y1, x2, y2[, score[, class]]``
=============================  =====================================================================

With every COCO model here the default offsets make ``person`` class 0 (FastestDet counts 80
classes from 0; effdet and torchvision use the 91 COCO category ids, shifted by one).

Specs for the command line (``make_detector``): ``fastestdet[:PATH.onnx]``, ``onnx:PATH``,
``effdet:NAME[:CHECKPOINT]``, ``torchvision:NAME[:WEIGHTS]``, ``python:MODULE:FUNCTION`` (``MODULE``
may be a ``.py`` file). Nothing downloads: an effdet or torchvision model without local weights is
built with random weights (a warning says so; good for timing, not for accuracy).
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .detections import Detections

__all__ = [
    "Detector",
    "EffDetAdapter",
    "TorchvisionAdapter",
    "CallableAdapter",
    "OnnxDetector",
    "adapt_detector",
    "make_detector",
    "check_frame",
    "DETECTOR_SPECS",
]

logger = logging.getLogger(__name__)

DETECTOR_SPECS = ("fastestdet[:PATH]", "onnx:PATH", "effdet:NAME[:CHECKPOINT]", "torchvision:NAME[:WEIGHTS]",
                  "python:MODULE:FUNCTION")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_frame(frame) -> np.ndarray:
    """``frame`` as a contiguous HxWx3 uint8 RGB array; a clear ``TypeError``/``ValueError`` otherwise."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"a detector takes an RGB HxWx3 uint8 numpy array, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"a detector takes an RGB HxWx3 frame, got shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"a detector takes uint8 frames (0-255), got dtype {frame.dtype}")
    return np.ascontiguousarray(frame)


class Detector:
    """Base class: ``__call__(rgb_frame) -> Detections``; ``gflops_per_frame`` may be ``None``."""

    name: str = "detector"
    gflops_per_frame: float | None = None
    class_names: list[str] | None = None

    def __call__(self, frame) -> Detections:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _finish(boxes, scores, class_ids, hw, score_threshold: float | None) -> Detections:
    """Common tail of every adapter: finite boxes with positive size, score threshold, clipping."""
    d = Detections(np.asarray(boxes, np.float32).reshape(-1, 4), scores, class_ids, True)
    ok = np.isfinite(d.boxes).all(1) & np.isfinite(d.scores)
    if score_threshold is not None:
        ok &= d.scores >= score_threshold
    return d[ok].clip(hw, min_size=1e-3)


# ------------------------------------------------------------------------------------------- effdet
class EffDetAdapter(Detector):
    """An effdet ``DetBenchPredict`` (or a bare ``EfficientDet``, wrapped in one).

    The frame is resized to fit the model's square input keeping its aspect ratio, padded at the
    right/bottom, normalised with the config's mean/std (ImageNet's when it has none); the bench
    scales the boxes back to the frame. Rows with a zero score (the bench pads to
    ``max_det_per_image``) are dropped, then scores below ``score_threshold``.
    """

    def __init__(self, model, score_threshold: float = 0.3, class_offset: int = -1, device=None,
                 gflops_per_frame: float | None = None, name: str | None = None):
        import torch

        if type(model).__name__ != "DetBenchPredict":
            from effdet import DetBenchPredict

            model = DetBenchPredict(model)
        self.bench = model.eval()
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.bench.to(self.device)
        config = model.config
        size = config.image_size
        size = [int(v) for v in size] if hasattr(size, "__len__") else [int(size)] * 2  # omegaconf tuples too
        self.image_size = (size[0], size[1])
        mean = config.get("mean", None) if hasattr(config, "get") else getattr(config, "mean", None)
        std = config.get("std", None) if hasattr(config, "get") else getattr(config, "std", None)
        self.mean = torch.tensor(mean or IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1) * 255
        self.std = torch.tensor(std or IMAGENET_STD, dtype=torch.float32).view(3, 1, 1) * 255
        self.score_threshold = score_threshold
        self.class_offset = int(class_offset)
        self._gflops = gflops_per_frame
        self.name = name or f"effdet:{getattr(config, 'name', 'model')}"

    @property
    def gflops_per_frame(self) -> float | None:
        if self._gflops is None:
            import torch

            x = torch.zeros(1, 3, *self.image_size, device=self.device)
            self._gflops = _torch_gmacs(self.bench.model, x)
        return self._gflops

    def preprocess(self, frame: np.ndarray):
        import torch
        import torch.nn.functional as F

        h, w = frame.shape[:2]
        th, tw = self.image_size
        scale = min(th / h, tw / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        x = torch.from_numpy(frame).permute(2, 0, 1).float().unsqueeze(0)
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=scale < 1)
        x = (x[0] - self.mean) / self.std
        canvas = torch.zeros(1, 3, th, tw)
        canvas[0, :, :nh, :nw] = x
        info = {"img_scale": torch.tensor([1.0 / scale]), "img_size": torch.tensor([[float(w), float(h)]])}
        return canvas, info

    def __call__(self, frame) -> Detections:
        import torch

        frame = check_frame(frame)
        x, info = self.preprocess(frame)
        with torch.inference_mode():
            out = self.bench(x.to(self.device), img_info={k: v.to(self.device) for k, v in info.items()})
        out = out[0].float().cpu().numpy()
        out = out[out[:, 4] > 0]  # zero-padded rows
        return _finish(out[:, :4], out[:, 4], out[:, 5].astype(np.int64) + self.class_offset,
                       frame.shape[:2], self.score_threshold)


def _torch_gmacs(module, *inputs) -> float | None:
    """G multiply-accumulates of one forward (``FlopCounterMode`` counts FLOPs = 2 MACs)."""
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        with torch.inference_mode(), FlopCounterMode(display=False) as fc:
            module(*inputs)
        return fc.get_total_flops() / 2 / 1e9
    except Exception as e:  # noqa: BLE001 - an op the counter cannot run: unknown cost
        logger.debug("cannot count the FLOPs of %s: %s", type(module).__name__, e)
        return None


# -------------------------------------------------------------------------------------- torchvision
class TorchvisionAdapter(Detector):
    """A torchvision detection model (Faster/Mask R-CNN, RetinaNet, FCOS, SSD...): it takes a list of
    0-1 float CHW tensors and returns ``[{"boxes", "labels", "scores"}]`` in frame pixels."""

    def __init__(self, model, score_threshold: float = 0.3, class_offset: int = -1, device=None,
                 gflops_per_frame: float | None = None, name: str | None = None):
        import torch

        self.model = model.eval()
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model.to(self.device)
        self.score_threshold = score_threshold
        self.class_offset = int(class_offset)
        self._gflops = gflops_per_frame
        self.name = name or f"torchvision:{type(model).__name__}"
        self._last_hw: tuple[int, int] | None = None

    @property
    def gflops_per_frame(self) -> float | None:
        """Counted at the last frame size seen (torchvision models resize to their own range)."""
        if self._gflops is None and self._last_hw is not None:
            import torch

            self._gflops = _torch_gmacs(self.model, [torch.zeros(3, *self._last_hw, device=self.device)])
        return self._gflops

    def __call__(self, frame) -> Detections:
        import torch

        frame = check_frame(frame)
        self._last_hw = frame.shape[:2]
        x = torch.from_numpy(frame).to(self.device).permute(2, 0, 1).float().div_(255)
        with torch.inference_mode():
            out = self.model([x])[0]
        return _finish(out["boxes"].float().cpu().numpy(), out["scores"].float().cpu().numpy(),
                       out["labels"].cpu().numpy().astype(np.int64) + self.class_offset,
                       frame.shape[:2], self.score_threshold)


# ----------------------------------------------------------------------------------------- callable
def _as_numpy(v):
    if v is None:
        return None
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v)


class CallableAdapter(Detector):
    """Any ``f(rgb_frame)`` returning one of the forms listed in the module docstring.

    Args:
        fn: the callable.
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``: what ``fn``'s boxes are.
        score_threshold: drop boxes scoring below it (``None`` keeps all).
        class_offset: added to the returned class ids.
        channel_order: ``"rgb"`` (default) or ``"bgr"``: what ``fn`` expects.
        gflops_per_frame: the cost of one call, if known.
    """

    def __init__(self, fn: Callable, box_format: str = "xyxy", score_threshold: float | None = None,
                 class_offset: int = 0, channel_order: str = "rgb", gflops_per_frame: float | None = None,
                 name: str | None = None):
        if not callable(fn):
            raise TypeError(f"expected a callable detector, got {type(fn).__name__}")
        if box_format not in ("xyxy", "xywh", "cxcywh"):
            raise ValueError(f"box_format must be xyxy, xywh or cxcywh, got {box_format!r}")
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        self.fn = fn
        self.box_format = box_format
        self.score_threshold = score_threshold
        self.class_offset = int(class_offset)
        self.channel_order = channel_order
        self.gflops_per_frame = gflops_per_frame
        self.name = name or getattr(fn, "__name__", type(fn).__name__)

    def _to_xyxy(self, b: np.ndarray) -> np.ndarray:
        b = b.astype(np.float32).reshape(-1, 4)
        if self.box_format == "xywh":
            return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)
        if self.box_format == "cxcywh":
            return np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)
        return b

    def __call__(self, frame) -> Detections:
        frame = check_frame(frame)
        out = self.fn(frame[..., ::-1].copy() if self.channel_order == "bgr" else frame)
        boxes, scores, classes = self._parse(out)
        boxes = self._to_xyxy(boxes)
        if classes is not None:
            classes = np.asarray(classes).astype(np.int64) + self.class_offset
        return _finish(boxes, scores, classes, frame.shape[:2], self.score_threshold)

    def _parse(self, out: Any):
        if isinstance(out, Detections):
            return out.boxes if self.box_format == "xyxy" else out.xywh if self.box_format == "xywh" else \
                self._xyxy_to_cxcywh(out.boxes), out.scores, out.class_ids
        if out is None:
            return np.zeros((0, 4)), None, None
        if hasattr(out, "xyxy") and not isinstance(out, dict):  # sv.Detections and look-alikes
            d = Detections.from_supervision(out)
            return (d.boxes if self.box_format == "xyxy" else out.xyxy), d.scores, d.class_ids
        if isinstance(out, dict):
            boxes = next((out[k] for k in ("boxes", "xyxy", "bboxes") if k in out), None)
            if boxes is None:
                raise ValueError(f"a detector dict needs 'boxes' (or 'xyxy'); got keys {sorted(out)}")
            scores = next((out[k] for k in ("scores", "confidence") if k in out), None)
            classes = next((out[k] for k in ("labels", "class_ids", "class_id") if k in out), None)
            return _as_numpy(boxes), _as_numpy(scores), _as_numpy(classes)
        if isinstance(out, (tuple, list)) and len(out) in (2, 3) and not _is_table(out):
            parts = [_as_numpy(p) for p in out]
            return parts[0], parts[1], parts[2] if len(parts) == 3 else None
        a = _as_numpy(out)
        if a.size == 0:
            return np.zeros((0, 4)), None, None
        a = a.reshape(-1, a.shape[-1]) if a.ndim >= 2 else a.reshape(1, -1)
        if a.shape[1] not in (4, 5, 6):
            raise ValueError(f"a detector array must be (N, 4|5|6) x1,y1,x2,y2[,score[,class]]; got {a.shape}")
        return a[:, :4], (a[:, 4] if a.shape[1] > 4 else None), (a[:, 5] if a.shape[1] > 5 else None)

    @staticmethod
    def _xyxy_to_cxcywh(b: np.ndarray) -> np.ndarray:
        return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], 1)


def _is_table(seq) -> bool:
    """Whether a list/tuple is one ``(N, 4 | 5 | 6)`` table (rather than ``(boxes, scores[, classes])``)."""
    try:
        a = np.asarray([_as_numpy(v) for v in seq], dtype=np.float64)
    except (ValueError, TypeError):
        return False
    return a.ndim == 2 and a.shape[1] in (4, 5, 6) or a.ndim == 1


# --------------------------------------------------------------------------------------------- onnx
def onnx_session(path, threads: int = 1):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and thread spinning off (idle
    spinning threads would otherwise slow down the torch work that runs right after each call)."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX model at {path}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxDetector(Detector):
    """A detector exported to ONNX, run with ONNX Runtime on the CPU.

    The generic pre-processing resizes the frame to the model's static input size (``input_size``
    for dynamic inputs; ``None`` keeps the frame size), in ``channel_order``, as ``(x * scale - mean)
    / std`` in NCHW float32. Outputs understood: one ``(1, N, 6 | 7)`` / ``(N, 6)`` tensor of ``x1, y1,
    x2, y2, score, class`` (a leading batch index column is dropped for 7), or three tensors ``boxes
    (N, 4), scores (N,), labels (N,)`` (by name, else in that order). Boxes are in input pixels
    (``normalized_boxes=True``: fractions of the input) and are scaled back to the frame.
    Subclasses with their own format override ``preprocess`` and ``postprocess`` (``FastestDet``).
    """

    def __init__(self, model, input_size: tuple[int, int] | None = None, channel_order: str = "rgb",
                 scale: float = 1 / 255, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), score_threshold: float = 0.3,
                 class_offset: int = 0, normalized_boxes: bool = False, threads: int = 1,
                 name: str | None = None):
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        if isinstance(model, (str, Path)):
            self.path = Path(model)
            self.session = onnx_session(self.path, threads)
        else:
            self.path = None
            self.session = model
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        static = [d if isinstance(d, int) else None for d in inp.shape[2:4]] if len(inp.shape) == 4 else [None, None]
        self.input_size = tuple(input_size) if input_size is not None else (
            (static[0], static[1]) if None not in static else None)
        self.channel_order = channel_order
        self.scale = float(scale)
        self.mean = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
        self.score_threshold = score_threshold
        self.class_offset = int(class_offset)
        self.normalized_boxes = normalized_boxes
        self.name = name or (f"onnx:{self.path.name}" if self.path else "onnx")
        self._gflops: float | None = None
        self._gflops_counted = False

    @property
    def gflops_per_frame(self) -> float | None:
        """Counted once from the graph (Conv/Gemm/MatMul multiply-accumulates at its static shapes)."""
        if not self._gflops_counted and self.path is not None:
            self._gflops_counted = True
            try:
                from ..trackers.opencv_trackers import _onnx_macs

                self._gflops = _onnx_macs(self.path) / 1e9
            except Exception as e:  # noqa: BLE001 - dynamic shapes etc.: unknown cost
                logger.debug("cannot count the FLOPs of %s: %s", self.path, e)
        return self._gflops

    def _resize(self, frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
        if size is None or tuple(frame.shape[:2]) == tuple(size):
            return frame
        import cv2

        return cv2.resize(frame, (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR)

    def preprocess(self, frame: np.ndarray) -> tuple[dict, dict]:
        img = self._resize(frame, self.input_size)
        if self.channel_order == "bgr":
            img = img[..., ::-1]
        x = img.transpose(2, 0, 1)[None].astype(np.float32) * self.scale
        x = (x - self.mean) / self.std
        return {self.input_name: np.ascontiguousarray(x)}, {"input_hw": img.shape[:2]}

    def postprocess(self, outputs: list, meta: dict, hw: tuple[int, int]) -> Detections:
        names = [o.name.lower() for o in self.session.get_outputs()]
        if len(outputs) >= 3:
            idx = {k: next((i for i, n in enumerate(names) if k in n), j)
                   for j, k in enumerate(("box", "score", "label"))}
            boxes, scores, labels = (np.asarray(outputs[idx[k]]) for k in ("box", "score", "label"))
            boxes, scores, labels = boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
        else:
            a = np.asarray(outputs[0])
            a = a.reshape(-1, a.shape[-1])
            if a.shape[1] == 7:
                a = a[:, 1:]
            if a.shape[1] != 6:
                raise ValueError(f"{self.name}: cannot read an output of shape {np.shape(outputs[0])}; expected "
                                 "(N, 6) x1,y1,x2,y2,score,class or boxes/scores/labels (subclass OnnxDetector "
                                 "for other formats)")
            boxes, scores, labels = a[:, :4], a[:, 4], a[:, 5]
        ih, iw = meta["input_hw"]
        h, w = hw
        sx, sy = (w, h) if self.normalized_boxes else (w / iw, h / ih)
        boxes = boxes.astype(np.float32) * np.array([sx, sy, sx, sy], np.float32)
        return _finish(boxes, scores, labels.astype(np.int64) + self.class_offset, hw, self.score_threshold)

    def __call__(self, frame) -> Detections:
        frame = check_frame(frame)
        feeds, meta = self.preprocess(frame)
        outputs = self.session.run(None, feeds)
        return self.postprocess(outputs, meta, frame.shape[:2])


def _looks_like_fastestdet(session) -> bool:
    outs = session.get_outputs()
    if len(outs) != 1 or len(outs[0].shape) != 4:
        return False
    c = outs[0].shape[1]
    return isinstance(c, int) and c > 5


# ------------------------------------------------------------------------------------------ factory
def adapt_detector(obj, **kwargs) -> Detector:
    """Wrap ``obj`` (see the module docstring) as a ``Detector``; ``kwargs`` go to the adapter."""
    if isinstance(obj, Detector):
        if kwargs:
            raise ValueError(f"{type(obj).__name__} is already a Detector; options {sorted(kwargs)} would be ignored")
        return obj
    if isinstance(obj, (str, Path)):
        s = str(obj)
        if s.lower().endswith(".onnx") and ":" not in s.split("/")[0]:
            s = f"onnx:{s}"
        return make_detector(s, **kwargs)
    module = type(obj).__module__ or ""
    if module.startswith("onnxruntime"):
        if _looks_like_fastestdet(obj):
            from .fastestdet import FastestDet

            return FastestDet(session=obj, **kwargs)
        return OnnxDetector(obj, **kwargs)
    if module.startswith("effdet"):
        return EffDetAdapter(obj, **kwargs)
    if module.startswith("torchvision.models.detection"):
        return TorchvisionAdapter(obj, **kwargs)
    if callable(obj):
        return CallableAdapter(obj, **kwargs)
    raise TypeError(f"cannot use a {type(obj).__name__} as a detector; expected one of: a Detector, an effdet "
                    "DetBenchPredict, a torchvision detection model, an ONNX model, a spec string or a callable")


def _load_python_object(target: str):
    """``module:attr`` or ``path/file.py:attr`` -> the object."""
    mod_name, _, attr = target.rpartition(":")
    if not mod_name or not attr:
        raise ValueError(f"python detector spec must be python:MODULE:FUNCTION, got python:{target}")
    if mod_name.endswith(".py"):
        path = Path(mod_name)
        if not path.is_file():
            raise FileNotFoundError(f"no Python file at {path}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(mod_name)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{mod_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def make_detector(spec: str, **kwargs) -> Detector:
    """A detector from a command-line spec (see ``DETECTOR_SPECS``); ``kwargs`` go to the adapter
    (e.g. ``score_threshold``)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"detector spec must be a non-empty string; one of {DETECTOR_SPECS}")
    kind, _, rest = spec.strip().partition(":")
    kind = kind.lower()
    if kind == "fastestdet":
        from .fastestdet import FastestDet

        return FastestDet(weights=rest or None, **kwargs)
    if kind == "onnx":
        if not rest:
            raise ValueError("onnx detector spec needs a path: onnx:PATH.onnx")
        session = onnx_session(rest, kwargs.pop("threads", 1))
        if _looks_like_fastestdet(session):
            from .fastestdet import FastestDet

            return FastestDet(weights=rest, session=session, **kwargs)
        det = OnnxDetector(session, **kwargs)
        det.path, det.name = Path(rest), f"onnx:{Path(rest).name}"
        return det
    if kind == "effdet":
        name, _, ckpt = rest.partition(":")
        if not name:
            raise ValueError("effdet detector spec needs a model name, e.g. effdet:tf_efficientdet_d0")
        import effdet

        if ckpt and not Path(ckpt).is_file():
            raise FileNotFoundError(f"no effdet checkpoint at {ckpt}")
        try:
            bench = effdet.create_model(name, bench_task="predict", pretrained=False, pretrained_backbone=False,
                                        checkpoint_path=ckpt or "")
        except KeyError:
            raise ValueError(f"unknown effdet model {name!r}") from None
        if not ckpt:
            logger.warning("effdet:%s has random weights (no checkpoint given): use it for timing only", name)
        return EffDetAdapter(bench, name=f"effdet:{name}", **kwargs)
    if kind == "torchvision":
        name, _, weights = rest.partition(":")
        if not name:
            raise ValueError("torchvision detector spec needs a model name, e.g. torchvision:fasterrcnn_resnet50_fpn")
        import torch
        import torchvision

        try:
            if weights and Path(weights).is_file():
                model = torchvision.models.get_model(name, weights=None, weights_backbone=None)
                model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            else:
                model = torchvision.models.get_model(name, weights=weights or None, weights_backbone=None)
        except ValueError as e:
            raise ValueError(f"torchvision detector {name!r}: {e}") from None
        if not weights:
            logger.warning("torchvision:%s has random weights (no weights given): use it for timing only", name)
        return TorchvisionAdapter(model, name=f"torchvision:{name}", **kwargs)
    if kind == "python":
        obj = _load_python_object(rest)
        det = adapt_detector(obj, **kwargs)
        if isinstance(det, CallableAdapter):
            det.name = f"python:{rest}"
        return det
    raise ValueError(f"unknown detector spec {spec!r}; expected one of {DETECTOR_SPECS}")


