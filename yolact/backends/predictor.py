"""A predictor over an exported graph: the same stages and options as a checkpoint's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from yolact.backends.meta import ExportedFileError, ExportMeta, read_meta
from yolact.backends.runtimes import Runtime, open_runtime
from yolact.core.config import ModelConfig
from yolact.core.gpu import check_gpu_options
from yolact.core.ops.nms import parse_nms_method
from yolact.core.padded import PaddedDetections, select, to_detections
from yolact.core.predictor import Predictor
from yolact.core.preprocess import SquarePreprocessor
from yolact.core.structures import Detections
from yolact.core.threads import current_plan


class ExportedPredictor(Predictor):
    """Runs a file written by ``python -m yolact.export`` (onnxruntime or OpenVINO).

    Pre-processing follows the file's metadata; the graph holds the network,
    decoding, NMS and masks at the model's resolution; the score threshold,
    top-k, boxes in pixels and pasting are the code PyTorch predictors share
    (:mod:`yolact.core.padded`).

    Args:
        path: the ``.onnx`` file or ``*_openvino_model`` directory.
        cfg: the model's config (read from the file's metadata by the registry).
        meta: the file's metadata (read from ``path`` when omitted).
        device: "cpu" (default), or "cuda" for onnxruntime's TensorRT or CUDA
            provider (:func:`~yolact.backends.runtimes.onnx_providers`); the batch
            is made and the results are pasted on the host either way.
        score_threshold, top_k, masks: as :class:`~yolact.core.predictor.Predictor`.
        nms_method, crop: must be None or what the graph was exported with.
        half: on CUDA, let TensorRT build fp16 kernels (an fp16 file runs in fp16
            without it); on the CPU, run OpenVINO in bfloat16 (onnxruntime refuses
            it there).
        cuda_graph, channels_last: accepted, no effect (the runtime plans its own
            execution and memory layout).
        threads: the runtime's intra-op threads (0: the process's thread plan,
            :func:`yolact.core.threads.current_plan`).
        tensorrt: True requires onnxruntime's TensorRT provider, False leaves it
            out, None (default) uses it on CUDA where present.

    Raises:
        ExportedFileError: an unreadable file, a runtime that cannot run it, or
            an option the graph cannot honour, in one line.
    """

    def __init__(
        self,
        path: str,
        cfg: ModelConfig,
        meta: ExportMeta | None = None,
        *,
        device: str | torch.device | None = None,
        score_threshold: float = 0.0,
        top_k: int | None = None,
        nms_method: str | None = None,
        crop: bool = True,
        masks: bool = True,
        half: bool = False,
        cuda_graph: bool = False,
        channels_last: bool | None = None,
        threads: int = 0,
        tensorrt: bool | None = None,
    ) -> None:
        check_gpu_options(torch.device(device or "cpu"), half=half)
        meta = read_meta(path) if meta is None else meta
        if nms_method is not None and nms_method != meta.nms_method:
            raise ExportedFileError(
                f"{path} was exported with {meta.nms_method} NMS, not {nms_method}; "
                "export it again for another NMS"
            )
        if crop != meta.crop:
            raise ExportedFileError(
                f"{path} was exported with crop={meta.crop}; export it again to change it"
            )
        self.path = path
        self.meta = meta
        self.cfg = cfg
        threads = threads or current_plan().runtime
        self.runtime: Runtime = open_runtime(
            path, meta, str(device or "cpu"), threads, half=half, tensorrt=tensorrt
        )
        self.device = torch.device(self.runtime.device)  # where the graph runs
        self.half = half or meta.half
        self.cuda_graph = False
        self.channels_last = False
        self.score_threshold = score_threshold
        self.top_k = top_k
        self.nms_method = parse_nms_method(meta.nms_method)
        self.crop = meta.crop
        self.masks = masks
        self.preprocess = SquarePreprocessor(
            meta.input_size, meta.pixel_mean, meta.pixel_std, meta.channels
        )

    @classmethod
    def from_config(cls, *args: Any, **kwargs: Any) -> Predictor:
        raise TypeError(
            "an exported predictor is built from its file: ExportedPredictor(path, cfg)"
        )

    @property
    def class_names(self) -> Sequence[str]:
        return tuple(self.meta.class_names)

    def run_pre(self, images: Sequence[np.ndarray]) -> Tensor:
        """BGR uint8 images -> the graph's input batch [B, 3, S, S] (host)."""
        return self.preprocess(images)

    def run_network(self, batch: Tensor) -> PaddedDetections:
        """The graph on the batch (in chunks of its fixed batch size, if it has one),
        then the score threshold and top-k."""
        x = batch.numpy().astype(np.float16 if self.meta.half else np.float32)
        step = self.meta.batch or len(x)
        parts: list[list[np.ndarray]] = []
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            n = len(chunk)
            if n < step:  # a fixed-batch graph: pad the last chunk
                chunk = np.concatenate([chunk, np.zeros((step - n, *chunk.shape[1:]), chunk.dtype)])
            parts.append([o[:n] for o in self.runtime.run(np.ascontiguousarray(chunk))])
        outputs = [torch.from_numpy(np.concatenate(p)) for p in zip(*parts)]
        det = PaddedDetections.from_tuple(
            [o.float() if o.is_floating_point() else o for o in outputs]
        )
        return select(det, self.score_threshold, self.top_k)

    def run_post(
        self, raw: PaddedDetections, image_sizes: Sequence[tuple[int, int]]
    ) -> list[Detections]:
        """Detections at the original image sizes (shared with PyTorch predictors)."""
        return to_detections(
            raw, image_sizes, self.class_names, masks=self.masks, crop=self.crop,
            crop_padding=self.meta.crop_padding,
        )  # fmt: skip
