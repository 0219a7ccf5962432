"""What a model family provides to the engine: the interface every family implements.

A family (YOLACT, the Mask R-CNN reference, ...) is one subpackage of
``yolact.models`` with one :class:`Family` object, listed in
:mod:`yolact.registry`. The CLIs, the trainer, the benchmark and the Python API
reach a family only through this interface, never by its type. Everything but
the predictor class is :class:`~yolact.core.family_base.FamilyBase`'s, which the
predictor interface builds models through.
"""

from __future__ import annotations

from yolact.core.family_base import ExportError as ExportError
from yolact.core.family_base import ExportSpec as ExportSpec
from yolact.core.family_base import FamilyBase
from yolact.core.family_base import TrainingHooks as TrainingHooks
from yolact.core.family_base import TrainTransform as TrainTransform
from yolact.core.predictor import Predictor


class Family(FamilyBase):
    """A model family: its configs, files, model, training pieces and predictor.

    Attributes:
        predictor_class: the family's :class:`~yolact.core.predictor.Predictor`.
    """

    predictor_class: type[Predictor]

    def __init__(self) -> None:
        self.predictor_class.family = self
