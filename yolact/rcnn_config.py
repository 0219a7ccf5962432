"""Configs of the two-stage Mask R-CNN reference model."""

from __future__ import annotations

from collections.abc import Callable

RCNN_CONFIGS: dict[str, Callable[[], object]] = {}
