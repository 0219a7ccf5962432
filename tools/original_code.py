"""The original YOLACT code (dbolya/yolact) run in this process, on the CPU, unedited.

Its CUDA calls at import and construction (``torch.cuda.current_device()``,
``.cuda()``, a CUDA default tensor type) are turned into no-ops while it loads
(:func:`cpu_shims`), and its top-level modules (``data``, ``layers``, ``utils``,
``backbone``) leave ``sys.modules`` again afterwards
(:func:`original_import_root`), so nothing else sees them. Nothing here is
imported by the package itself: ``tools/original_bench.py`` loads it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

# The original's top-level modules (the repository root is its import root).
ORIGINAL_MODULES = ("data", "layers", "utils", "backbone")
# The private name its yolact.py is loaded under (``yolact`` is this package).
ORIGINAL_MODEL_MODULE = "_original_yolact_model"


class OriginalCodeError(Exception):
    """The original checkout cannot be loaded or run (one line)."""


@dataclass
class FrameDetections:
    """One frame's detections, sorted by descending score.

    Attributes:
        boxes: [N, 4] pixel (x1, y1, x2, y2); classes: [N] 0-based; scores: [N];
        masks: [N, H, W] binary, or None.
    """

    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray | None = None


# One BGR uint8 frame [H, W, 3] -> that backend's own result (timed as a whole).
Runner = Callable[[np.ndarray], Any]


@contextlib.contextmanager
def cpu_shims() -> Iterator[None]:
    """While active, the original's CUDA calls do nothing, so it loads on the CPU.

    ``torch.cuda.current_device()`` returns 0, ``torch.cuda.device_count()`` 1
    (the original then builds its TorchScript modules, as on one GPU), the
    ``.cuda()`` of tensors and modules returns them unchanged, and a CUDA
    default tensor type is ignored. Everything is restored on exit.
    """

    def keep_tensor(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self

    def keep_module(self: nn.Module, *args: Any, **kwargs: Any) -> nn.Module:
        return self

    set_type = torch.set_default_tensor_type

    def cpu_default_type(t: Any) -> None:
        if "cuda" not in str(t):
            set_type(t)

    patches: list[tuple[Any, str, Any]] = [
        (torch.cuda, "current_device", lambda: 0),
        (torch.cuda, "device_count", lambda: 1),
        (torch.Tensor, "cuda", keep_tensor),
        (nn.Module, "cuda", keep_module),
        (torch, "set_default_tensor_type", cpu_default_type),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    try:
        for obj, name, value in patches:
            setattr(obj, name, value)
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


def _is_original_name(name: str) -> bool:
    return name == ORIGINAL_MODEL_MODULE or any(
        name == m or name.startswith(m + ".") for m in ORIGINAL_MODULES
    )


@contextlib.contextmanager
def original_import_root(repo: str) -> Iterator[dict[str, ModuleType]]:
    """Import from ``repo`` as the original's root; afterwards its modules leave
    ``sys.modules`` (yielded dict: collected on exit) and what they displaced is back."""
    displaced = {k: v for k, v in sys.modules.items() if _is_original_name(k)}
    for k in displaced:
        del sys.modules[k]
    path = list(sys.path)
    sys.path.insert(0, repo)
    importlib.invalidate_caches()
    loaded: dict[str, ModuleType] = {}
    try:
        yield loaded
    finally:
        for k in [k for k in sys.modules if _is_original_name(k)]:
            loaded[k] = sys.modules.pop(k)
        sys.modules.update(displaced)
        sys.path[:] = path


@dataclass
class OriginalCode:
    """The original's pieces for its evaluation path, built on the CPU.

    Attributes:
        net: its ``Yolact``, weights loaded, eval mode, Fast NMS.
        transform: its ``FastBaseTransform``.
        postprocess: its ``layers.output_utils.postprocess``.
        cfg: its global config object.
    """

    net: nn.Module
    transform: nn.Module
    postprocess: Callable[..., Any]
    cfg: Any
    modules: dict[str, ModuleType] = field(default_factory=dict, repr=False)


def is_original_checkout(repo: str) -> bool:
    """Whether ``repo`` looks like the original code's root."""
    return all(os.path.isfile(os.path.join(repo, p)) for p in ("yolact.py", "data/config.py"))


def not_a_checkout(repo: str) -> str:
    """The one-line message for a ``repo`` that :func:`is_original_checkout` rejects."""
    return f"{repo} is not a checkout of the original YOLACT (no yolact.py and data/config.py)"


def load_original(repo: str, config: str, weights: str) -> OriginalCode:
    """Import the original code from ``repo`` on the CPU and build ``config`` with ``weights``.

    Args:
        repo: the checkout's root (holding ``yolact.py`` and ``data/config.py``).
        config: a config name without ``_config`` ("yolact_base").
        weights: a checkpoint in the original layout.

    Raises:
        OriginalCodeError: not such a checkout, an unknown config, or a failure
            while loading, in one line.
    """
    if not is_original_checkout(repo):
        raise OriginalCodeError(not_a_checkout(repo))
    with (
        cpu_shims(),
        original_import_root(os.path.abspath(repo)) as modules,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            data_config = importlib.import_module("data.config")
            if not hasattr(data_config, f"{config}_config"):
                raise OriginalCodeError(f"the original code has no config '{config}_config'")
            data_config.set_cfg(f"{config}_config")
            data_config.cfg.mask_proto_debug = False  # as eval.py sets it
            spec = importlib.util.spec_from_file_location(
                ORIGINAL_MODEL_MODULE, os.path.join(repo, "yolact.py")
            )
            assert spec is not None and spec.loader is not None
            model_module = importlib.util.module_from_spec(spec)
            sys.modules[ORIGINAL_MODEL_MODULE] = model_module
            spec.loader.exec_module(model_module)
            net = model_module.Yolact()
            net.load_weights(weights)
            net.eval()
            net.detect.use_fast_nms = True  # eval.py's default --fast_nms=True
            net.detect.use_cross_class_nms = False
            transform = importlib.import_module("utils.augmentations").FastBaseTransform()
            postprocess = importlib.import_module("layers.output_utils").postprocess
        except OriginalCodeError:
            raise
        except Exception as e:  # noqa: BLE001 (its code raises anything)
            line = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise OriginalCodeError(
                f"the original code failed to load from {repo}: {type(e).__name__}: {line}"
            ) from None
    return OriginalCode(net, transform, postprocess, data_config.cfg, modules)


def original_runner(code: OriginalCode, top_k: int = 5, score_threshold: float = 0.0) -> Runner:
    """The original's ``eval.py`` display path for one BGR frame -> (classes, scores,
    boxes, masks) tensors: masks [N, H, W] of 0./1. at the frame size."""

    @torch.no_grad()
    def run(frame: np.ndarray) -> tuple[torch.Tensor, ...]:
        h, w = frame.shape[:2]
        img = torch.from_numpy(frame).float()
        preds = code.net(code.transform(img[None]))
        saved = getattr(code.cfg, "rescore_bbox", None)
        code.cfg.rescore_bbox = True  # as eval.py's prep_display
        try:
            classes, scores, boxes, masks = code.postprocess(
                preds, w, h, crop_masks=True, score_threshold=score_threshold
            )
        finally:
            code.cfg.rescore_bbox = saved
        idx = scores.argsort(0, descending=True)[:top_k]
        return classes[idx], scores[idx], boxes[idx], masks[idx]

    return run


def original_detections(out: tuple[torch.Tensor, ...]) -> FrameDetections:
    """The original runner's result as :class:`FrameDetections`."""
    classes, scores, boxes, masks = out
    if classes.numel() == 0:
        return FrameDetections(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0))
    return FrameDetections(
        boxes.float().numpy().reshape(-1, 4),
        classes.long().numpy(),
        scores.float().numpy(),
        masks.numpy() > 0.5,
    )


def write_original_weights(config: str, path: str, seed: int = 0) -> str:
    """Random weights for ``config`` written in the original key layout; returns ``path``.

    This project's initialisation (seeded), then the BatchNorm statistics of a
    forward pass over two synthetic frames, so that activations keep their scale
    through the random backbone, and the class layer scaled to logits of unit
    spread on those frames, so that scores stay finite and rarely tie.
    """
    from yolact.data.scenes import synthetic_frames
    from yolact.models.yolact.weights import save_weights
    from yolact.registry import family_of, get_config

    cfg = get_config(config)
    torch.manual_seed(seed)
    family = family_of(cfg)
    model = family.build_model(cfg, None, "random weights")
    batch = family.predictor_class(model, device="cpu").run_pre(
        synthetic_frames(2, 480, 640, seed=seed + 1)
    )
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the calibration pass
    model.train()
    with torch.no_grad():
        model(batch)
    for m in norms:
        m.momentum = 0.1
    model.eval()
    with torch.no_grad():
        conf = model(batch)["conf"]  # [B, P, C] logits
        layer = getattr(model, "prediction_layers")[0].conf_layer  # noqa: B009
        scale = 1.0 / max(float(conf.std()), 1e-6)
        layer.weight.mul_(scale)
        layer.bias.mul_(scale)
    save_weights(model, path)
    return path
