"""Video items for ``trainer.test`` / ``trainer.predict``: one item = one whole video (or one clip).

Stateful video inference (a key-frame detector or tracker that carries boxes from frame to frame)
must see the frames of a video in order, in one process. Lightning shards *items* across DDP
processes, so an item here is a whole video (or a contiguous clip of one), never a single frame,
and a batch is exactly one item (``collate_video``).

```python
from patchnet_zoo.lightning import VideoDataModule

dm = VideoDataModule(split="val", kind="sot", max_frames=30)   # the 9 val sequences, first 30 frames
dm.setup("test")
clip = dm.test_set[0]              # a VideoClip
frame = clip.frames[0]             # RGB uint8 HxWx3, read from disk only now
clip.targets[0].boxes              # (N, 4) x,y,w,h 0-based
```

Kinds of sources (all in the shared-data layout, see the data README):

* ``sot`` -- a GOT-10k-style folder (one target; absent frames have no box);
* ``mot`` -- a MOTChallenge folder: every annotated box of a frame (1-based boxes are shifted to
  0-based; MOT16/17 rows that are not counted pedestrians become "crowd" boxes, which an
  evaluation ignores rather than scores);
* ``vid`` -- an ImageNet VID snippet. Its boxes are **R-FCN detections** (score >= ``ref_score``),
  not ground truth: a reference to compare a detector with, never a benchmark figure;
* ``video`` -- a video file (``.mpg``, ``.mp4``, ...) with a box file of the same stem. Frames are
  decoded as they are read, in order; no video is ever held in memory as a whole.

Items keep paths and boxes only; frames are read when they are indexed (``clip.frames[i]``) or
iterated, so a ``DataLoader`` with workers moves kilobytes, not videos.
"""
from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..data.readers import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    _imread_rgb,
    default_data_root,
    read_boxes,
    read_folder_sequence,
    video_fps,
)

__all__ = [
    "FrameTargets", "VideoSource", "VideoClip", "LazyFrames", "VideoDataset", "VideoShardSampler",
    "VideoDataModule", "collate_video", "read_video_source", "find_video_sources", "KINDS",
]

KINDS = ("sot", "mot", "vid", "video")
# MOT16/17 classes that look like a pedestrian to a detector but are not scored as one:
# person on vehicle, static person, distractor, reflection. They are kept as "crowd" boxes.
_MOT_CROWD_CLASSES = (2, 7, 8, 12)


# ------------------------------------------------------------------------------------ targets
@dataclass
class FrameTargets:
    """The annotated boxes of one frame, in the package's convention (x,y,w,h 0-based pixels).

    ``crowd`` marks boxes an evaluation should ignore instead of scoring (MOT17 distractors,
    static people, ...). ``labels`` are 0 for people and single targets, the ImageNet VID class
    for ``vid`` snippets."""

    boxes: np.ndarray  # (N, 4) float64
    labels: np.ndarray  # (N,) int64
    track_ids: np.ndarray  # (N,) int64, -1 where unknown
    crowd: np.ndarray  # (N,) bool
    scores: np.ndarray | None = None  # (N,) for reference detections (vid), else None

    @classmethod
    def empty(cls) -> "FrameTargets":
        return cls(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))

    def __len__(self) -> int:
        return len(self.boxes)


# ------------------------------------------------------------------------------------- frames
class LazyFrames(Sequence):
    """The frames of one clip, read on access: a list of image files, or a range of a video file.

    Image frames are read by index. A video file is decoded forwards from the last position, so
    reading a clip in order costs one decode per frame; going backwards reopens the file. The
    open decoder is not pickled (a ``DataLoader`` worker opens its own)."""

    def __init__(self, image_paths: Sequence[Path] | None = None, video_path: Path | None = None,
                 start: int = 0, stop: int | None = None):
        if (image_paths is None) == (video_path is None):
            raise ValueError("LazyFrames needs either image_paths or video_path")
        self.image_paths = None if image_paths is None else [Path(p) for p in image_paths]
        self.video_path = None if video_path is None else Path(video_path)
        self.start = int(start)
        if stop is None:
            if self.image_paths is None:
                raise ValueError("a video range needs its stop frame (the number of frames is read from the box file)")
            stop = len(self.image_paths)
        self.stop = int(stop)
        if not 0 <= self.start <= self.stop:
            raise ValueError(f"bad frame range [{start}, {stop})")
        self._cap = None
        self._next = 0  # index (in the video) of the frame the open decoder returns next

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {i} out of range for a clip of {n} frames")
        if self.image_paths is not None:
            return _imread_rgb(self.image_paths[self.start + i])
        return self._video_frame(self.start + i)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def _video_frame(self, index: int) -> np.ndarray:
        import cv2

        if self._cap is None or index < self._next:
            self.close()
            if not self.video_path.is_file():
                raise FileNotFoundError(f"no video file at {self.video_path}")
            self._cap = cv2.VideoCapture(str(self.video_path))
            if not self._cap.isOpened():
                raise OSError(f"cannot open video {self.video_path}")
            self._next = 0
        while self._next < index:  # grab() skips without converting the frame
            if not self._cap.grab():
                raise OSError(f"{self.video_path} ends before frame {index} (at {self._next})")
            self._next += 1
        ok, frame = self._cap.read()
        if not ok:
            raise OSError(f"cannot decode frame {index} of {self.video_path}")
        self._next += 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cap"], state["_next"] = None, 0
        return state

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self) -> str:
        src = self.video_path if self.video_path is not None else (
            self.image_paths[0].parent if self.image_paths else "<no images>")
        return f"LazyFrames({src}, [{self.start}, {self.stop}))"


# ------------------------------------------------------------------------------------ sources
@dataclass
class VideoSource:
    """One readable video: where its frames are and the boxes of every frame."""

    name: str  # unique within a data root: the path relative to it, e.g. "mot/TUD-Campus"
    kind: str
    targets: list[FrameTargets] = field(repr=False)
    image_paths: list[Path] | None = field(default=None, repr=False)
    video_path: Path | None = None
    fps: float | None = None
    meta: dict = field(default_factory=dict, repr=False)

    @property
    def num_frames(self) -> int:
        return len(self.targets)

    def frames(self, start: int = 0, stop: int | None = None) -> LazyFrames:
        stop = self.num_frames if stop is None else stop
        if self.image_paths is not None:
            return LazyFrames(image_paths=self.image_paths, start=start, stop=stop)
        return LazyFrames(video_path=self.video_path, start=start, stop=stop)


def _entry_kind(path: Path) -> str:
    if path.is_dir() and (path / "gt" / "gt.txt").is_file():
        return "mot"
    if path.is_dir() and (path / "groundtruth.txt").is_file():
        return "sot"
    if path.is_dir() and (path / "frames").is_dir() and any(path.glob("*detections*.txt")):
        return "vid"
    if path.is_file() and path.suffix.lower() in VIDEO_EXTS:
        return "video"
    raise ValueError(f"don't know how to read {path}: expected a sequence folder (groundtruth.txt), a "
                     "MOTChallenge folder (gt/gt.txt), a VID snippet (frames/ + detections) or a video file")


def find_video_sources(root: str | Path, max_depth: int = 3) -> list[Path]:
    """Every readable source below ``root`` (folders of the four kinds, videos with a box file),
    sorted; a recognised folder is not searched further (its frames are never listed)."""
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            kind = _entry_kind(folder)
        except ValueError:
            kind = None
        if kind is not None:
            found.append(folder)
            return
        if depth >= max_depth:
            return
        for p in sorted(folder.iterdir()):
            if p.is_dir() and not p.name.startswith("."):
                walk(p, depth + 1)
            elif p.suffix.lower() in VIDEO_EXTS and p.with_suffix(".txt").is_file():
                found.append(p)

    walk(Path(root), 0)
    return found


def _single_target(boxes: np.ndarray) -> list[FrameTargets]:
    out = []
    for b in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        if np.isfinite(b).all() and b[2] > 0 and b[3] > 0:
            out.append(FrameTargets(b.reshape(1, 4).copy(), np.zeros(1, np.int64), np.zeros(1, np.int64),
                                    np.zeros(1, bool)))
        else:
            out.append(FrameTargets.empty())
    return out


def _read_sot(folder: Path, name: str) -> VideoSource:
    seq = read_folder_sequence(folder)  # boxes with absent frames as NaN, meta.json
    images = sorted(p for p in folder.iterdir() if p.suffix in IMAGE_EXTS)[: seq.num_frames]
    return VideoSource(name, "sot", _single_target(seq.boxes), image_paths=images, fps=seq.fps, meta=seq.meta)


def _read_video_file(path: Path, name: str) -> VideoSource:
    box_file = path.with_suffix(".txt")
    if not box_file.is_file():
        raise FileNotFoundError(f"{path} has no box file {box_file.name} (one x,y,w,h line per frame)")
    boxes = read_boxes(box_file)
    return VideoSource(name, "video", _single_target(boxes), video_path=path, fps=video_fps(path),
                       meta={"box_file": str(box_file)})


def _read_mot(folder: Path, name: str) -> VideoSource:
    info = configparser.ConfigParser()
    if (folder / "seqinfo.ini").is_file():
        info.read(folder / "seqinfo.ini")
    im_dir = folder / info.get("Sequence", "imDir", fallback="img1")
    images = sorted(p for p in im_dir.iterdir() if p.suffix in IMAGE_EXTS)
    if not images:
        raise FileNotFoundError(f"{im_dir} has no image frames")
    gt = np.loadtxt(folder / "gt" / "gt.txt", delimiter=",", ndmin=2)
    if gt.shape[1] < 6:
        raise ValueError(f"{folder}/gt/gt.txt: expected frame,id,left,top,w,h,... rows; got {gt.shape[1]} columns")
    crowd = np.zeros(len(gt), bool)
    keep = np.ones(len(gt), bool)
    if gt.shape[1] == 9:  # MOT16/17: consider, class, visibility
        counted = (gt[:, 6] != 0) & (gt[:, 7] == 1)
        crowd = ~counted & np.isin(gt[:, 7], _MOT_CROWD_CLASSES)
        keep = counted | crowd
    gt, crowd = gt[keep], crowd[keep]
    frame_of = gt[:, 0].astype(np.int64) - 1  # MOT frames are 1-based
    boxes = gt[:, 2:6] - np.array([1.0, 1.0, 0.0, 0.0])  # MOT boxes are 1-based
    targets = []
    for i in range(len(images)):
        rows = np.nonzero(frame_of == i)[0]
        targets.append(FrameTargets(boxes[rows].copy(), np.zeros(len(rows), np.int64),
                                    gt[rows, 1].astype(np.int64), crowd[rows].copy()))
    fps = info.getfloat("Sequence", "frameRate", fallback=None)
    return VideoSource(name, "mot", targets, image_paths=images, fps=fps, meta={"mot_columns": int(gt.shape[1])})


def _read_vid(folder: Path, name: str, ref_score: float) -> VideoSource:
    images = sorted(p for p in (folder / "frames").iterdir() if p.suffix in IMAGE_EXTS)
    det_file = sorted(folder.glob("*detections*.txt"))[0]
    rows = np.loadtxt(det_file, ndmin=2)
    if rows.size and rows.shape[1] != 7:
        raise ValueError(f"{det_file}: expected 'frame class score x1 y1 x2 y2' rows")
    rows = rows[rows[:, 2] >= ref_score] if rows.size else np.zeros((0, 7))
    targets = []
    for i in range(len(images)):
        r = rows[rows[:, 0].astype(np.int64) == i]
        xywh = np.stack([r[:, 3], r[:, 4], r[:, 5] - r[:, 3], r[:, 6] - r[:, 4]], 1) if len(r) else np.zeros((0, 4))
        targets.append(FrameTargets(xywh, r[:, 1].astype(np.int64), np.full(len(r), -1, np.int64),
                                    np.zeros(len(r), bool), r[:, 2].copy()))
    meta = {"targets": f"reference detections from {det_file.name} with score >= {ref_score} (not ground truth)"}
    return VideoSource(name, "vid", targets, image_paths=images, fps=None, meta=meta)


def read_video_source(path: str | Path, root: str | Path | None = None, ref_score: float = 0.5) -> VideoSource:
    """Read one source (a folder or a video file); ``name`` is its path relative to ``root``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no video or sequence at {path}")
    try:
        name = path.resolve().relative_to(Path(root).resolve()).as_posix() if root is not None else path.name
    except ValueError:
        name = path.as_posix()
    kind = _entry_kind(path)
    if kind == "sot":
        return _read_sot(path, name)
    if kind == "mot":
        return _read_mot(path, name)
    if kind == "vid":
        return _read_vid(path, name, ref_score)
    return _read_video_file(path, name)


# ------------------------------------------------------------------------------------- items
class VideoClip:
    """One item: frames ``[start, stop)`` of one video, their targets, and who they belong to.

    ``video_id`` names the source video (shared by all clips of it), ``clip_id`` names this item
    (``"<video_id>"`` for a whole video, ``"<video_id>@<start>-<stop>"`` for a clip). Every clip
    is processed as a video of its own: its first frame starts a new key-frame sequence.
    """

    def __init__(self, source: VideoSource, start: int = 0, stop: int | None = None, index: int = 0):
        stop = source.num_frames if stop is None else stop
        if not 0 <= start < stop <= source.num_frames:
            raise ValueError(f"bad clip [{start}, {stop}) of {source.name} ({source.num_frames} frames)")
        self.source = source
        self.start, self.stop, self.index = int(start), int(stop), int(index)
        self.whole = start == 0 and stop == source.num_frames

    @property
    def video_id(self) -> str:
        return self.source.name

    @property
    def clip_id(self) -> str:
        return self.video_id if self.whole else f"{self.video_id}@{self.start}-{self.stop}"

    @property
    def kind(self) -> str:
        return self.source.kind

    @property
    def fps(self) -> float | None:
        return self.source.fps

    @property
    def frames(self) -> LazyFrames:
        """The frames, read on access (RGB uint8 HxWx3)."""
        return self.source.frames(self.start, self.stop)

    @property
    def frame_ids(self) -> np.ndarray:
        """Index of each frame in its video (0-based)."""
        return np.arange(self.start, self.stop)

    @property
    def targets(self) -> list[FrameTargets]:
        return self.source.targets[self.start:self.stop]

    def single_target_boxes(self) -> np.ndarray:
        """(T, 4) x,y,w,h of a single-target clip, NaN where the target is absent."""
        out = np.full((len(self), 4), np.nan)
        for i, t in enumerate(self.targets):
            if len(t) > 1:
                raise ValueError(f"{self.clip_id} has {len(t)} boxes in frame {self.start + i}; "
                                 "single_target_boxes is for single-object sequences")
            if len(t):
                out[i] = t.boxes[0]
        return out

    def __len__(self) -> int:
        return self.stop - self.start

    def __repr__(self) -> str:
        return f"VideoClip({self.clip_id!r}, kind={self.kind!r}, frames={len(self)})"


class VideoDataset(Dataset):
    """Clips of a list of sources: whole videos, or consecutive clips of ``clip_length`` frames.

    Args:
        sources: the videos.
        clip_length: frames per clip (``None`` = whole videos); the last clip of a video is shorter.
        max_frames: use only the first ``max_frames`` frames of each video (quick runs).
    """

    def __init__(self, sources: Sequence[VideoSource], clip_length: int | None = None, max_frames: int | None = None):
        for name, v in (("clip_length", clip_length), ("max_frames", max_frames)):
            if v is not None and (isinstance(v, bool) or int(v) != v or v < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {v!r}")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"video names must be unique, got {names}")
        self.sources = list(sources)
        self.clips: list[VideoClip] = []
        for s in self.sources:
            n = s.num_frames if max_frames is None else min(s.num_frames, int(max_frames))
            if n == 0:
                continue
            step = n if clip_length is None else int(clip_length)
            for start in range(0, n, step):
                self.clips.append(VideoClip(s, start, min(start + step, n), index=len(self.clips)))

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> VideoClip:
        return self.clips[i]

    @property
    def lengths(self) -> list[int]:
        return [len(c) for c in self.clips]


def collate_video(items: list[VideoClip]) -> VideoClip:
    """A batch is one video: the clip itself, never a stack of clips."""
    if len(items) != 1:
        ids = [getattr(c, "clip_id", c) for c in items]
        raise ValueError(f"a batch must hold exactly one video (batch_size=1); got {len(items)}: {ids}")
    return items[0]


# ------------------------------------------------------------------------------------ sampler
class VideoShardSampler(DistributedSampler):
    """Gives each process whole videos, each exactly once, balanced by frame count.

    ``DistributedSampler`` pads the last round with repeated items so every process gets the same
    number; for evaluation that scores a video twice. Here videos are assigned, longest first, to
    the process with the fewest frames so far (deterministic: every process computes the same
    assignment), and each process runs its own in dataset order. Being a ``DistributedSampler``,
    Lightning keeps it instead of injecting its own.
    """

    def __init__(self, dataset: VideoDataset, num_replicas: int = 1, rank: int = 0):
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} out of range for {num_replicas} processes")
        if len(dataset) < num_replicas:
            raise ValueError(
                f"{len(dataset)} videos for {num_replicas} processes: every process needs at least one "
                "video (split the videos into clips with clip_length, or use fewer devices)")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        lengths = [len(dataset[i]) for i in range(len(dataset))]
        self.assignment = self.assign(lengths, num_replicas)
        self.indices = [i for i, r in enumerate(self.assignment) if r == rank]
        self.num_samples = len(self.indices)
        self.total_size = len(dataset)

    @staticmethod
    def assign(lengths: Sequence[int], num_replicas: int) -> list[int]:
        """Rank of each item: greedy longest-first onto the least loaded process."""
        load = [0] * num_replicas
        count = [0] * num_replicas
        out = [0] * len(lengths)
        for i in sorted(range(len(lengths)), key=lambda j: (-lengths[j], j)):
            r = min(range(num_replicas), key=lambda k: (load[k], count[k], k))
            out[i] = r
            load[r] += lengths[i]
            count[r] += 1
        return out

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return self.num_samples


# --------------------------------------------------------------------------------- datamodule
class VideoDataModule(pl.LightningDataModule):
    """Videos (or clips) as test / predict items, sharded by video across processes.

    Args:
        data_root: the data location (default ``$PATCHNET_ZOO_DATA`` or ``../shared/data``).
        split: a split name (``"val"`` -> ``data_root/splits/val.txt``) or a split file; ``None``
            with no ``videos``: every source found below ``data_root``.
        kind: keep only sources of this kind (``"sot"``, ``"mot"``, ``"vid"``, ``"video"``);
            ``None`` keeps all.
        videos: explicit sources instead of a split: folders or video files, absolute or relative
            to ``data_root`` (e.g. ``["mot/TUD-Campus", "videos/tld/pedestrian1.mpg"]``).
        clip_length: split every video into clips of this many frames (more, shorter items: better
            balance across processes; each clip starts with a key frame). ``None`` = whole videos.
        max_frames: only the first ``max_frames`` frames of each video.
        ref_score: score threshold of the reference detections of ``vid`` snippets.
        num_workers: ``DataLoader`` workers (items are light: paths and boxes).

    The loaders have batch size 1 and ``collate_video``, so ``test_step(clip, ...)`` receives one
    ``VideoClip``. Under DDP each process gets whole clips, each exactly once (``VideoShardSampler``).
    """

    def __init__(self, data_root: str | None = None, split: str | None = "val", kind: str | None = None,
                 videos: Sequence[str] | None = None, clip_length: int | None = None,
                 max_frames: int | None = None, ref_score: float = 0.5, num_workers: int = 0):
        super().__init__()
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
        if not 0.0 <= float(ref_score) <= 1.0:
            raise ValueError(f"ref_score must be in [0, 1], got {ref_score!r}")
        self.save_hyperparameters()
        self.dataset: VideoDataset | None = None

    @property
    def root(self) -> Path:
        return Path(self.hparams.data_root) if self.hparams.data_root else default_data_root()

    def _entries(self) -> list[Path]:
        h, root = self.hparams, self.root
        if h.videos:
            entries = [Path(v) if Path(v).is_absolute() else root / v for v in h.videos]
            missing = [str(e) for e in entries if not e.exists()]
            if missing:
                raise FileNotFoundError(f"no video or sequence at {missing}")
            return entries
        if not root.is_dir():
            raise FileNotFoundError(f"data root {root} does not exist; pass data_root or set $PATCHNET_ZOO_DATA")
        if h.split is None:
            return find_video_sources(root)
        split_path = Path(h.split)
        if not split_path.is_file():
            split_path = root / "splits" / f"{h.split}.txt"
            if not split_path.is_file():
                raise FileNotFoundError(f"split {h.split!r} is neither a file nor {split_path}")
        return [root / line.strip() for line in split_path.read_text().splitlines()
                if line.strip() and not line.startswith("#")]

    def sources(self) -> list[VideoSource]:
        out = []
        for e in self._entries():
            if self.hparams.kind is not None and _entry_kind(e) != self.hparams.kind:
                continue
            out.append(read_video_source(e, self.root, self.hparams.ref_score))
        if not out:
            raise ValueError(f"no {self.hparams.kind or ''} videos found (split={self.hparams.split!r}, "
                             f"videos={self.hparams.videos!r}, root={self.root})")
        return out

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is None:
            self.dataset = VideoDataset(self.sources(), self.hparams.clip_length, self.hparams.max_frames)

    @property
    def test_set(self) -> VideoDataset:
        if self.dataset is None:
            self.setup("test")
        return self.dataset

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is not None:
            return int(trainer.world_size), int(trainer.global_rank)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size(), torch.distributed.get_rank()
        return 1, 0

    def _loader(self) -> DataLoader:
        ds = self.test_set
        world, rank = self._world()
        n = self.hparams.num_workers
        return DataLoader(ds, batch_size=1, sampler=VideoShardSampler(ds, world, rank), collate_fn=collate_video,
                          num_workers=n, persistent_workers=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader()

    def predict_dataloader(self) -> DataLoader:
        return self._loader()

    def frame_count(self) -> int:
        """Frames over all clips (the work a run does)."""
        return int(sum(self.test_set.lengths))
