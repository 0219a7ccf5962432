"""The predictor of an exported graph: the padded-detections stages over an exported runner."""

from __future__ import annotations

from typing import Any

import torch

from yolact.backends.meta import ExportedFileError, ExportMeta, read_meta
from yolact.backends.runners import ExportedRunner
from yolact.backends.runtimes import Runtime, open_runtime
from yolact.core.config import ModelConfig
from yolact.core.ops.nms import parse_nms_method
from yolact.core.options import PredictorOptions
from yolact.core.padded_predictor import PaddedPredictor
from yolact.core.predictor import Predictor
from yolact.core.preprocess import SquarePreprocessor
from yolact.runtime.gpu import check_gpu_options
from yolact.runtime.threads import current_plan


class ExportedPredictor(PaddedPredictor):
    """Runs a file written by ``python -m yolact.export`` (onnxruntime or OpenVINO).

    The stages are those of every padded-detections predictor
    (:class:`~yolact.core.padded_predictor.PaddedPredictor`): pre-processing as the
    file's metadata says, the graph as the network runner
    (:class:`~yolact.backends.runners.ExportedRunner`; it holds the network,
    decoding, NMS and masks at the model's resolution), then the score threshold,
    top-k, boxes in pixels and pasting.

    Args:
        path: the ``.onnx`` file or ``*_openvino_model`` directory.
        cfg: the model's config (read from the file's metadata by the registry).
        options: as :class:`~yolact.core.options.PredictorOptions`, where
            ``device`` is "cpu" (default), or "cuda" for onnxruntime's TensorRT or
            CUDA provider (the batch is made and the results are pasted on the
            host either way); ``nms_method`` and ``crop`` must be None or what the
            graph was exported with; ``half`` on CUDA lets TensorRT build fp16
            kernels (an fp16 file runs in fp16 without it), on the CPU runs
            OpenVINO in bfloat16 (onnxruntime refuses it there); ``cuda_graph``
            and ``channels_last`` have no effect; ``threads`` are the runtime's
            intra-op threads (None: :func:`yolact.runtime.threads.current_plan`).
        meta: the file's metadata (read from ``path`` when omitted).
        runtime: the graph already loaded (an INT8 candidate under accuracy
            control, say); ``path`` then only names it. Opened from ``path`` when
            omitted.

    Raises:
        ExportedFileError: an unreadable file, a runtime that cannot run it, or
            an option the graph cannot honour, in one line.

    Attributes:
        path, meta: the file and its metadata.
        runtime: the loaded graph (:class:`~yolact.backends.runtimes.Runtime`).
        runner: the network runner over it.
    """

    def __init__(
        self,
        path: str,
        cfg: ModelConfig,
        options: PredictorOptions | None = None,
        meta: ExportMeta | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        options = PredictorOptions() if options is None else options
        device = str(options.device or "cpu")
        check_gpu_options(torch.device(device), half=options.half)
        meta = read_meta(path) if meta is None else meta
        if options.nms_method is not None and options.nms_method != meta.nms_method:
            raise ExportedFileError(
                f"{path} was exported with {meta.nms_method} NMS, not {options.nms_method}; "
                "export it again for another NMS"
            )
        if options.crop != meta.crop:
            raise ExportedFileError(
                f"{path} was exported with crop={meta.crop}; export it again to change it"
            )
        threads = options.threads or current_plan().runtime
        if runtime is None:
            runtime = open_runtime(
                path, meta, device, threads, half=options.half, tensorrt=options.tensorrt
            )
        self.path = path
        self.meta = meta
        self.runtime = runtime
        self.runner = ExportedRunner(runtime, meta)
        in_effect = options.replace(
            device=runtime.device, half=options.half or meta.half, cuda_graph=False,
            channels_last=False, nms_method=parse_nms_method(meta.nms_method),
        )  # fmt: skip
        self.set_options(in_effect, cfg, torch.device(runtime.device))  # where the graph runs
        self.preprocess = SquarePreprocessor(
            meta.input_size, meta.pixel_mean, meta.pixel_std, meta.channels
        )
        self.crop_padding = meta.crop_padding

    @classmethod
    def from_config(cls, *args: Any, **kwargs: Any) -> Predictor:
        raise TypeError(
            "an exported predictor is built from its file: Predictor.from_checkpoint(path)"
        )
