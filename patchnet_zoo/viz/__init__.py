"""Visualisation: boxes on frames (key frame vs propagated styled apart), annotated videos, plots.

Imports OpenCV and matplotlib only when a function that needs them is called.
"""
from .draw import GT_STYLE, KEY_STYLE, PROPAGATED_STYLE, BoxStyle, as_rgb_uint8, draw_boxes, draw_text
from .plots import plot_curves, plot_iou_over_time, plot_speed_accuracy
from .video import VideoWriter, write_video

__all__ = [
    "BoxStyle", "KEY_STYLE", "PROPAGATED_STYLE", "GT_STYLE", "as_rgb_uint8", "draw_boxes", "draw_text",
    "VideoWriter", "write_video",
    "plot_iou_over_time", "plot_speed_accuracy", "plot_curves",
]
