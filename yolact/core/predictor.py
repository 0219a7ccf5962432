"""The predictor interface every family implements, and device selection.

A predictor runs a model on BGR images in three stages that mean the same for
every family, so that they can be timed side by side (:mod:`yolact.apps.benchmark`):

- ``run_pre``: images (host, uint8) -> the network's input batch on the device;
- ``run_network``: batch -> raw detections at the model's resolution: the
  network, box decoding, every NMS, and masks at the model's own resolution
  (YOLACT's prototype resolution, Mask R-CNN's 28x28 mask head);
- ``run_post``: raw detections -> :class:`~yolact.core.structures.Detections`
  at the image size: boxes in image pixels, masks pasted into the image.

Every family's predictor takes the same keyword-only options (see
:class:`Predictor`); an option that does not apply to a family is accepted and
has no effect there (except ``cuda_graph``, which a predictor that cannot
capture its network refuses in one line).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, overload

import numpy as np
import torch
from torch import nn

from yolact.core.config import ModelConfig
from yolact.core.device import select_device
from yolact.core.family_base import FamilyBase as Family
from yolact.core.gpu import check_gpu_options, use_channels_last
from yolact.core.images import to_bgr8_batch
from yolact.core.ops.nms import NMS_METHODS, NMSMethod
from yolact.core.resolve import resolve_config
from yolact.core.structures import Detections
from yolact.core.threads import size_threads_once
from yolact.core.weights import Checkpoint


class Predictor(ABC):
    """Runs a model of some family on BGR images.

    Example::

        predictor = yolact.Predictor.from_checkpoint("weights/yolact_base_54_800000.pth")
        det = predictor(cv2.imread("photo.jpg"))

    Args:
        model: a built model (its weights loaded).
        device: where to run; default the model's device.
        score_threshold: detections scoring at or below this are dropped; 0 keeps all.
        top_k: keep at most this many per image, by descending score; None keeps all.
        nms_method: "fast", "cross_class" or "standard" NMS; None is the config's
            (YOLACT; the Mask R-CNN reference has its own NMS settings).
        crop: zero masks outside their boxes (YOLACT's prototype masks).
        masks: compute masks at the image size (False: boxes only, ``masks`` None).
        half: run the network in reduced precision, float16 on CUDA and bfloat16 on a
            CPU with bfloat16 instructions; the post-processing stays float32.
        cuda_graph: replay the network and the fixed-shape post-processing as one
            CUDA graph captured at the first batch's size (CUDA only; see
            :class:`~yolact.core.gpu.CudaGraphRunner` for other batch sizes).
        channels_last: the network in NHWC memory format; None: on with ``half``.

    Raises:
        ValueError: an ``nms_method`` that is not one of :data:`~yolact.core.ops.nms.NMS_METHODS`
            (for every family, also where it has no effect).
        GpuOptionError: ``half`` where the device has no reduced precision, or
            ``cuda_graph`` off CUDA, in one line.

    Attributes:
        family: the predictor's :class:`~yolact.core.family.Family` (set when the
            family is built).
        model, cfg, device: the model, its config and its device.
        half, cuda_graph, channels_last: the GPU options in effect.
    """

    family: ClassVar[Family]

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device | None = None,
        score_threshold: float = 0.0,
        top_k: int | None = None,
        nms_method: NMSMethod | None = None,
        crop: bool = True,
        masks: bool = True,
        half: bool = False,
        cuda_graph: bool = False,
        channels_last: bool | None = None,
    ) -> None:
        if nms_method is not None and nms_method not in NMS_METHODS:
            listed = ", ".join(repr(m) for m in NMS_METHODS)
            raise ValueError(f"nms_method must be None or one of {listed}; got {nms_method!r}")
        self.device = (
            torch.device(device) if device is not None else next(model.parameters()).device
        )
        check_gpu_options(self.device, half=half, cuda_graph=cuda_graph)
        self.half = half
        self.cuda_graph = cuda_graph
        self.channels_last = use_channels_last(channels_last, half)
        self.model = model.to(self.device).eval()
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        cfg: ModelConfig = getattr(model, "cfg")  # noqa: B009
        self.cfg = cfg
        self.score_threshold = score_threshold
        self.top_k = top_k
        self.nms_method = nms_method
        self.crop = crop
        self.masks = masks

    @classmethod
    def from_config(
        cls,
        cfg: ModelConfig,
        checkpoint: Checkpoint | None = None,
        *,
        device: str | torch.device | None = None,
        source: str = "checkpoint",
        **options: Any,
    ) -> Predictor:
        """The model for ``cfg`` with ``checkpoint``'s weights (random without one).

        Args:
            options: the keyword-only options of :class:`Predictor`.
        """
        model = cls.family.build_model(cfg, checkpoint, source)
        return cls(model, device=select_device(device), **options)

    @classmethod
    def from_checkpoint(
        cls,
        path: str,
        *,
        config: str | None = None,
        device: str | None = None,
        class_names: Sequence[str] | None = None,
        threads: int | None = None,
        **options: Any,
    ) -> Predictor:
        """Build the model for a checkpoint of this family.

        A named ``config`` gives the architecture, else the config stored in the
        file, its file name or its layout; the classes come from the file (its
        stored class names, or its class layer's size with ``class_names`` or
        generic names). Thread pools are sized as
        :meth:`yolact.predictor.Predictor.from_checkpoint` sizes them (``threads``
        N, or once per process unless the program set them).

        Raises:
            ConfigError: unknown name, or a config that cannot be inferred.
            CheckpointError: the file cannot be read or does not fit.
        """
        size_threads_once(threads)
        cfg, ckpt = resolve_config(path, config, class_names, families=[cls.family])
        return cls.from_config(cfg, ckpt, device=device, source=path, **options)

    @property
    def class_names(self) -> Sequence[str]:
        """Foreground class names, indexed by ``Detections.labels``."""
        return self.cfg.class_names

    @abstractmethod
    def run_pre(self, images: Sequence[np.ndarray]) -> Any:
        """BGR uint8 images [H, W, 3] -> the network's input batch on the device."""

    @abstractmethod
    def run_network(self, batch: Any) -> Any:
        """Input batch -> raw detections at the model's resolution (after every NMS,
        masks at the model's own resolution)."""

    @abstractmethod
    def run_post(self, raw: Any, image_sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        """Raw detections -> :class:`Detections` at each image's (H, W)."""

    @overload
    def __call__(self, images: np.ndarray) -> Detections: ...

    @overload
    def __call__(self, images: Sequence[np.ndarray]) -> list[Detections]: ...

    @torch.no_grad()
    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> Detections | list[Detections]:
        """Detect instances.

        Args:
            images: one image or a list of them (sizes may differ): [H, W] gray,
                [H, W, 3] BGR or [H, W, 4] BGRA; uint8, uint16 or float in [0, 1].
                Gray, BGRA, 16-bit and float images are converted to 8-bit BGR
                as eval.py converts the files it reads.

        Returns:
            :class:`Detections` for one image, a list of them for a list.

        Raises:
            yolact.io.images.InputError: an image that cannot be used (None as
                ``cv2.imread`` returns for a bad path, a wrong dtype, shape or
                channel count, an empty array), in one line.
        """
        batch, single = to_bgr8_batch(images)
        if not batch:
            return []
        dets = self.run_post(self.run_network(self.run_pre(batch)), [im.shape[:2] for im in batch])
        return dets[0] if single else dets
