"""OpenCV's single-object trackers as ``SingleObjectTracker``s, and base trackers by name.

```python
from patchnet_zoo.trackers.opencv_trackers import create_opencv_tracker, make_base_tracker

tracker = create_opencv_tracker("nanotrack")   # cv2.TrackerNano with the NanoTrack v2 ONNX models
tracker.init(rgb_frame, [x, y, w, h])          # RGB frames, x,y,w,h 0-based, as everywhere
box = tracker.update(next_rgb_frame)           # float64 (4,); tracker.ok is False after a reported loss
```

Names (``create_opencv_tracker``):

* ``kcf`` -- KCF*: OpenCV KCF with its failure gate off (``detect_thresh = 0``), primed with one
  extra ``update`` on the init frame (unprimed, OpenCV's KCF lags one frame behind).
* ``kcf-gated`` -- plain OpenCV KCF (default ``detect_thresh``; it reports a loss whenever its peak
  is low), primed the same way.
* ``csrt`` -- OpenCV CSRT (not primed).
* ``mosse`` -- ``cv2.legacy.TrackerMOSSE_create``, primed like KCF (its PSR gate reports losses).

On a reported loss the box stays where it was and ``ok`` is ``False`` (``on_lost="nan"`` returns
NaN instead). Per frame on the val split (OTB success / precision), these reproduce the reference
figures: KCF* 0.508 / 0.766, CSRT 0.581 / 0.806, KCF 0.228 / 0.313, MOSSE 0.097 / 0.172, NanoTrack
0.728 / 0.990 (KCF and MOSSE with ``on_lost="nan"``: 0.212 / 0.286 and 0.068 / 0.135).
* ``nanotrack`` -- ``cv2.TrackerNano`` with NanoTrack v2's ``nanotrack_backbone_sim.onnx`` and
  ``nanotrack_head_sim.onnx``, found in ``weights_dir`` (argument), else ``$PATCHNET_ZOO_WEIGHTS``,
  else ``../shared/weights`` (from the working directory), each tried as ``<dir>/nanotrack_v2/``
  and then ``<dir>/`` itself.

Frames are RGB everywhere in this package; the adapters convert them to the order each tracker
wants. KCF, CSRT and MOSSE get BGR (OpenCV's convention). NanoTrack also gets **BGR** by default:
``cv2.TrackerNano`` swaps the channels of its crops itself (``blobFromImage(..., swapRB=true)`` in
its ``init`` and ``update``), so BGR input is what puts RGB -- the order NanoTrack was trained on --
into the network. Measured per frame on the 9 sequences of the val split (OTB success /
precision): BGR input 0.728 / 0.990 (the reference figure, reproduced), RGB input 0.730 / 0.991. The
two orders tie (per-sequence differences of up to +-0.05 go both ways: Surfing06 +0.046 with RGB,
boat5 -0.032), so the order the network expects is kept; ``channel_order="rgb"`` gives the other.

Cost: ``gflops_per_frame`` of ``nanotrack`` is counted from the ONNX graphs (multiply-accumulates
of every Conv, Gemm and MatMul node at the shapes ONNX Runtime reports for one run of the search
branch of the backbone plus the neck/head): 0.0783 G MACs per update (backbone 255x255 search crop
45.9 M, head 32.5 M; the template branch runs only at ``init``). It follows the paper's "FLOPs"
convention, as the rest of the package: 1 MAC = 2 FLOPs. KCF, CSRT and MOSSE are FFT- and
feature-based and are not counted (``None``).
"""
from __future__ import annotations

import functools
import math
import os
from pathlib import Path

from ..accel.tracker_adapters import Got10kAdapter, OpenCVAdapter, SingleObjectTracker

__all__ = [
    "OPENCV_TRACKERS",
    "BASE_TRACKERS",
    "WEIGHTS_ENV",
    "NANOTRACK_FILES",
    "create_opencv_tracker",
    "make_base_tracker",
    "find_nanotrack_weights",
    "default_weights_root",
    "nanotrack_gmacs",
]

OPENCV_TRACKERS = ("kcf", "kcf-gated", "csrt", "mosse", "nanotrack")
BASE_TRACKERS = ("nanotrack", "nanotrack-opencv", "csrt", "kcf", "kcf-gated", "mosse", "patchnet", "gated")
WEIGHTS_ENV = "PATCHNET_ZOO_WEIGHTS"
NANOTRACK_SUBDIR = "nanotrack_v2"
NANOTRACK_FILES = {"backbone": "nanotrack_backbone_sim.onnx", "neckhead": "nanotrack_head_sim.onnx"}

#: the channel order cv2.TrackerNano is fed (see the module docstring for the measurement)
NANOTRACK_CHANNEL_ORDER = "bgr"


def _cv2():
    import cv2

    return cv2


def default_weights_root() -> Path:
    """Third-party weights: ``$PATCHNET_ZOO_WEIGHTS``, else ``../shared/weights`` from the working directory."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else Path("..") / "shared" / "weights"


def find_nanotrack_weights(weights_dir: str | Path | None = None) -> dict[str, Path]:
    """``{"backbone": path, "neckhead": path}`` of the NanoTrack v2 ONNX models.

    Looks in ``weights_dir`` (else ``default_weights_root()``) as ``<dir>/nanotrack_v2/`` and then
    ``<dir>/``; raises ``FileNotFoundError`` naming every folder it looked in.
    """
    root = Path(weights_dir) if weights_dir is not None else default_weights_root()
    looked = []
    for folder in (root / NANOTRACK_SUBDIR, root):
        paths = {k: folder / v for k, v in NANOTRACK_FILES.items()}
        if all(p.is_file() for p in paths.values()):
            return paths
        looked.append(str(folder))
    how = "the weights_dir argument" if weights_dir is not None else (
        f"${WEIGHTS_ENV}" if os.environ.get(WEIGHTS_ENV) else
        f"the default, relative to the working directory {Path.cwd()}; set ${WEIGHTS_ENV} to the folder "
        f"that holds {NANOTRACK_SUBDIR}/, or pass weights_dir")
    raise FileNotFoundError(
        f"NanoTrack v2 needs {NANOTRACK_FILES['backbone']} and {NANOTRACK_FILES['neckhead']}; not found in "
        f"{' or '.join(looked)} ({how})"
    )


# ------------------------------------------------------------------------------ cost counting
def _onnx_macs(path: str | Path) -> int:
    """Multiply-accumulates of one run of an ONNX model at its declared (static) input shapes.

    ONNX Runtime's profiler reports each node's input and output shapes; Conv costs
    ``prod(output) * prod(weight.shape[1:])`` (the weight's ``C_in / groups * kh * kw``), Gemm and
    MatMul ``prod(output) * K``. Graph optimisations are off so the nodes are the file's own.
    """
    import json
    import tempfile

    import numpy as np
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "profile")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feeds = {}
        for i in sess.get_inputs():
            if not all(isinstance(d, int) for d in i.shape):
                raise ValueError(f"{path}: input {i.name} has a dynamic shape {i.shape}")
            feeds[i.name] = np.zeros(i.shape, dtype=np.float32)
        sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
    macs = 0
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        args = e.get("args", {})
        op = args.get("op_name")
        ins = [next(iter(d.values())) for d in args.get("input_type_shape", [])]
        outs = [next(iter(d.values())) for d in args.get("output_type_shape", [])]
        if op in ("Conv", "FusedConv"):
            macs += math.prod(outs[0]) * math.prod(ins[1][1:])
        elif op in ("Gemm", "MatMul"):
            k = ins[0][-1] if not (op == "Gemm" and int(args.get("transA", 0) or 0)) else ins[0][0]
            macs += math.prod(outs[0]) * k
    return macs


@functools.lru_cache(maxsize=8)
def _nanotrack_gmacs_cached(backbone: str, neckhead: str) -> float | None:
    try:
        return (_onnx_macs(backbone) + _onnx_macs(neckhead)) / 1e9
    except Exception:  # noqa: BLE001 - no onnxruntime, an old profiler format...: not counted
        return None


def nanotrack_gmacs(weights_dir: str | Path | None = None) -> float | None:
    """G multiply-accumulates of one NanoTrack update (search branch + head), or None if uncountable."""
    p = find_nanotrack_weights(weights_dir)
    return _nanotrack_gmacs_cached(str(p["backbone"]), str(p["neckhead"]))


class _NanoTrackAdapter(OpenCVAdapter):
    """``cv2.TrackerNano``; ``gflops_per_frame`` is counted from the ONNX graphs on first access."""

    def __init__(self, paths: dict[str, Path], channel_order: str | None = None, name: str = "nanotrack"):
        self.paths = paths

        def factory():
            cv2 = _cv2()
            params = cv2.TrackerNano_Params()
            params.backbone = str(paths["backbone"])
            params.neckhead = str(paths["neckhead"])
            return cv2.TrackerNano_create(params)

        super().__init__(factory, name=name, prime=False, channel_order=channel_order or NANOTRACK_CHANNEL_ORDER)

    @property
    def gflops_per_frame(self) -> float | None:  # noqa: D401 - attribute of SingleObjectTracker
        return _nanotrack_gmacs_cached(str(self.paths["backbone"]), str(self.paths["neckhead"]))

    @gflops_per_frame.setter
    def gflops_per_frame(self, value) -> None:  # the base class assigns it; the count wins
        pass


# ---------------------------------------------------------------------------------- factories
def create_opencv_tracker(name: str, weights_dir: str | Path | None = None, **kwargs) -> SingleObjectTracker:
    """An OpenCV tracker by name (``kcf``, ``kcf-gated``, ``csrt``, ``mosse``, ``nanotrack``) as a
    ``SingleObjectTracker`` taking RGB frames; see the module docstring for what each one is.

    ``kwargs`` go to the ``OpenCVAdapter`` (e.g. ``channel_order``, ``on_lost``).
    """
    key = name.strip().lower().replace("_", "-")
    if key in ("kcf*", "kcf-star"):
        key = "kcf"
    if key == "nanotrack-v2" or key == "nano":
        key = "nanotrack"
    if key not in OPENCV_TRACKERS:
        raise ValueError(f"unknown OpenCV tracker {name!r}; choose from {OPENCV_TRACKERS}")
    if key == "nanotrack":
        paths = find_nanotrack_weights(weights_dir)
        _cv2()  # fail here, not at init, when OpenCV is missing
        return _NanoTrackAdapter(paths, channel_order=kwargs.pop("channel_order", None),
                                 name=kwargs.pop("name", "nanotrack"), **kwargs)
    _cv2()
    if key in ("kcf", "kcf-gated"):
        gate_off = key == "kcf"

        def factory():
            cv2 = _cv2()
            params = cv2.TrackerKCF_Params()
            if gate_off:
                params.detect_thresh = 0.0
            return cv2.TrackerKCF_create(params)

        kwargs.setdefault("prime", True)
        return OpenCVAdapter(factory, name=kwargs.pop("name", key), **kwargs)
    if key == "csrt":
        return OpenCVAdapter(lambda: _cv2().TrackerCSRT_create(), name=kwargs.pop("name", "csrt"), **kwargs)
    # mosse
    kwargs.setdefault("prime", True)
    return OpenCVAdapter(lambda: _cv2().legacy.TrackerMOSSE_create(), name=kwargs.pop("name", "mosse"), **kwargs)


def make_base_tracker(spec: str, weights_dir: str | Path | None = None, **kwargs) -> SingleObjectTracker:
    """A base tracker for ``SkipFrameTracker`` by name: ``nanotrack`` (``trackers.nanotrack.NanoTrack``:
    NanoTrack v2's graphs with a tracking state that ``SkipFrameTracker`` can move to PatchNet's
    estimate before a key frame), ``nanotrack-opencv`` (``cv2.TrackerNano``, state private), ``csrt``,
    ``kcf`` (KCF*), ``kcf-gated``, ``mosse`` (OpenCV, see ``create_opencv_tracker``) or ``patchnet``
    (``PatchNetTracker``; ``kwargs`` go to it, e.g. ``model=PatchNet()``; without a model it loads the
    pretrained PatchNet on ``init``), or ``gated[:POLICY]`` (``trackers.gated_tracker.GatedTracker``, the
    adaptive-depth gated Siamese tracker with its packaged weights; POLICY ``hard`` (default),
    ``hard0.4``, ``soft`` or ``fixed1`` .. ``fixed5``)."""
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a tracker name, got {type(spec).__name__}")
    key = spec.strip().lower().replace("_", "-")
    if key in ("nanotrack", "nanotrack-v2", "nano"):
        from .nanotrack import NanoTrack

        return NanoTrack(weights_dir, **kwargs)
    if key in ("nanotrack-opencv", "nanotrack-cv2"):
        key = "nanotrack"
    if key == "gated" or key.startswith("gated:"):
        from .gated_tracker import GatedTracker, parse_policy

        return GatedTracker(**{**parse_policy(key.partition(":")[2] or None), **kwargs})
    if key == "patchnet":
        from .patchnet_tracker import PatchNetTracker

        return Got10kAdapter(PatchNetTracker(**kwargs), name="patchnet")
    try:
        return create_opencv_tracker(key, weights_dir=weights_dir, **kwargs)
    except ValueError as e:
        if "unknown OpenCV tracker" in str(e):
            raise ValueError(f"unknown base tracker {spec!r}; choose from {BASE_TRACKERS}") from None
        raise
