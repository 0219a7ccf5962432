"""The Python API's entry point: a predictor for a file of any registered family."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from yolact.core.device import select_device
from yolact.core.predictor import Predictor as FamilyPredictor
from yolact.core.threads import size_threads_once
from yolact.registry import load_predictor


class Predictor:
    """Builds the predictor of a checkpoint's family.

    Example::

        from yolact.predictor import Predictor

        predictor = Predictor.from_checkpoint("weights/yolact_base_54_800000.pth")
        det = predictor(cv2.imread("photo.jpg"))

    The predictor returned is the family's own subclass of
    :class:`yolact.core.predictor.Predictor` (the same stages and options for
    every family).
    """

    @staticmethod
    def from_checkpoint(
        path: str,
        *,
        config: str | None = None,
        device: str | None = None,
        class_names: Sequence[str] | None = None,
        threads: int | None = None,
        **options: Any,
    ) -> FamilyPredictor:
        """The model for ``path``, config inferred from the file when not given.

        Thread pools: ``threads=N`` gives torch N threads (as eval.py's ``--threads``).
        Without it the pools are sized once per process to the cores that are idle
        now, as eval.py sizes them, unless the program set them already: an
        ``OMP_NUM_THREADS`` variable, a ``torch.set_num_threads`` call after
        importing yolact, an entry point or an earlier predictor
        (:func:`yolact.core.threads.size_threads_once`).

        Args:
            path: the checkpoint (original YOLACT, this project's, torchvision's).
            config: a registered config name: the architecture (the classes
                still come from the file).
            device: "cpu", "cuda", "cuda:N"; default CUDA when available.
            class_names: names for the classes of a file that stores none.
            threads: torch's threads (>= 1); None: see above.
            options: ``score_threshold``, ``top_k``, ``nms_method``, ``crop``, ``masks``
                (see :class:`yolact.core.predictor.Predictor`).

        Raises:
            ConfigError, CheckpointError: in one line, as eval.py reports them.
            yolact.core.threads.ThreadsError: ``threads`` below 1 or a bad
                ``OMP_NUM_THREADS``.
        """
        size_threads_once(threads)
        return load_predictor(
            path, config=config, device=device, class_names=class_names, **options
        )


__all__ = ["FamilyPredictor", "Predictor", "select_device"]
