"""The Python API's entry point: the one predictor class, for a file of any registered
family or an exported graph.

Example::

    from yolact import Predictor

    predictor = Predictor.from_checkpoint("weights/yolact_base_54_800000.pth")
    det = predictor(cv2.imread("photo.jpg"))

Every predictor :meth:`Predictor.from_checkpoint` returns is an instance of this
class (a family's predictor is a subclass of it). Importing this module imports
the registry, which :meth:`Predictor.from_checkpoint` goes through.
"""

from __future__ import annotations

from yolact import registry as _registry  # noqa: F401 (plugs the registry in)
from yolact.core.options import PredictorOptions
from yolact.core.predictor import Predictor

__all__ = ["Predictor", "PredictorOptions"]
