"""The predictor interface every family implements, and device selection.

A predictor runs a model on BGR images in three stages that mean the same for
every family, so that they can be timed side by side (:mod:`yolact.bench.benchmark`):

- ``run_pre``: images (host, uint8) -> the network's input batch on the device;
- ``run_network``: batch -> raw detections at the model's resolution: the
  network, box decoding, every NMS, and masks at the model's own resolution
  (YOLACT's prototype resolution, Mask R-CNN's 28x28 mask head);
- ``run_post``: raw detections -> :class:`~yolact.core.structures.Detections`
  at the image size: boxes in image pixels, masks pasted into the image.

Every family's predictor takes the same options, one
:class:`~yolact.core.options.PredictorOptions`; an option that does not apply to
a family is accepted and has no effect there (except ``cuda_graph``, which a
predictor that cannot capture its network refuses in one line).

:class:`Predictor` is the one predictor class (``from yolact import Predictor``):
a family's predictor is a subclass that adds its pre- and post-processing, and
its network stage runs through a :class:`~yolact.core.runner.NetworkRunner`
(eager PyTorch, a CUDA graph, onnxruntime, OpenVINO). ``from_checkpoint`` and
``from_config`` go through the registry (:mod:`yolact.registry`), which plugs
itself in as the :class:`PredictorSource` when it is imported (importing
``yolact`` imports it), so that this shared module imports no family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, overload

import numpy as np
import torch
from torch import nn

from yolact.core.config import ModelConfig
from yolact.core.family_base import FamilyBase as Family
from yolact.core.images import to_bgr8_batch
from yolact.core.ops.nms import NMSMethod
from yolact.core.options import PredictorOptions
from yolact.core.structures import Detections
from yolact.core.weights import Checkpoint
from yolact.runtime.device import select_device
from yolact.runtime.gpu import check_gpu_options, use_channels_last
from yolact.runtime.threads import size_threads_once


class PredictorSource(Protocol):
    """The way from a file or a config to a predictor: the registry
    (:mod:`yolact.registry`), plugged in with :func:`set_source`."""

    def load(
        self,
        path: str,
        options: PredictorOptions,
        *,
        family: Family | None = None,
        config: str | None = None,
        class_names: Sequence[str] | None = None,
    ) -> Predictor:
        """The predictor for a file (of ``family`` only, when given)."""

    def build(
        self,
        cfg: ModelConfig,
        checkpoint: Checkpoint | None,
        options: PredictorOptions,
        *,
        source: str = "checkpoint",
    ) -> Predictor:
        """The predictor of ``cfg``'s family with ``checkpoint``'s weights."""

    def family_of_config(self, cfg: ModelConfig) -> Family:
        """The family of a config."""

    def family_of_predictor(self, cls: type) -> Family | None:
        """The family whose predictor ``cls`` is, else None."""

    def stream(self, predictor: Predictor, source: Any, **options: Any) -> Any:
        """:func:`yolact.inference.stream.stream` of ``predictor`` over ``source``."""


_SOURCE: list[PredictorSource] = []


def set_source(source: PredictorSource) -> None:
    """Make ``source`` the way from files and configs to predictors (the registry
    calls this once, when it is imported)."""
    _SOURCE[:] = [source]


def _source() -> PredictorSource:
    if not _SOURCE:
        raise RuntimeError("no predictor source: import yolact.registry first")
    return _SOURCE[0]


class _FamilyAttribute:
    """``Predictor.family``: the family of a predictor class (the one whose
    ``predictor_class`` it is), or of an instance's config."""

    def __get__(self, obj: Predictor | None, owner: type[Predictor]) -> Family:
        if obj is not None:
            return _source().family_of_config(obj.cfg)
        family = _source().family_of_predictor(owner)
        if family is None:
            raise AttributeError(f"{owner.__name__} is the predictor of no registered family")
        return family


class Predictor:
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
            :class:`~yolact.runtime.gpu.CudaGraphRunner` for other batch sizes).
        channels_last: the network in NHWC memory format; None: on with ``half``.

    Raises:
        ValueError: an ``nms_method`` that is not one of :data:`~yolact.core.ops.nms.NMS_METHODS`
            (for every family, also where it has no effect).
        GpuOptionError: ``half`` where the device has no reduced precision, or
            ``cuda_graph`` off CUDA, in one line.

    Attributes:
        family: the predictor's :class:`~yolact.core.family.Family` (looked up in
            the registry, by its config or, on a class, by the family's
            ``predictor_class``).
        options: the :class:`~yolact.core.options.PredictorOptions` in effect.
        model, cfg, device: the model, its config and its device.
        half, cuda_graph, channels_last: the GPU options in effect.
    """

    family = _FamilyAttribute()
    options: PredictorOptions
    cfg: ModelConfig
    device: torch.device

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
        options = PredictorOptions(
            device=device, score_threshold=score_threshold, top_k=top_k,
            nms_method=nms_method, crop=crop, masks=masks, half=half,
            cuda_graph=cuda_graph, channels_last=channels_last,
        )  # fmt: skip
        device = torch.device(device) if device is not None else next(model.parameters()).device
        check_gpu_options(device, half=half, cuda_graph=cuda_graph)
        cfg: ModelConfig = getattr(model, "cfg")  # noqa: B009
        self.set_options(options, cfg, device)
        self.model = model.to(self.device).eval()
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.prepare()

    def prepare(self) -> None:
        """A family's set-up once the options are kept and the model is on its device
        (its pre- and post-processing, its network runner); refuses, in one line, an
        option its model cannot run. The default does nothing."""

    def set_options(
        self, options: PredictorOptions, cfg: ModelConfig, device: torch.device
    ) -> None:
        """Keep ``options`` (checked already) and the attributes that mirror them."""
        self.options = options
        self.cfg = cfg
        self.device = device
        self.half = options.half
        self.cuda_graph = options.cuda_graph
        self.channels_last = use_channels_last(options.channels_last, options.half)
        self.score_threshold = options.score_threshold
        self.top_k = options.top_k
        self.nms_method = options.nms_method
        self.crop = options.crop
        self.masks = options.masks

    @classmethod
    def from_options(cls, model: nn.Module, options: PredictorOptions) -> Predictor:
        """``cls(model, **options)`` on the device ``options`` selects."""
        kwargs = options.network_kwargs()
        kwargs["device"] = select_device(options.device)
        return cls(model, **kwargs)

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
        """The model for ``cfg`` with ``checkpoint``'s weights (random without one):
        this class with the family's model, or, on :class:`Predictor` itself, the
        predictor of ``cfg``'s family (from the registry).

        Args:
            options: the fields of :class:`~yolact.core.options.PredictorOptions`.

        Raises:
            TypeError: an unknown option.
        """
        opts = PredictorOptions.from_kwargs(device=device, **options)
        family = _source().family_of_predictor(cls)
        if family is None:  # the one class itself: the predictor of cfg's family
            return _source().build(cfg, checkpoint, opts, source=source)
        return cls.from_options(family.build_model(cfg, checkpoint, source), opts)

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
        """The predictor for ``path`` (through the registry), config inferred from the
        file when not given: a checkpoint of any family (of this class's family only,
        on a family's predictor class), an ``.onnx`` file or an OpenVINO folder.

        Thread pools: ``threads=N`` gives torch N threads (as eval.py's ``--threads``).
        Without it the pools are sized once per process to the cores that are idle
        now, as eval.py sizes them, unless the program set them already: an
        ``OMP_NUM_THREADS`` variable, a ``torch.set_num_threads`` call after
        importing yolact, an entry point or an earlier predictor
        (:func:`yolact.runtime.threads.size_threads_once`).

        Args:
            path: the checkpoint (original YOLACT, this project's, torchvision's), or
                an exported file.
            config: a registered config name: the architecture (the classes still
                come from the file).
            device: "cpu", "cuda", "cuda:N"; default CUDA when available.
            class_names: names for the classes of a file that stores none.
            threads: torch's threads (>= 1); None: see above.
            options: the other fields of :class:`~yolact.core.options.PredictorOptions`.

        Raises:
            TypeError: an unknown option, in one line.
            ConfigError, CheckpointError: in one line, as eval.py reports them.
            yolact.runtime.threads.ThreadsError: ``threads`` below 1 or a bad
                ``OMP_NUM_THREADS``.
        """
        opts = PredictorOptions.from_kwargs(device=device, threads=threads, **options)
        size_threads_once(opts.threads)
        family = _source().family_of_predictor(cls)  # None: any family, any file kind
        return _source().load(
            path, opts.replace(threads=None), family=family, config=config,
            class_names=class_names,
        )  # fmt: skip

    @property
    def class_names(self) -> Sequence[str]:
        """Foreground class names, indexed by ``Detections.labels``."""
        return self.cfg.class_names

    def run_pre(self, images: Sequence[np.ndarray]) -> Any:
        """BGR uint8 images [H, W, 3] -> the network's input batch on the device."""
        raise NotImplementedError(f"{type(self).__name__} has no pre-processing stage")

    def run_network(self, batch: Any) -> Any:
        """Input batch -> raw detections at the model's resolution (after every NMS,
        masks at the model's own resolution)."""
        raise NotImplementedError(f"{type(self).__name__} has no network stage")

    def run_post(self, raw: Any, image_sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        """Raw detections -> :class:`Detections` at each image's (H, W)."""
        raise NotImplementedError(f"{type(self).__name__} has no post-processing stage")

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

    def stream(self, source: Any, **options: Any) -> Any:
        """Run over a source, pipelined: one result per frame, as it is ready.

        Example::

            for r in predictor.stream("video.mp4"):
                r.frame_index, r.image, r.detections

        Args:
            source: a path (image, folder of images, video file), a webcam index,
                a stream URL, any iterable of BGR frames, or a list of these
                (results then carry their ``source_index``).
            options: the keywords of :func:`yolact.inference.stream.stream`
                (``batch_size``, ``max_frames``, ``stop``, ``on_skip``, ``track``,
                ``detect_fps``, ``batch_wait``, ``max_batch``, ``reconnect``,
                ``on_event``...), passed as given.

        Returns:
            A :class:`yolact.inference.stream.Stream` of
            :class:`~yolact.inference.stream.StreamResult`: iterate it (``break``
            or ``close()`` ends every thread); it is also a context manager.
        """
        return _source().stream(self, source, **options)
