"""The options of a predictor, in one frozen dataclass shared by every family and runtime."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch

from yolact.core.ops.nms import NMS_METHODS, NMSMethod


@dataclass(frozen=True)
class PredictorOptions:
    """How a predictor runs; an option that does not apply to a family or a runtime is
    accepted and has no effect there (``cuda_graph`` excepted: a predictor that cannot
    capture its network refuses it in one line).

    Attributes:
        device: "cpu", "cuda", "cuda:N"; None: CUDA when available (a checkpoint), the
            CPU (an exported file).
        score_threshold: detections scoring at or below this are dropped; 0 keeps all.
        top_k: keep at most this many per image, by descending score; None keeps all.
        nms_method: "fast", "cross_class" or "standard" NMS; None is the config's
            (an exported file: must be None or the NMS it was exported with).
        crop: zero masks outside their boxes (YOLACT's prototype masks).
        masks: compute masks at the image size (False: boxes only).
        half: the network in reduced precision: float16 on CUDA, bfloat16 on a CPU
            with bfloat16 instructions; the post-processing stays float32.
        cuda_graph: replay the network and the fixed-shape post-processing as one
            CUDA graph (CUDA only).
        channels_last: the network in NHWC memory format; None: on with ``half``.
        threads: the thread budget (>= 1); None: sized once per process
            (:func:`yolact.runtime.threads.size_threads_once`).
        tensorrt: an exported ONNX file on CUDA: True requires onnxruntime's TensorRT
            provider, False leaves it out, None uses it where present.

    Raises:
        ValueError: an ``nms_method`` that is not one of
            :data:`~yolact.core.ops.nms.NMS_METHODS`.
    """

    device: str | torch.device | None = None
    score_threshold: float = 0.0
    top_k: int | None = None
    nms_method: NMSMethod | None = None
    crop: bool = True
    masks: bool = True
    half: bool = False
    cuda_graph: bool = False
    channels_last: bool | None = None
    threads: int | None = None
    tensorrt: bool | None = None

    def __post_init__(self) -> None:
        if self.nms_method is not None and self.nms_method not in NMS_METHODS:
            listed = ", ".join(repr(m) for m in NMS_METHODS)
            raise ValueError(f"nms_method must be None or one of {listed}; got {self.nms_method!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every option's name, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_kwargs(cls, **options: Any) -> PredictorOptions:
        """The options given as keyword arguments (the others at their defaults).

        Raises:
            TypeError: a keyword that is not an option, naming it and the options.
            ValueError: a value :class:`PredictorOptions` refuses.
        """
        unknown = sorted(set(options) - set(cls.names()))
        if unknown:
            raise TypeError(
                f"unknown predictor option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(u) for u in unknown)}; the options are {', '.join(cls.names())}"
            )
        return cls(**options)

    def replace(self, **changes: Any) -> PredictorOptions:
        """A copy with ``changes``, validated as :meth:`from_kwargs` validates."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        return self.from_kwargs(**{**current, **changes})

    def network_kwargs(self) -> dict[str, Any]:
        """The options a family predictor's constructor takes (all but ``threads`` and
        ``tensorrt``, which size and pick runtimes before it is built)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("threads", "tensorrt")
        }
