"""Stateful single-object trackers, got10k convention: ``init(image, box)`` / ``update(image) -> box``."""
from .patchnet_tracker import PatchNetTracker, load_pretrained_patchnet, track_video

__all__ = ["PatchNetTracker", "track_video", "load_pretrained_patchnet"]
