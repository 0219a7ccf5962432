"""What a model family provides to the engine, apart from its predictor: configs,
files, model, training pieces and export (:class:`FamilyBase`).

:class:`yolact.core.family.Family` adds the family's predictor class. The
predictor interface (:mod:`yolact.core.predictor`) builds models through this
base, so the two modules do not import each other.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from yolact.core.config import ModelConfig
from yolact.core.weights import Checkpoint

# A training augmentation: ``(sample, rng) -> sample``, a sample being the dict of an
# image and its targets (see yolact.data.transforms.Compose).
TrainTransform = Callable[..., Any]


class TrainingHooks:
    """Per-step state a family keeps beside the optimiser (a schedule of loss
    settings, for example); stored in and restored from checkpoints.

    The default keeps nothing; a family overrides what it needs.
    """

    def after_step(self) -> None:
        """Called after every optimisation step."""

    def state_dict(self) -> dict[str, Any] | None:
        """Entries to add to a checkpoint (None: nothing)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from a checkpoint's entries what :meth:`state_dict` added."""


class FamilyBase(ABC):
    """A model family: its configs, files, model and training pieces (its predictor
    is :class:`yolact.core.family.Family`'s).

    Attributes:
        kind: the family's name, stored as ``"kind"`` in a checkpoint's config.
        title: its name in messages ("YOLACT").
        configs: config name -> function building that config.
    """

    kind: str
    title: str
    configs: Mapping[str, Callable[[], ModelConfig]]

    # ---- configs and files -------------------------------------------------------

    @abstractmethod
    def owns_config(self, cfg: ModelConfig) -> bool:
        """Whether ``cfg`` is a config of this family."""

    @abstractmethod
    def config_from_dict(self, d: dict[str, Any]) -> ModelConfig:
        """The config stored in a checkpoint (``cfg.to_dict()``), read back.

        Raises:
            TypeError, KeyError, ValueError: fields that do not fit.
        """

    def stores_kind(self, d: dict[str, Any]) -> bool:
        """Whether a stored config dict is of this family (by its ``"kind"``)."""
        return d.get("kind") == self.kind

    @abstractmethod
    def holds_weights(self, state: dict[str, Tensor]) -> bool:
        """Whether a state dict holds this family's model (by its keys)."""

    def config_name_for_state(self, state: dict[str, Tensor]) -> str | None:
        """The config a file of a foreign layout fits (e.g. torchvision's), else None."""
        return None

    def class_count(self, cfg: ModelConfig, state: dict[str, Tensor]) -> int | None:
        """Foreground classes the class layer of ``state`` predicts for ``cfg``'s
        architecture; None when it has none or it does not fit anyway."""
        return None

    def with_stored_classes(
        self, cfg: ModelConfig, stored: ModelConfig | None, names: tuple[str, ...]
    ) -> ModelConfig:
        """``cfg`` with the class names a file stores (and what goes with them)."""
        return cfg.replace(class_names=names)

    # ---- model and weights -------------------------------------------------------

    @abstractmethod
    def build_model(
        self, cfg: ModelConfig, checkpoint: Checkpoint | None = None, source: str = "checkpoint"
    ) -> nn.Module:
        """The model for ``cfg``, with ``checkpoint``'s weights when given.

        Raises:
            CheckpointError: the weights do not fit.
        """

    @abstractmethod
    def load_weights(
        self,
        model: nn.Module,
        checkpoint: Checkpoint,
        source: str = "checkpoint",
        allow_class_change: bool = False,
    ) -> list[str]:
        """Load ``checkpoint`` into ``model``; returns the keys left initialised.

        Raises:
            CheckpointError: the weights do not fit.
        """

    def init_from_checkpoint(
        self, model: nn.Module, checkpoint: Checkpoint, source: str, log: logging.Logger
    ) -> bool:
        """``--init_weights`` with a whole checkpoint of this family: load it and
        return True; False when the file is not one (a backbone file, say)."""
        if not self.holds_weights(checkpoint.state_dict):
            return False
        skipped = self.load_weights(model, checkpoint, source, allow_class_change=True)
        if skipped:
            log.warning("re-initialised for the new classes: %s", ", ".join(skipped))
        return True

    # ---- training ----------------------------------------------------------------

    def build_train_model(self, cfg: ModelConfig) -> nn.Module:
        """The model to train (with its training-only options)."""
        return self.build_model(cfg)

    @abstractmethod
    def training_module(
        self, model: nn.Module, cfg: ModelConfig, amp_dtype: Any = None
    ) -> nn.Module:
        """A module ``(images, targets) -> dict of named float32 loss scalars`` around
        ``model``, holding every parameter the loss uses (so DDP sees them)."""

    @abstractmethod
    def train_transform(self, cfg: ModelConfig) -> TrainTransform:
        """The training augmentation of ``cfg`` (the images it gives are what
        :meth:`training_module` takes)."""

    def training_hooks(self, model: nn.Module, cfg: ModelConfig) -> TrainingHooks | None:
        """Per-step training state of ``cfg`` (None: none)."""
        return None

    # ---- export ------------------------------------------------------------------

    def export_spec(
        self, model: nn.Module, cfg: ModelConfig, nms_method: str | None = None
    ) -> ExportSpec:
        """What an exported graph of ``model`` holds (see :class:`ExportSpec`).

        Raises:
            ExportError: the family's models cannot be exported.
        """
        raise ExportError(f"{self.title} models cannot be exported")


class ExportError(ValueError):
    """A model or an option that cannot be exported, or an exported file that
    cannot run here (one line)."""


@dataclass
class ExportSpec:
    """A family's exportable module and how its input is made.

    Attributes:
        module: ``images [B, 3, S, S] -> PaddedDetections.as_tuple()`` (normalised
            input as ``pixel_mean``/``pixel_std``/``channels`` say).
        input_size: S, the square input side.
        pixel_mean, pixel_std: per-channel normalisation of BGR 0-255 pixels.
        channels: "rgb" or "bgr", the channel order the network takes.
        crop: the masks come cropped to their boxes widened by ``crop_padding``.
        nms_method: the NMS baked into the graph.
        deformable: the graph holds deformable convolutions (ONNX DeformConv).
    """

    module: nn.Module
    input_size: int
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]
    channels: str = "rgb"
    crop: bool = True
    crop_padding: float = 1.0
    nms_method: str = "fast"
    deformable: bool = False
