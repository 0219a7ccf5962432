"""From eval.py's flags to a predictor of the config's family (eval.py and ``--compare``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from yolact.backends.meta import exported_format
from yolact.cli.eval_args import EvalOptions
from yolact.core.predictor import Predictor
from yolact.data.scenes import synthetic_frames
from yolact.inference.frames import folder_frames, image_frames, video_frames
from yolact.io.sources import split_in_out
from yolact.registry import build_predictor as build_family_predictor
from yolact.registry import resolve_config
from yolact.runtime.device import select_device
from yolact.runtime.gpu import GpuOptionError, check_gpu_options

Flags = EvalOptions | argparse.Namespace
"""eval.py's flags: typed options, or a namespace (``--compare`` changes copies of it)."""


class UsageError(ValueError):
    """Flags that do not make sense together."""


def device_from_args(args: Flags) -> str | None:
    if args.device:
        return args.device
    if args.cuda is None:
        return None
    return "cuda" if args.cuda else "cpu"


def _dataset_classes(args: Flags) -> tuple[tuple[str, ...] | None, str]:
    """The class names of ``--val_ann`` (categories in id order) and its file name."""
    if not args.val_ann or args.trained_model is None:
        return None, ""
    from yolact.data.coco import _load_json

    cats = sorted(_load_json(args.val_ann).get("categories", []), key=lambda c: c["id"])
    names = tuple(str(c["name"]) for c in cats)
    return names or None, os.path.basename(args.val_ann)


def build_predictor(
    args: Flags,
    keep_all: bool = False,
    class_names: Sequence[str] | None = None,
    class_source: str = "the dataset",
) -> Predictor:
    """Model, weights and post-processing settings from the flags.

    ``--config`` gives the architecture, the file its classes; ``class_names``
    (default: ``--val_ann``'s categories) name the classes of a file that stores
    none, and must agree with those of a file that does.

    The config's family (named, stored in the file or implied by its layout) gives
    the predictor; ``--fast_nms``, ``--cross_class_nms`` and ``--no_crop`` have no
    effect where the family has no such step (the Mask R-CNN reference).
    """
    if args.trained_model is None and not (args.benchmark and args.config):
        raise UsageError("give --trained_model (or --config with --benchmark for random weights)")
    try:
        device = select_device(device_from_args(args))
        check_gpu_options(device, half=args.half, cuda_graph=args.cuda_graph)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if class_names is None:
        class_names, name = _dataset_classes(args)
        class_source = name or class_source
    cfg, ckpt = resolve_config(args.trained_model, args.config, class_names, class_source)
    on_dataset = dataset_mode(args)  # COCO evaluation keeps every detection
    every_score = keep_all or on_dataset  # AP needs every detection, whatever its score
    # Files keep every detection; a tracker needs the low-scored ones too (ByteTrack).
    tracked = getattr(args, "track", False) or getattr(args, "output_mots", None) is not None
    keep_all = keep_all or args.output_json is not None or tracked or on_dataset
    if ckpt is None and not exported_format(args.trained_model or ""):
        print(f"note: {cfg.name} with random weights (timing only)", file=sys.stderr)
    methods = {True: "cross_class", False: "fast" if args.fast_nms else "standard"}
    # An exported file's runtime: --backends=tensorrt requires TensorRT, onnxruntime leaves it out.
    extra = {"tensorrt": args.tensorrt} if exported_format(args.trained_model or "") else {}
    try:
        return build_family_predictor(
            cfg,
            ckpt,
            device=device,
            source=args.trained_model or "checkpoint",
            score_threshold=0.0 if every_score else args.score_threshold,
            top_k=None if keep_all else max(args.top_k, 0),
            nms_method=methods[bool(args.cross_class_nms)],
            crop=args.crop,
            masks=args.display_masks or keep_all,
            half=args.half,
            cuda_graph=args.cuda_graph,
            channels_last=args.channels_last,
            **extra,
        )
    except GpuOptionError as e:
        raise UsageError(str(e)) from None


def benchmark_frames(args: Flags, count: int) -> list:
    """``count`` frames from ``--image``, ``--images`` or ``--video`` (else synthetic ones)."""
    if args.image:
        return image_frames(split_in_out(args.image)[0], count)
    if args.images:
        return folder_frames(split_in_out(args.images)[0], count)
    if args.video:
        return video_frames(split_in_out(args.video)[0], count)
    return synthetic_frames(count, seed=args.seed or 0)


def dataset_mode(args: Flags) -> bool:
    no_input = not (args.image or args.images or args.video or args.benchmark)
    return no_input and bool(args.dataset or args.val_ann or args.val_images)
