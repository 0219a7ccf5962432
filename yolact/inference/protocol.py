"""What the streaming loop needs of a predictor (it never imports the predictor class)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from yolact.core.structures import Detections


@runtime_checkable
class StagedPredictor(Protocol):
    """A predictor split into its three stages, as :class:`yolact.Predictor` is.

    ``run_pre`` turns BGR uint8 images into the network's input batch,
    ``run_network`` that batch into raw detections, ``run_post`` those into one
    :class:`~yolact.core.structures.Detections` per image at its (H, W).
    """

    @property
    def class_names(self) -> Sequence[str]:
        """Foreground class names, indexed by ``Detections.labels``."""
        ...

    def run_pre(self, images: Sequence[np.ndarray]) -> Any:
        """BGR uint8 images [H, W, 3] -> the network's input batch."""
        ...

    def run_network(self, batch: Any) -> Any:
        """The input batch -> raw detections."""
        ...

    def run_post(self, raw: Any, image_sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        """Raw detections -> :class:`Detections` at each image's (H, W)."""
        ...
