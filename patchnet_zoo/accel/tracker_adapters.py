"""Fit any single-object tracker into one interface: ``init(image, box)`` / ``update(image) -> box``.

Inside the package a single-object tracker is a ``SingleObjectTracker``: frames are RGB ``HxWx3``
arrays, boxes are ``x, y, w, h`` in pixels, 0-based (``[x, x + w) x [y, y + h)``), and ``update``
returns a float64 numpy array of 4. A tracker that knows when it has lost the target says so with
``ok = False`` after that ``update`` (OpenCV's trackers do; their box is then the last one, or NaN
with ``on_lost="nan"``). A box of NaN means "no answer"; the OTB evaluation scores it as a miss.
``SkipFrameTracker`` treats both as a failure of the base tracker.

``adapt_tracker(obj)`` recognises the common conventions and wraps them:

========================  ====================================================================
convention                what the object has
========================  ====================================================================
``SingleObjectTracker``   returned as it is
OpenCV (``cv2.Tracker``,  ``init(image, rect)`` / ``update(image) -> (ok, rect)``; BGR frames,
``cv2.legacy.Tracker``)   integer rectangles (``OpenCVAdapter``)
pytracking                ``initialize(image, {"init_bbox": [x, y, w, h]})`` /
                          ``track(image) -> {"target_bbox": [x, y, w, h], ...}``; RGB frames
                          (``PytrackingAdapter``)
got10k                    ``init(image, box)`` / ``update(image) -> box`` (``Got10kAdapter``)
pysot                     ``init(image, bbox)`` / ``track(image) -> {"bbox": [x, y, w, h], ...}``;
                          BGR frames, as pysot reads them with OpenCV (``PysotAdapter``)
callable                  ``f(image, box)`` on the first frame, ``f(image, None) -> box`` after
                          (``CallableAdapter``)
a string                  a tracker by name, ``make_base_tracker`` (``"nanotrack"``, ``"kcf"``...)
========================  ====================================================================

The order matters where an object fits more than one row: got10k's ``Tracker`` base class also has
a ``track`` method, so ``init`` + ``update`` is read as got10k before ``init`` + ``track`` is read
as pysot.

Every adapter takes ``channel_order`` (``"rgb"`` or ``"bgr"``: what the wrapped tracker wants; the
adapter converts the RGB frame it is given), ``box_format`` (``"xywh"``, ``"xyxy"`` or ``"cxcywh"``:
what the wrapped tracker speaks) and ``one_based`` (``True`` for trackers that count pixels from 1,
as the OTB toolkit does), so the conversions happen here, at the boundary, and nowhere else.
"""
from __future__ import annotations

import inspect
import sys
from typing import Any, Callable

import numpy as np

__all__ = [
    "SingleObjectTracker",
    "Got10kAdapter",
    "PysotAdapter",
    "PytrackingAdapter",
    "OpenCVAdapter",
    "CallableAdapter",
    "adapt_tracker",
    "convert_box",
    "BOX_FORMATS",
]

BOX_FORMATS = ("xywh", "xyxy", "cxcywh")
CHANNEL_ORDERS = ("rgb", "bgr")


# ------------------------------------------------------------------------------------- boxes
def convert_box(box, src: str = "xywh", dst: str = "xywh", *, one_based_src: bool = False,
                one_based_dst: bool = False) -> np.ndarray:
    """Convert one box between ``xywh`` / ``xyxy`` / ``cxcywh`` and 0- / 1-based pixel indices.

    ``xyxy`` is ``(x0, y0, x1, y1)`` with ``x1 = x0 + w`` (exclusive corner, continuous coordinates);
    ``cxcywh`` has the centre at ``x + w / 2``. 1-based boxes have their corner 1 pixel further
    (``x_1based = x_0based + 1``), sizes unchanged. Returns float64 ``(4,)``; NaN stays NaN.
    """
    for f in (src, dst):
        if f not in BOX_FORMATS:
            raise ValueError(f"box format must be one of {BOX_FORMATS}, got {f!r}")
    b = _as_four(box)
    if src == "xyxy":
        b = np.array([b[0], b[1], b[2] - b[0], b[3] - b[1]])
    elif src == "cxcywh":
        b = np.array([b[0] - b[2] / 2, b[1] - b[3] / 2, b[2], b[3]])
    if one_based_src:
        b = b - np.array([1.0, 1.0, 0.0, 0.0])
    # b is xywh 0-based here
    if one_based_dst:
        b = b + np.array([1.0, 1.0, 0.0, 0.0])
    if dst == "xyxy":
        b = np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]])
    elif dst == "cxcywh":
        b = np.array([b[0] + b[2] / 2, b[1] + b[3] / 2, b[2], b[3]])
    return b.astype(np.float64)


def _as_four(box) -> np.ndarray:
    """Anything holding 4 numbers (list, tuple, numpy, torch, ``cv2`` rect) as float64 ``(4,)``."""
    if hasattr(box, "detach"):  # a torch tensor, without importing torch here
        box = box.detach().cpu().numpy()
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"a box is 4 numbers; got {box!r} ({e})") from e
    if b.shape != (4,):
        raise ValueError(f"a box is 4 numbers; got shape {np.shape(box)}: {box!r}")
    return b


def _check_init_box(box) -> np.ndarray:
    b = _as_four(box)
    if not np.isfinite(b).all() or b[2] <= 0 or b[3] <= 0:
        raise ValueError(f"init box must be finite x,y,w,h with positive width and height; got {b.tolist()}")
    return b


# ------------------------------------------------------------------------------------ frames
def _prepare_frame(image, channel_order: str) -> np.ndarray:
    """An RGB frame as a contiguous HxWx3 uint8 array in the wrapped tracker's channel order."""
    from ..baselines import _as_frame  # gray -> 3 channels, RGBA -> RGB, float -> uint8

    if hasattr(image, "detach"):  # torch: CxHxW or HxWxC
        image = image.detach().cpu()
        if image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[-1] not in (1, 3, 4):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    f = np.asarray(image)
    if f.ndim == 3 and f.shape[2] == 1:
        f = f[:, :, 0]
    f = np.ascontiguousarray(_as_frame(f))
    if channel_order == "bgr":
        try:
            import cv2  # 3-4x faster than a numpy copy with reversed channel strides
        except ImportError:
            return np.ascontiguousarray(f[:, :, ::-1])
        return cv2.cvtColor(f, cv2.COLOR_RGB2BGR)
    return f


def accepts_keyword(fn: Callable, name: str) -> bool:
    """Whether ``fn`` can be called with the keyword argument ``name`` (False where its signature
    cannot be read, e.g. some built-ins)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any((p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) or p.kind == p.VAR_KEYWORD
               for p in params)


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"{what} must be one of {choices}, got {value!r}")
    return value


# ------------------------------------------------------------------------------------- base
class SingleObjectTracker:
    """The interface every base tracker has inside the package (got10k convention).

    Attributes:
        name: a short name for tables and logs.
        gflops_per_frame: cost of one ``update`` in G multiply-accumulates (the paper's "FLOPs"
            convention, as everywhere in this package: 1 MAC = 2 FLOPs), or ``None`` when not
            counted.
        ok: ``False`` when the last ``update`` reported that the target was lost (trackers that
            cannot tell leave it ``True``).
    """

    name: str = "tracker"
    gflops_per_frame: float | None = None
    ok: bool = True

    def init(self, image, box) -> None:
        """Start tracking ``box`` (x, y, w, h, 0-based pixels) in ``image`` (RGB HxWx3)."""
        raise NotImplementedError

    def update(self, image) -> np.ndarray:
        """Track into ``image`` (RGB); returns float64 ``(4,)`` x, y, w, h (NaN = no answer)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class _ConventionAdapter(SingleObjectTracker):
    """Shared plumbing: frame channel order and box format conversions around a wrapped object."""

    default_channel_order = "rgb"

    def __init__(self, tracker, name: str | None = None, channel_order: str | None = None,
                 box_format: str = "xywh", one_based: bool = False, gflops_per_frame: float | None = None):
        self.tracker = tracker
        self.channel_order = _check_choice(channel_order or self.default_channel_order, CHANNEL_ORDERS,
                                           "channel_order")
        self.box_format = _check_choice(box_format, BOX_FORMATS, "box_format")
        self.one_based = bool(one_based)
        self.name = name or getattr(tracker, "name", None) or type(tracker).__name__
        if gflops_per_frame is None:
            gflops_per_frame = getattr(tracker, "gflops_per_frame", None)
        self.gflops_per_frame = gflops_per_frame
        self.score: float | None = None  # the tracker's own score of the last update, where it has one
        if callable(getattr(tracker, "relocate", None)):
            # a tracker that can move its search state: SkipFrameTracker hands it PatchNet's estimate
            self.relocate = self._relocate_passthrough
        self._relocate_takes_frames = accepts_keyword(getattr(tracker, "relocate", None), "frames")

    def _relocate_passthrough(self, box, frames: int = 1) -> None:
        if frames != 1 and self._relocate_takes_frames:
            self.tracker.relocate(self._box_out(box), frames=frames)
        else:
            self.tracker.relocate(self._box_out(box))

    def _frame(self, image) -> np.ndarray:
        return _prepare_frame(image, self.channel_order)

    def _box_out(self, box) -> list[float]:
        """Our x,y,w,h 0-based -> the wrapped tracker's format, as a plain list."""
        b = convert_box(_check_init_box(box), "xywh", self.box_format, one_based_dst=self.one_based)
        return [float(v) for v in b]

    def _box_in(self, box) -> np.ndarray:
        """The wrapped tracker's answer -> our x,y,w,h 0-based float64 (4,)."""
        return convert_box(box, self.box_format, "xywh", one_based_src=self.one_based)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.tracker!r}, name={self.name!r}, channel_order={self.channel_order!r}, "
                f"box_format={self.box_format!r}, one_based={self.one_based})")


# ------------------------------------------------------------------------------- conventions
class Got10kAdapter(_ConventionAdapter):
    """got10k toolkit convention: ``init(image, box)`` / ``update(image) -> box`` (RGB frames)."""

    def init(self, image, box) -> None:
        self.tracker.init(self._frame(image), self._box_out(box))

    def update(self, image) -> np.ndarray:
        box = self._box_in(self.tracker.update(self._frame(image)))
        self.score = _float_or_none(getattr(self.tracker, "confidence", None))
        return box


class PysotAdapter(_ConventionAdapter):
    """pysot convention: ``init(image, bbox)`` / ``track(image) -> {"bbox": [x, y, w, h], ...}``.

    pysot reads frames with OpenCV, so its models expect BGR: ``channel_order="bgr"`` by default.
    ``score`` holds the output's ``best_score`` when there is one.
    """

    default_channel_order = "bgr"

    def init(self, image, box) -> None:
        self.tracker.init(self._frame(image), self._box_out(box))

    def relocate(self, box, frames: int = 1) -> None:
        """Move a pysot tracker's search state (``center_pos``, ``size``, set by its ``init``) to
        ``box`` (x,y,w,h 0-based), keeping its template; a tracker without that state is left alone
        (``frames`` is passed on to a tracker's own ``relocate`` that takes it, else unused)."""
        t = self.tracker
        if callable(getattr(t, "relocate", None)):
            return self._relocate_passthrough(box, frames)
        if getattr(t, "center_pos", None) is None or getattr(t, "size", None) is None:
            return
        b = np.asarray(box, dtype=np.float64).reshape(4)
        if not np.isfinite(b).all() or b[2] <= 0 or b[3] <= 0:
            return
        # pysot's centre of a box x,y,w,h is x + (w - 1) / 2
        t.center_pos = np.array([b[0] + (b[2] - 1) / 2, b[1] + (b[3] - 1) / 2])
        t.size = np.array([b[2], b[3]])

    def update(self, image) -> np.ndarray:
        out = self.tracker.track(self._frame(image))
        if not isinstance(out, dict) or "bbox" not in out:
            raise ValueError(f"a pysot tracker's track() returns a dict with 'bbox'; got {out!r}")
        self.score = _float_or_none(out.get("best_score"))
        return self._box_in(out["bbox"])


class PytrackingAdapter(_ConventionAdapter):
    """pytracking convention: ``initialize(image, {"init_bbox": [x, y, w, h]})`` /
    ``track(image) -> {"target_bbox": [x, y, w, h], ...}`` (RGB frames, as pytracking reads them)."""

    def init(self, image, box) -> None:
        self.tracker.initialize(self._frame(image), {"init_bbox": self._box_out(box)})

    def update(self, image) -> np.ndarray:
        out = self.tracker.track(self._frame(image))
        if not isinstance(out, dict) or "target_bbox" not in out:
            raise ValueError(f"a pytracking tracker's track() returns a dict with 'target_bbox'; got {out!r}")
        self.score = _float_or_none(out.get("score", out.get("confidence")))
        return self._box_in(out["target_bbox"])


class CallableAdapter(_ConventionAdapter):
    """Any callable ``f(image, box_or_None) -> box``: called with the init box on the first frame
    (its answer is ignored) and with ``None`` on every later frame, where it returns the box."""

    def __init__(self, fn: Callable, name: str | None = None, channel_order: str | None = None,
                 box_format: str = "xywh", one_based: bool = False, gflops_per_frame: float | None = None):
        if not callable(fn):
            raise TypeError(f"CallableAdapter needs a callable, got {type(fn).__name__}")
        name = name or getattr(fn, "name", None) or getattr(fn, "__name__", None) or type(fn).__name__
        super().__init__(fn, name, channel_order, box_format, one_based, gflops_per_frame)

    def init(self, image, box) -> None:
        self.tracker(self._frame(image), self._box_out(box))

    def update(self, image) -> np.ndarray:
        return self._box_in(self.tracker(self._frame(image), None))


class OpenCVAdapter(_ConventionAdapter):
    """An OpenCV tracker (``cv2.Tracker`` or ``cv2.legacy.Tracker``): ``init(image, rect)`` /
    ``update(image) -> (ok, rect)``.

    Args:
        tracker: a tracker instance, or a zero-argument factory (``cv2.TrackerCSRT_create``, or a
            ``lambda`` that sets parameters). With a factory every ``init`` starts a fresh tracker;
            an instance is re-initialised in place.
        prime: after ``init``, give the tracker one ``update`` on the init frame. OpenCV's KCF (and
            MOSSE) otherwise answer the first ``update`` from a model that has not yet absorbed the
            initial appearance and lag one frame behind.
        channel_order: what the tracker is fed; OpenCV's convention is ``"bgr"``.
        on_lost: what ``update`` returns when the tracker reports failure (``ok == False``):
            ``"hold"`` (the last box; the default, and what the reference per-frame figures of
            KCF and MOSSE were measured with), ``"nan"`` (a NaN box: no answer) or ``"raise"``
            (``RuntimeError``). ``ok`` is set to ``False`` in every case.

    OpenCV's trackers take and return integer rectangles. The init box is rounded to whole pixels
    and the sub-pixel remainder is added back to every answer, so an exact (sub-pixel) init box
    comes back unchanged while the tracker does not move or rescale it; a size the tracker changed
    is taken as it comes.
    """

    default_channel_order = "bgr"

    def __init__(self, tracker, name: str | None = None, prime: bool = False, channel_order: str | None = None,
                 on_lost: str = "hold", gflops_per_frame: float | None = None):
        self._factory = tracker if _is_factory(tracker) else None
        instance = None if self._factory is not None else tracker
        if name is None:
            probe = instance if instance is not None else tracker
            name = getattr(probe, "__name__", None) or type(probe).__name__
            name = name.replace("_create", "").replace("legacy_", "")
        super().__init__(instance, name, channel_order, "xywh", False, gflops_per_frame)
        self.prime = bool(prime)
        self.on_lost = _check_choice(on_lost, ("nan", "hold", "raise"), "on_lost")
        self.ok: bool = True  # the tracker's own success flag for the last update
        self._residual = np.zeros(4)
        self._rect_size = np.zeros(2)
        self._last = np.full(4, np.nan)

    def init(self, image, box) -> None:
        b = _check_init_box(box)
        frame = self._frame(image)
        if self._factory is not None:
            self.tracker = self._factory()
        x0, y0 = int(round(b[0])), int(round(b[1]))
        w, h = max(1, int(round(b[2]))), max(1, int(round(b[3])))
        self.tracker.init(frame, (x0, y0, w, h))
        self._residual = b - np.array([x0, y0, w, h], dtype=np.float64)
        self._rect_size = np.array([w, h], dtype=np.float64)
        self._last = b.copy()
        self.ok = True
        if self.prime:
            self.tracker.update(frame)

    def update(self, image) -> np.ndarray:
        if self.tracker is None:
            raise RuntimeError("call init(image, box) before update(image)")
        ok, rect = self.tracker.update(self._frame(image))
        self.ok = bool(ok)
        if not ok:
            if self.on_lost == "raise":
                raise RuntimeError(f"{self.name} lost the target")
            return self._last.copy() if self.on_lost == "hold" else np.full(4, np.nan)
        r = _as_four(rect)
        box = r.copy()
        box[:2] += self._residual[:2]
        if np.array_equal(r[2:], self._rect_size):  # size untouched: keep the exact init size
            box[2:] += self._residual[2:]
        self._last = box
        self.score = self._tracking_score()
        return box.copy()

    def _tracking_score(self) -> float | None:
        get = getattr(self.tracker, "getTrackingScore", None)
        if get is None:
            return None
        try:
            return float(get())
        except Exception:  # noqa: BLE001 - a missing score is not an error
            return None

    def __repr__(self) -> str:
        return f"OpenCVAdapter(name={self.name!r}, prime={self.prime}, channel_order={self.channel_order!r})"


def _is_factory(obj) -> bool:
    """A zero-argument callable that makes trackers (a class, a ``*_create`` function, a lambda),
    as opposed to a tracker instance."""
    if isinstance(obj, type):
        return True
    return callable(obj) and not (hasattr(obj, "init") and hasattr(obj, "update"))


def _float_or_none(v) -> float | None:
    if v is None:
        return None
    try:
        return float(np.asarray(v, dtype=np.float64).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None


def _is_opencv_tracker(obj) -> bool:
    module = type(obj).__module__ or ""
    if module == "cv2" or module.startswith("cv2."):
        return hasattr(obj, "init") and hasattr(obj, "update")
    cv2 = sys.modules.get("cv2")  # only when OpenCV is already loaded; never import it here
    if cv2 is None:
        return False
    bases = tuple(c for c in (getattr(cv2, "Tracker", None), getattr(getattr(cv2, "legacy", None), "Tracker", None))
                  if isinstance(c, type))
    return bool(bases) and isinstance(obj, bases)


# ------------------------------------------------------------------------------ auto-detection
def adapt_tracker(obj: Any, **kwargs) -> SingleObjectTracker:
    """Wrap ``obj`` in the adapter for its convention (see the module docstring).

    ``kwargs`` go to the adapter (``name``, ``channel_order``, ``box_format``, ``one_based``, ...);
    a ``SingleObjectTracker`` is returned unchanged (``kwargs`` must then be empty), a string is
    built by ``patchnet_zoo.trackers.opencv_trackers.make_base_tracker(obj, **kwargs)``.
    """
    if isinstance(obj, SingleObjectTracker):
        if kwargs:
            raise TypeError(f"{obj!r} is already a SingleObjectTracker; adapter options {sorted(kwargs)} do not apply")
        return obj
    if isinstance(obj, str):
        from ..trackers.opencv_trackers import make_base_tracker

        return make_base_tracker(obj, **kwargs)
    if _is_opencv_tracker(obj):
        return OpenCVAdapter(obj, **kwargs)
    if callable(getattr(obj, "initialize", None)) and callable(getattr(obj, "track", None)):
        return PytrackingAdapter(obj, **kwargs)
    if callable(getattr(obj, "init", None)) and callable(getattr(obj, "update", None)):
        return Got10kAdapter(obj, **kwargs)
    if callable(getattr(obj, "init", None)) and callable(getattr(obj, "track", None)):
        return PysotAdapter(obj, **kwargs)
    if callable(obj):
        return CallableAdapter(obj, **kwargs)
    raise TypeError(
        f"cannot adapt {type(obj).__name__}: expected an OpenCV tracker, a got10k tracker (init/update), "
        "a pysot tracker (init/track -> {'bbox'}), a pytracking tracker (initialize/track -> "
        "{'target_bbox'}), a callable f(image, box_or_None) -> box, or a tracker name"
    )
