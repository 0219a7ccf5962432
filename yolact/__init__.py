"""YOLACT: real-time instance segmentation."""

from yolact.models.yolact.config import CONFIGS, YolactConfig, get_config

__version__ = "0.1.0"

__all__ = ["CONFIGS", "YolactConfig", "get_config", "__version__"]
