"""Every network call at one batch size, so an image's detections do not depend on
where it fell in the list.

CPU kernels (oneDNN's convolutions among them) may pick another algorithm for
another batch size, which moves results in the last bits. A batch run whose
last batch is short, or whose shards group the images differently, would then
give an image slightly different scores depending on its neighbours. Padding
every short batch to the full size with copies of its last image (whose results
are dropped) makes an image's detections a function of the image, the model and
the batch size only: shards merged equal one run, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from yolact.core.predictor import Predictor
from yolact.core.structures import Detections


class FixedBatchPredictor:
    """A predictor's three stages (what :func:`yolact.inference.stream.stream` runs),
    every network call padded to ``batch_size`` images.

    Args:
        predictor: the predictor to run.
        batch_size: the one batch size of every call (>= 1).
    """

    def __init__(self, predictor: Predictor, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.predictor = predictor
        self.batch_size = batch_size

    @classmethod
    def load(
        cls,
        model_path: str,
        batch_size: int,
        *,
        score_threshold: float = 0.0,
        device: str | None = None,
        threads: int | None = None,
        config: str | None = None,
    ) -> FixedBatchPredictor:
        """The model of ``model_path`` (a checkpoint or an exported file) as batch
        inference runs it: every detection above ``score_threshold``, with masks.

        Raises:
            yolact.io.images.InputError: the file cannot be read as a model.
        """
        predictor = Predictor.from_checkpoint(
            model_path, config=config, device=device, threads=threads,
            score_threshold=score_threshold, top_k=None, masks=True,
        )  # fmt: skip
        return cls(predictor, batch_size)

    @property
    def class_names(self) -> Sequence[str]:
        """The predictor's class names."""
        return self.predictor.class_names

    def run_pre(self, images: Sequence[np.ndarray]) -> Any:
        """Pre-process ``images`` padded to the batch size (copies of the last one)."""
        images = list(images)
        if not images:
            raise ValueError("no images to run")
        if len(images) > self.batch_size:
            raise ValueError(f"{len(images)} images in one call; at most {self.batch_size}")
        pad = self.batch_size - len(images)
        return self.predictor.run_pre(images + [images[-1]] * pad)

    def run_network(self, batch: Any) -> Any:
        """The predictor's network stage."""
        return self.predictor.run_network(batch)

    def run_post(self, raw: Any, image_sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        """The detections of the real images (the padding's are dropped)."""
        sizes = list(image_sizes)
        pad = self.batch_size - len(sizes)
        return self.predictor.run_post(raw, sizes + [sizes[-1]] * pad)[: len(sizes)]

    def __call__(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections of any number of BGR images, ``batch_size`` at a time."""
        from yolact.core.images import to_bgr8_batch

        batch, _ = to_bgr8_batch(list(images))
        out: list[Detections] = []
        with torch.no_grad():
            for i in range(0, len(batch), self.batch_size):
                part = batch[i : i + self.batch_size]
                raw = self.run_network(self.run_pre(part))
                out.extend(self.run_post(raw, [im.shape[:2] for im in part]))
        return out
