"""Detection: one ``Detections`` type, adapters that fit any detector to ``frame -> Detections``,
the FastestDet ONNX detector, and the mAP evaluation on MOTChallenge sequences.

Importing this package is light (numpy only): torch, ONNX Runtime, effdet and OpenCV load when a
detector that needs them is built.
"""
from .adapters import (
    DETECTOR_SPECS,
    CallableAdapter,
    Detector,
    EffDetAdapter,
    OnnxDetector,
    TorchvisionAdapter,
    adapt_detector,
    make_detector,
)
from .detections import Detections
from .fastestdet import FastestDet

__all__ = [
    "Detections",
    "Detector",
    "EffDetAdapter",
    "TorchvisionAdapter",
    "CallableAdapter",
    "OnnxDetector",
    "FastestDet",
    "adapt_detector",
    "make_detector",
    "DETECTOR_SPECS",
]
