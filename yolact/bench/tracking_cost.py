"""The tracker's own cost per frame, timed on one thread (no model)."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from yolact.tracking.options import TrackerOptions
from yolact.tracking.tracker import Tracker

__all__ = ["sampling_cost", "synthetic_cost"]


def synthetic_cost(
    mode: str,
    detections: int = 50,
    frames: int = 100,
    size: tuple[int, int] = (480, 640),
    seed: int = 0,
    reid: bool = True,
) -> float:
    """Median ms of one ``Tracker.update`` with ``detections`` moving random boxes, one thread.

    The tracker is given the frame (random colours), so its colour cue
    (``TrackerOptions.reid``) is part of the time.

    Args:
        mode: ``"box"`` or ``"mask"`` association (masks are the boxes, filled, at 1/4 size).
        detections: detections per frame.
        frames: frames timed.
        size: (H, W) of the imagined frame.
        seed: seed of the boxes.
        reid: whether the tracker's colour cue is on (``TrackerOptions.reid``).

    Returns:
        The median time of one update, in milliseconds.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    wh = rng.uniform(20, 60, (detections, 2))
    xy = rng.uniform(0, 1, (detections, 2)) * (np.array([w, h]) - wh)
    vel = rng.uniform(-3, 3, (detections, 2))
    scores = rng.uniform(0.3, 1.0, detections).astype(np.float32)
    labels = rng.integers(0, 5, detections)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    tracker = Tracker(TrackerOptions(iou=mode, reid=reid))  # type: ignore[arg-type]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times = []
    try:
        for _ in range(frames):
            xy = np.clip(xy + vel, 0, np.array([w, h]) - wh)
            boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
            masks = None
            if mode == "mask":
                masks = np.zeros((detections, h // 4, w // 4), bool)
                for i, (x1, y1, x2, y2) in enumerate((boxes / 4).astype(int)):
                    masks[i, y1:y2, x1:x2] = True
            start = time.perf_counter()
            tracker.update(boxes, scores, labels, masks=masks, image_size=size, image=image)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return 1000.0 * statistics.median(times)


def sampling_cost(
    detections: int = 50, size: tuple[int, int] = (480, 640), runs: int = 20
) -> float:
    """Median ms of the stream tracker's mask sampling (``--track_iou=mask``), one thread.

    Args:
        detections: masks per frame (squares of 60 pixels spread over the frame).
        size: (H, W) of the frame.
        runs: times timed.

    Returns:
        The median time of one frame's sampling, in milliseconds.
    """
    from yolact.inference.tracking import small_masks

    h, w = size
    masks = torch.zeros((detections, h, w), dtype=torch.bool)
    boxes = torch.zeros((detections, 4))
    for i in range(detections):
        y, x = (i * 37) % max(h - 60, 1), (i * 53) % max(w - 60, 1)
        masks[i, y : y + 60, x : x + 60] = True
        boxes[i] = torch.tensor([x, y, x + 60, y + 60])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times = []
    try:
        for _ in range(runs):
            start = time.perf_counter()
            small_masks(masks, boxes)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return 1000.0 * statistics.median(times)
