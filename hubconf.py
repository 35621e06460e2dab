"""torch.hub entrypoints: ``torch.hub.load("<org>/patchnet_zoo", "patchnet", pretrained=True)``.

Thin on purpose: each builder imports what it needs when called, so a missing optional package
is explained by the builder that needs it instead of breaking ``torch.hub.list``.
"""
dependencies = ["torch", "torchvision", "numpy", "safetensors", "huggingface_hub"]


def patchnet(pretrained: bool = True, tag: str = "shared_train", **kwargs):
    """PatchNet, the 58-MFLOP short-range template matcher (Mao et al.), as a plain ``nn.Module``.

    Args:
        pretrained: load the weights shipped in the package (sha256-checked, strict).
        tag: which checkpoint of the ``patchnet`` architecture (``list_models(pretrained=True)``).
        **kwargs: ``PatchNet`` arguments for an untrained model (e.g. ``fourier=False``).
    """
    from patchnet_zoo.registry import create_model

    return create_model(f"patchnet.{tag}" if pretrained else "patchnet", pretrained=pretrained, **kwargs)


def patchnet_k4(pretrained: bool = True, **kwargs):
    """PatchNet with 4x4-pixel patches (32-px template): half the multiply-accumulates of ``patchnet``
    per match, for inter-frame steps where speed matters most (docs/results/tracking.md)."""
    from patchnet_zoo.registry import create_model

    return create_model("patchnet_k4", pretrained=pretrained, **kwargs)


def patchnet_zero_mean(pretrained: bool = True, patch_size: int = 8, **kwargs):
    """PatchNet whose patch correlations are zero-mean normalised (each filter and search window
    about its own colour; docs/design.md, "Zero-mean patches"): ``patch_size`` 8 (the paper's
    geometry) or 4 (the K4 geometry)."""
    from patchnet_zoo.registry import create_model

    if patch_size not in (4, 8):
        raise ValueError(f"patch_size must be 8 or 4 for the shipped zero-mean weights, got {patch_size}")
    arch = "patchnet_zero_mean" if patch_size == 8 else "patchnet_k4_zero_mean"
    return create_model(arch, pretrained=pretrained, **kwargs)


def patchnet_tracker(pretrained: bool = True, **kwargs):
    """PatchNet alone as a short-term single-object tracker: ``init(rgb, (x, y, w, h))``,
    ``update(rgb) -> (x, y, w, h)``. ``kwargs`` go to ``PatchNetTracker``."""
    from patchnet_zoo.trackers.patchnet_tracker import PatchNetTracker

    return PatchNetTracker(patchnet(pretrained=pretrained), **kwargs)


def skip_frame_tracker(base: str = "nanotrack", key_frame_interval: int = 4, conf_threshold: float = 0.8, **kwargs):
    """A base tracker (``nanotrack``, ``csrt``, ``kcf``, ``mosse``) run on key frames only, PatchNet in
    between, with the paper's confidence fallback. NanoTrack needs its ONNX files (see
    ``patchnet_zoo.trackers.opencv_trackers``)."""
    from patchnet_zoo.accel import SkipFrameTracker
    from patchnet_zoo.trackers.opencv_trackers import make_base_tracker

    return SkipFrameTracker(make_base_tracker(base), key_frame_interval=key_frame_interval,
                            conf_threshold=conf_threshold, **kwargs)


def gated_tracker(policy: str = "hard", pretrained: bool = True, **kwargs):
    """The adaptive-depth gated Siamese tracker (MobileNetV2, five depths, learned early exit) as a
    single-object tracker: ``init(rgb, (x, y, w, h))``, ``update(rgb) -> (x, y, w, h)``; also a base
    tracker for ``skip_frame_tracker(base="gated")``.

    Args:
        policy: ``hard`` (stop at the first confident depth; ``hard0.4`` sets the threshold),
            ``soft`` or ``fixed1`` .. ``fixed5``.
        pretrained: the weights shipped in the package (sha256-checked, strict); ``False`` builds an
            ImageNet-initialised, gate-untrained model (needs the MobileNetV2 ImageNet file).
        **kwargs: ``GatedTracker`` options (``scale_step``, ``window``...).

    ``tracker.last_depth`` is the exit depth of the last frame, ``tracker.gflops_per_frame`` the mean
    GMACs per update so far.
    """
    from patchnet_zoo.trackers.gated_tracker import GatedTracker, load_gated_model, parse_policy

    if pretrained:
        model = load_gated_model()
    else:
        from patchnet_zoo.models.gated_siamese import GatedSiameseTracker

        model = GatedSiameseTracker()
    return GatedTracker(model, **{**parse_policy(policy), **kwargs})


def skip_frame_detector(detector="fastestdet", key_frame_interval: int = 5, policy: str = "fixed", **kwargs):
    """Any detector run on key frames only, PatchNet carrying every box (class and score kept) between.

    Args:
        detector: a spec (``fastestdet`` = FastestDet from ``$PATCHNET_ZOO_WEIGHTS`` or
            ``../shared/weights``; ``onnx:PATH``, ``effdet:NAME[:CHECKPOINT]``, ``torchvision:NAME[:WEIGHTS]``,
            ``python:MODULE:FUNCTION``), or a detector object (effdet bench, torchvision model, callable).
        key_frame_interval: the detector runs every N frames (``policy="adaptive"``: at most every N).
        **kwargs: ``SkipFrameDetector`` options (``inter``, ``boundary``, ``response_size``,
            ``track_ids=True`` for an identity per box...).

    Call ``reset()`` at the start of every video; ``det(rgb_frame)`` returns ``Detections``.
    """
    from patchnet_zoo.accel import SkipFrameDetector

    return SkipFrameDetector(detector, key_frame_interval=key_frame_interval, policy=policy, **kwargs)
