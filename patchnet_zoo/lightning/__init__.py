"""Lightning wiring: PatchNet training, and key-frame acceleration of video detection and tracking."""
from .pair_datamodule import PairDataModule
from .patchnet_task import PatchNetTask
from .video_accelerator import VideoAccelerator, VideoBoundaryError
from .video_datamodule import VideoClip, VideoDataModule, VideoDataset, VideoShardSampler, collate_video
from .video_detection_module import VideoDetectionModule
from .video_tracking_module import VideoTrackingModule

__all__ = [
    "PatchNetTask", "PairDataModule",
    "VideoAccelerator", "VideoBoundaryError",
    "VideoDataModule", "VideoDataset", "VideoClip", "VideoShardSampler", "collate_video",
    "VideoDetectionModule", "VideoTrackingModule",
]
