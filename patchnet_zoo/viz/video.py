"""Write annotated videos: RGB frames in, an ``.mp4`` (``mp4v``) file out.

OpenCV wants BGR and one fixed frame size, and silently drops frames of another size; this wrapper
converts RGB to BGR at the boundary, resizes frames of another size to the first frame's size,
and falls back to Motion-JPEG in an ``.avi`` container when no ``mp4v`` encoder opens.
"""
from __future__ import annotations

import warnings
from pathlib import Path

__all__ = ["VideoWriter", "write_video"]


class VideoWriter:
    """``with VideoWriter("out.mp4", fps=25) as w: w.write(rgb_frame)``.

    The file is opened on the first ``write`` (its size fixes the video size). ``path`` is the file
    actually written: the ``.avi`` fallback when the mp4 encoder could not be opened.

    Args:
        path: output file; a suffix other than ``.mp4``/``.avi`` is replaced by ``.mp4``.
        fps: frames per second (non-positive or unknown values become 25).
        fourcc: four-character code for ``.mp4`` (default ``mp4v``).
    """

    def __init__(self, path, fps: float | None = 25.0, fourcc: str = "mp4v"):
        path = Path(path)
        if path.suffix.lower() not in (".mp4", ".avi"):
            path = path.with_suffix(".mp4")
        self.path = path
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.fourcc = fourcc
        self.size: tuple[int, int] | None = None  # (W, H)
        self.frames_written = 0
        self._writer = None
        self._source_size: tuple[int, int] | None = None
        self._closed = False

    # ------------------------------------------------------------------------------------ opening
    def _open(self, size: tuple[int, int]) -> None:
        import cv2

        self.path.parent.mkdir(parents=True, exist_ok=True)
        attempts = []
        if self.path.suffix.lower() == ".mp4":
            attempts.append((self.path, self.fourcc))
        attempts.append((self.path.with_suffix(".avi"), "MJPG"))
        for path, code in attempts:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*code), self.fps, size)
            if writer.isOpened():
                if path != self.path:
                    warnings.warn(f"cannot open a {self.fourcc!r} writer for {self.path}; writing "
                                  f"Motion-JPEG to {path} instead", stacklevel=3)
                self._writer, self.path, self.size = writer, path, size
                return
            writer.release()
        raise OSError(f"cannot open a video writer for {self.path} (tried {[c for _, c in attempts]})")

    # ------------------------------------------------------------------------------------ writing
    def write(self, frame) -> None:
        """Append one RGB frame (anything ``geometry.to_frame_tensor`` accepts)."""
        import cv2

        from .draw import as_rgb_uint8

        if self._closed:
            raise RuntimeError(f"{self.path} is already closed")
        img = as_rgb_uint8(frame)
        h, w = img.shape[:2]
        if self._writer is None:
            # most codecs want even sizes; pad by one pixel rather than lose a row
            self._source_size = (w, h)
            self._open((w + (w % 2), h + (h % 2)))
        if (w, h) != self.size:
            if (w, h) == self._source_size:  # the odd-size padding
                img = cv2.copyMakeBorder(img, 0, self.size[1] - h, 0, self.size[0] - w, cv2.BORDER_REPLICATE)
            else:
                img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def close(self) -> Path:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._closed = True
        return self.path

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            if self._writer is not None:
                self._writer.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def write_video(path, frames, fps: float | None = 25.0) -> Path:
    """Write an iterable of RGB frames; returns the path actually written."""
    with VideoWriter(path, fps) as w:
        for f in frames:
            w.write(f)
    if w.frames_written == 0:
        raise ValueError("no frames to write")
    return w.path

