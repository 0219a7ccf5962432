"""Library loops over frames: the streaming API and the outputs eval.py writes."""

from yolact.inference.protocol import StagedPredictor
from yolact.inference.stream import SourceStats, Stream, StreamResult, stream

__all__ = ["SourceStats", "StagedPredictor", "Stream", "StreamResult", "stream"]
