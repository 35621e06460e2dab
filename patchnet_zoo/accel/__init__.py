"""Acceleration: run an expensive model on key frames only and PatchNet in between.

* ``accelerate(tracker, key_frame_interval=4)`` -- any single-object tracker (OpenCV, got10k,
  pysot, pytracking, a callable or a name such as ``"nanotrack"``) as a ``SkipFrameTracker``.
* ``frame_shift.FrameShift`` -- how a tracker whose search state is private (OpenCV's, most
  got10k / pytracking trackers) is moved to PatchNet's estimate on a key frame: the frame shifts.
* ``adapt_tracker`` and the adapter classes -- one ``init(image, box)`` / ``update(image) -> box``
  interface (RGB frames, x,y,w,h 0-based boxes) over the common tracker conventions.
* ``accelerate_detector(detector, key_frame_interval=5)`` -- any detector (effdet, torchvision,
  ONNX, FastestDet, a callable) as a ``SkipFrameDetector``: the detector on key frames, every box
  carried by PatchNet (class and score kept) in between; ``track_ids=True`` gives every box an
  identity (``track_ids.KeyFrameIdentities``).

Importing this package is light: OpenCV and torch load when a tracker first needs them.
"""
from .skip_frame_detector import (
    BOUNDARY_MODES,
    DETECTION_INTER_METHODS,
    POLICIES,
    SkipFrameDetector,
    accelerate_detector,
)
from .skip_frame_tracker import INTER_METHODS, SkipFrameTracker, accelerate
from .track_ids import KeyFrameIdentities
from .tracker_adapters import (
    CallableAdapter,
    Got10kAdapter,
    OpenCVAdapter,
    PysotAdapter,
    PytrackingAdapter,
    SingleObjectTracker,
    adapt_tracker,
    convert_box,
)

__all__ = [
    "KeyFrameIdentities",
    "accelerate",
    "SkipFrameTracker",
    "INTER_METHODS",
    "adapt_tracker",
    "SingleObjectTracker",
    "Got10kAdapter",
    "PysotAdapter",
    "PytrackingAdapter",
    "OpenCVAdapter",
    "CallableAdapter",
    "convert_box",
    "accelerate_detector",
    "SkipFrameDetector",
    "DETECTION_INTER_METHODS",
    "POLICIES",
    "BOUNDARY_MODES",
]
