"""YOLACT: real-time instance segmentation, with a Mask R-CNN reference."""

from yolact.core.config import ConfigError
from yolact.core.options import PredictorOptions
from yolact.core.predictor import Predictor
from yolact.core.structures import Detections
from yolact.registry import all_configs, get_config, load_predictor

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Detections",
    "Predictor",
    "PredictorOptions",
    "all_configs",
    "get_config",
    "load_predictor",
    "__version__",
]
