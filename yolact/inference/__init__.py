"""Library loops over frames: the streaming API and the outputs eval.py writes."""

from yolact.inference.protocol import StagedPredictor
from yolact.inference.stream import Stream, StreamResult, stream

__all__ = ["StagedPredictor", "Stream", "StreamResult", "stream"]
