"""Readers for video with ground truth: GOT-10k-style folders, video files with a box file, and
MOTChallenge sequences (each track becomes one single-object sequence).

All readers give the same ``Sequence``: RGB frames on demand and boxes x,y,w,h (0-based pixels,
NaN rows where the target is absent). MOTChallenge boxes are 1-based and are shifted here.
"""
from __future__ import annotations

import configparser
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".JPEG", ".JPG", ".PNG")
VIDEO_EXTS = (".mpg", ".mpeg", ".mp4", ".avi", ".mov", ".mkv", ".webm")
DATA_ENV = "PATCHNET_ZOO_DATA"

__all__ = [
    "Sequence", "read_boxes", "read_folder_sequence", "read_video_sequence", "read_mot_tracks",
    "read_sequences", "read_video_frames", "iter_video", "default_data_root", "find_sequences",
]


def default_data_root() -> Path:
    """The data location: ``$PATCHNET_ZOO_DATA``, else ``../shared/data`` from the working directory."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else Path("..") / "shared" / "data"


def _imread_rgb(path: str | Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def iter_video(path: str | Path) -> Iterator[np.ndarray]:
    """RGB frames of any video file OpenCV can decode; a clear error when it cannot be opened."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video file at {path}")
    cap = cv2.VideoCapture(str(path))
    try:
        ok, frame = cap.read()
        if not ok:
            raise OSError(f"cannot decode video {path} (not a video, or a codec OpenCV lacks)")
        while ok:
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            ok, frame = cap.read()
    finally:
        cap.release()


def read_video_frames(path: str | Path) -> list[np.ndarray]:
    return list(iter_video(path))


def video_fps(path: str | Path, default: float = 25.0) -> float:
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return float(fps) if fps and fps > 0 else default


@dataclass
class Sequence:
    """One target in one video. ``boxes[i]`` is frame i's box, NaN where the target is absent."""

    name: str
    boxes: np.ndarray  # (T, 4) float64 x,y,w,h
    frame_loader: Callable[[int], np.ndarray] = field(repr=False)
    num_frames: int = 0
    fps: float | None = None
    meta: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if not self.num_frames:
            self.num_frames = len(self.boxes)

    def __len__(self) -> int:
        return self.num_frames

    def frame(self, i: int) -> np.ndarray:
        if not 0 <= i < self.num_frames:
            raise IndexError(f"frame {i} out of range for {self.name} ({self.num_frames} frames)")
        return self.frame_loader(i)

    @property
    def present(self) -> np.ndarray:
        return np.isfinite(self.boxes).all(1)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(self.num_frames):
            yield self.frame(i), self.boxes[i]


def read_boxes(path: str | Path) -> np.ndarray:
    """A box file: one ``x,y,w,h`` line per frame (comma, tab or space separated; ``nan`` = absent)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        parts = line.replace("\t", ",").replace(" ", ",").split(",")
        parts = [p for p in parts if p != ""]
        if len(parts) < 4:
            raise ValueError(f"{path}: expected x,y,w,h per line, got {line!r}")
        rows.append([float(p) for p in parts[:4]])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def read_folder_sequence(folder: str | Path, one_based: bool = False) -> Sequence:
    """A GOT-10k-style folder: numbered images, ``groundtruth.txt``, optional ``absence.label``/``meta.json``.

    ``one_based=True`` shifts x, y by -1 for box files written 1-based (OTB's convention)."""
    folder = Path(folder)
    gt = folder / "groundtruth.txt"
    if not gt.is_file():
        raise FileNotFoundError(f"{folder} has no groundtruth.txt")
    frames = sorted(p for p in folder.iterdir() if p.suffix in IMAGE_EXTS)
    if not frames:
        raise FileNotFoundError(f"{folder} has no image frames")
    boxes = read_boxes(gt)
    if one_based:
        boxes[:, :2] -= 1.0
    absence = folder / "absence.label"
    if absence.is_file():
        flags = np.loadtxt(absence, dtype=np.int64).reshape(-1)[: len(boxes)]
        boxes[np.nonzero(flags == 1)[0]] = np.nan
    meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").is_file() else {}
    n = min(len(frames), len(boxes))
    return Sequence(folder.name, boxes[:n], lambda i: _imread_rgb(frames[i]), n, meta.get("fps"), meta)


class _VideoFrames:
    """Decodes a video once, on first use, and keeps its frames (video files cannot seek reliably)."""

    def __init__(self, path: Path):
        self.path = path
        self.frames: list[np.ndarray] | None = None

    def __call__(self, i: int) -> np.ndarray:
        if self.frames is None:
            self.frames = read_video_frames(self.path)
        return self.frames[i]


def read_video_sequence(video: str | Path, boxes_file: str | Path | None = None) -> Sequence:
    """A video file plus a box file (default: same stem, ``.txt``); one box line per decoded frame."""
    video = Path(video)
    if not video.is_file():
        raise FileNotFoundError(f"no video file at {video}")
    boxes_file = Path(boxes_file) if boxes_file else video.with_suffix(".txt")
    boxes = read_boxes(boxes_file)
    meta = {}
    meta_file = video.parent / "meta.json"
    if meta_file.is_file():
        allmeta = json.loads(meta_file.read_text())
        meta = allmeta.get(video.stem, {}) if isinstance(allmeta, dict) else {}
    return Sequence(video.stem, boxes, _VideoFrames(video), len(boxes), meta.get("fps") or video_fps(video), meta)


def read_mot_tracks(folder: str | Path, min_length: int = 2, pedestrians_only: bool = True) -> list[Sequence]:
    """Every track of a MOTChallenge sequence as a ``Sequence`` over the frames of its life span.

    ``gt.txt`` rows are ``frame, id, left, top, w, h, ...`` (1-based). MOT16/17 files (9 columns:
    ``consider, class, visibility`` follow) drop rows with consider = 0 and non-pedestrian classes;
    MOT15 files (7 or 10 columns: a confidence and world coordinates follow) keep every row.
    """
    folder = Path(folder)
    info = configparser.ConfigParser()
    ini = folder / "seqinfo.ini"
    if ini.is_file():
        info.read(ini)
    im_dir = folder / (info.get("Sequence", "imDir", fallback="img1"))
    frames = sorted(p for p in im_dir.iterdir() if p.suffix in IMAGE_EXTS)
    fps = info.getfloat("Sequence", "frameRate", fallback=None)
    gt = np.loadtxt(folder / "gt" / "gt.txt", delimiter=",", ndmin=2)
    keep = np.ones(len(gt), bool)
    if gt.shape[1] == 9:  # MOT16/17
        keep &= gt[:, 6] != 0
        if pedestrians_only:
            keep &= np.isin(gt[:, 7], (1,))
    gt = gt[keep]
    out = []
    for tid in np.unique(gt[:, 1]).astype(int):
        rows = gt[gt[:, 1] == tid]
        f = rows[:, 0].astype(int) - 1
        first, last = f.min(), min(f.max(), len(frames) - 1)
        if last - first + 1 < min_length:
            continue
        boxes = np.full((last - first + 1, 4), np.nan)
        ok = f <= last
        boxes[f[ok] - first] = rows[ok, 2:6] - np.array([1.0, 1.0, 0.0, 0.0])
        sub = frames[first : last + 1]
        out.append(Sequence(f"{folder.name}/track{tid}", boxes, lambda i, sub=sub: _imread_rgb(sub[i]),
                            len(sub), fps, {"mot": folder.name, "track": int(tid), "first_frame": int(first)}))
    return out


def _read_entry(path: Path, one_based: bool = False) -> list[Sequence]:
    if path.is_dir() and (path / "gt" / "gt.txt").is_file():
        return read_mot_tracks(path)
    if path.is_dir():
        return [read_folder_sequence(path, one_based)]
    if path.suffix.lower() in VIDEO_EXTS:
        return [read_video_sequence(path)]
    raise ValueError(f"don't know how to read {path}: expected a sequence folder, a MOT folder or a video file")


def find_sequences(root: str | Path, max_depth: int = 3) -> list[Path]:
    """Every readable entry below ``root``: GOT-10k folders, MOT folders, videos with a box file.

    Walks folders only (never lists the frames of a sequence folder it has recognised), so a
    GOT-10k root with thousands of sequences is found quickly. A GOT-10k ``list.txt`` in ``root``
    is used as is."""
    root = Path(root)
    listing = root / "list.txt"
    if listing.is_file():
        return [root / n.strip() for n in listing.read_text().splitlines() if n.strip()]
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        if (folder / "groundtruth.txt").is_file() or (folder / "gt" / "gt.txt").is_file():
            found.append(folder)
            return
        if depth >= max_depth:
            return
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.is_dir() and not e.name.startswith("."):
                walk(Path(e.path), depth + 1)
            elif Path(e.name).suffix.lower() in VIDEO_EXTS and Path(e.path).with_suffix(".txt").is_file():
                found.append(Path(e.path))

    walk(root, 0)
    return found


def read_sequences(root: str | Path | None = None, split: str | Path | None = None,
                   one_based: bool = False) -> list[Sequence]:
    """All sequences listed in ``split`` (paths relative to ``root``), or every one found below root.

    ``split`` may be a file path or the name of a file in ``root/splits`` (``"train"`` -> train.txt).
    ``one_based=True`` for sequence folders whose box files are 1-based (MOT files are always
    converted; video box files are read as 0-based).
    """
    root = Path(root) if root is not None else default_data_root()
    if not root.is_dir():
        raise FileNotFoundError(
            f"data root {root} does not exist; pass --data DIR or set ${DATA_ENV}")
    if split is None:
        entries = find_sequences(root)
    else:
        split_path = Path(split)
        if not split_path.is_file():
            named = root / "splits" / f"{split}.txt"
            if not named.is_file():
                raise FileNotFoundError(f"split {split!r} is neither a file nor {named}")
            split_path = named
        entries = [root / line.strip() for line in split_path.read_text().splitlines()
                   if line.strip() and not line.startswith("#")]
    seqs: list[Sequence] = []
    for e in entries:
        seqs.extend(_read_entry(e, one_based))
    return seqs
