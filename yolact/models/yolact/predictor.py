"""YOLACT's predictor: load a model once, run it on BGR images."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from yolact.core.padded_predictor import PaddedPredictor
from yolact.models.yolact.config import YolactConfig
from yolact.models.yolact.fixed_post import YolactInference
from yolact.models.yolact.model import Yolact
from yolact.models.yolact.preprocess import Preprocessor
from yolact.runtime.gpu import CudaGraphRunner, GpuOptionError, HalfNetwork, half_dtype
from yolact.runtime.runners import EagerRunner


class YolactPredictor(PaddedPredictor):
    """Runs a YOLACT model on BGR images (the stages of :class:`~yolact.core.predictor.Predictor`).

    Example::

        predictor = YolactPredictor.from_checkpoint("weights/yolact_base_54_800000.pth")
        det = predictor(cv2.imread("photo.jpg"))
        det.boxes, det.scores, det.names, det.masks, det.polygons()

    With ``half`` the network runs in float16 on CUDA, bfloat16 on the CPU
    (YOLACT++'s mask re-scoring net excepted) and its outputs go to the
    post-processing in float32. With ``cuda_graph`` the network and the
    post-processing are one CUDA graph, captured at the first batch's size: a
    smaller batch is padded to it, a larger one runs in chunks of it (``standard``
    NMS, which loops over images, cannot be captured).

    Args:
        model: a built model (its weights loaded).
        device, score_threshold, top_k, nms_method, crop, masks, half, cuda_graph,
            channels_last: see :class:`~yolact.core.predictor.Predictor`;
            ``nms_method`` None is the config's.

    Raises:
        GpuOptionError: ``cuda_graph`` with standard NMS, ``half`` for YOLACT++ on
            the CPU (torchvision's deformable convolution has no bfloat16 kernel
            there), or an option the device cannot run.

    Attributes:
        inference: the network and the fixed-shape post-processing
            (:class:`~yolact.models.yolact.fixed_post.YolactInference`).
        postprocess: its post-processing module.
        network_module: the network as run (:class:`~yolact.runtime.gpu.HalfNetwork`
            with ``half``).
        runner: the network runner: :class:`~yolact.runtime.runners.EagerRunner`, or
            with ``cuda_graph`` the :class:`~yolact.runtime.gpu.CudaGraphRunner`.
        graph: the :class:`~yolact.runtime.gpu.CudaGraphRunner`, or None.
    """

    model: Yolact
    cfg: YolactConfig

    def prepare(self) -> None:
        """The pre-processing, the network in its precision, the fixed-shape
        post-processing and the runner (eager, or a CUDA graph)."""
        model, cfg = self.model, self.cfg
        nms_method, crop, half = self.nms_method, self.crop, self.half
        nms = cfg.nms if nms_method is None else cfg.with_nms(method=nms_method).nms
        if self.cuda_graph and nms.method == "standard":
            raise GpuOptionError(
                "--cuda_graph needs fast or cross-class NMS (standard NMS has data-dependent "
                "shapes); drop --fast_nms=False"
            )
        if half and self.device.type == "cpu" and cfg.deformable:
            raise GpuOptionError(
                f"{cfg.name} has deformable convolutions, which torchvision runs in float32 "
                "only on the CPU; run it without --half"
            )
        self.preprocess = Preprocessor(cfg, self.device)
        dtype = half_dtype(self.device) if half else torch.float32
        self.preprocess.dtype = dtype
        self.preprocess.channels_last = self.channels_last
        self.inference = YolactInference(model, nms, crop).eval()
        self.postprocess = self.inference.post
        self.network_module: nn.Module = (
            HalfNetwork(model, keep_float32=("maskiou_net",), dtype=dtype) if half else model
        )
        self.graph = CudaGraphRunner(self.detect_tuple) if self.cuda_graph else None
        self.runner = self.graph if self.graph is not None else EagerRunner(self.detect_tuple)

    @torch.no_grad()
    def network(self, batch: Tensor) -> dict[str, Tensor]:
        """The network alone on a pre-processed batch [B, 3, S, S]: raw predictions
        (float32 also with ``half``)."""
        return self.network_module(batch)

    @torch.no_grad()
    def detect_tuple(self, batch: Tensor) -> tuple[Tensor, ...]:
        """The network (float16 or bfloat16 with ``half``) and the float32 post-processing on a
        batch [B, 3, S, S]: :class:`PaddedDetections` as a tuple (``as_tuple`` order)."""
        out = self.network_module(batch)
        return self.postprocess(out["loc"], out["conf"], out["coef"], out["proto"], out["priors"])
