"""Multi-object tracking: persistent identities for detections across the frames of one source."""

from yolact.tracking.options import TrackerOptions
from yolact.tracking.tracker import Tracker

__all__ = ["Tracker", "TrackerOptions"]
