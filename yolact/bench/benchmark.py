"""Stage-by-stage timing of a predictor: pre-processing, network, post-processing.

The stages are the predictor interface's (:class:`yolact.core.predictor.Predictor`),
the same for every family: images to the input batch on the device; the network
to raw detections after every NMS, masks at the model's resolution; those to
:class:`~yolact.core.structures.Detections` at the image size.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from yolact.core.predictor import Predictor


class StageTotals:
    """``total_ms`` and ``fps`` of a result with ``pre_ms``, ``network_ms`` and ``post_ms``."""

    pre_ms: float
    network_ms: float
    post_ms: float

    @property
    def total_ms(self) -> float:
        return self.pre_ms + self.network_ms + self.post_ms

    @property
    def fps(self) -> float:
        """Frames (images) per second over all three stages."""
        return 1000.0 / self.total_ms if self.total_ms > 0 else float("inf")


@dataclass
class BenchmarkResult(StageTotals):
    """Mean milliseconds per frame of each stage, over the timed frames."""

    config: str
    device: str
    batch_size: int
    frames: int
    image_size: tuple[int, int]
    pre_ms: float
    network_ms: float
    post_ms: float

    def as_dict(self) -> dict:
        return {**asdict(self), "total_ms": self.total_ms, "fps": self.fps}

    def table(self) -> str:
        """A small printed table."""
        rows = [
            ("pre-processing", self.pre_ms),
            ("network", self.network_ms),
            ("post-processing", self.post_ms),
            ("total", self.total_ms),
        ]
        H, W = self.image_size
        lines = [
            f"{self.config} on {self.device}, batch {self.batch_size}, {self.frames} frames "
            f"of {W}x{H} (warm-up excluded)",
            f"{'stage':<16} {'ms/frame':>9}",
        ]
        lines += [f"{name:<16} {ms:>9.2f}" for name, ms in rows]
        lines.append(f"{'FPS':<16} {self.fps:>9.2f}")
        return "\n".join(lines)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def run_benchmark(
    predictor: Predictor, frames: Sequence[np.ndarray], warmup: int = 3, batch_size: int = 1
) -> BenchmarkResult:
    """Time each stage over ``frames`` (BGR uint8), after ``warmup`` untimed batches.

    The device is synchronised around every stage so each one is charged its own work.
    """
    if not frames:
        raise ValueError("no frames to benchmark")
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    device = predictor.device
    batches = [list(frames[i : i + batch_size]) for i in range(0, len(frames), batch_size)]
    for i in range(warmup):
        batch = batches[i % len(batches)]
        predictor.run_post(
            predictor.run_network(predictor.run_pre(batch)), [f.shape[:2] for f in batch]
        )
    _sync(device)
    totals = np.zeros(3)
    for batch in batches:
        t0 = time.perf_counter()
        x = predictor.run_pre(batch)
        _sync(device)
        t1 = time.perf_counter()
        out = predictor.run_network(x)
        _sync(device)
        t2 = time.perf_counter()
        predictor.run_post(out, [f.shape[:2] for f in batch])
        _sync(device)
        t3 = time.perf_counter()
        totals += (t1 - t0, t2 - t1, t3 - t2)
    per_frame = totals * 1000.0 / len(frames)
    return BenchmarkResult(
        config=predictor.cfg.name,
        device=str(device),
        batch_size=batch_size,
        frames=len(frames),
        image_size=tuple(frames[0].shape[:2]),
        pre_ms=float(per_frame[0]),
        network_ms=float(per_frame[1]),
        post_ms=float(per_frame[2]),
    )
