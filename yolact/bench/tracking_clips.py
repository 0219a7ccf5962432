"""The generated clips the tracking benchmark scores.

Two styles of objects:

- ``"demo"`` (the default): shapes like the demo model's training data
  (:mod:`yolact.demo`: circumradius 14-30% of the shorter side, up to 3 objects), 2 or
  3 per clip, moving at varied speeds and frame rates, bouncing, crossing and
  occluding, some entering late and leaving early. The demo-trained ``yolact_tiny``
  has seen such objects, still, never moving.
- ``"small"``: 3 to 5 smaller shapes (8-20% of the side), smaller and more crowded
  than anything the demo model was trained on.

:func:`crossing_clips` makes clips in which every object passes through one point
at about the same frame, so that they cross and occlude each other there: the
subset where identities are hardest to keep.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from yolact.data.clips import Clip, ClipOptions, Track, make_clip
from yolact.data.scenes import random_background, random_shape

__all__ = ["CLIP_STYLES", "bench_clips", "crossing_clips"]

CLIP_STYLES = ("demo", "small")
_RATES = (10.0, 15.0, 25.0, 30.0)
_SPEEDS = ((0.1, 0.4), (0.2, 0.6), (0.3, 0.9))  # shorter sides per second
_RADII = {"demo": (0.14, 0.3), "small": (0.08, 0.2)}  # demo: yolact.demo.RADIUS_RANGE
_LEAD = 6  # frames the crossing objects are seen before they meet, at least


def _options(i: int, frames: int, seed: int, size: tuple[int, int], style: str) -> ClipOptions:
    if style not in CLIP_STYLES:
        raise ValueError(f"clip style must be one of {', '.join(CLIP_STYLES)}, got {style!r}")
    return ClipOptions(
        frames=frames,
        size=size,
        fps=_RATES[i % len(_RATES)],
        objects=2 + i % 2 if style == "demo" else 3 + i % 3,
        speed_range=_SPEEDS[i % len(_SPEEDS)],
        radius_range=_RADII[style],
        seed=seed + i,
    )


def bench_clips(
    count: int,
    frames: int,
    seed: int = 0,
    size: tuple[int, int] = (160, 160),
    style: str = "demo",
) -> list[Clip]:
    """Generate ``count`` clips with varied seeds, frame rates, speeds and crowding.

    Args:
        count: number of clips.
        frames: frames per clip.
        seed: seed of the first clip; clip ``i`` uses ``seed + i``.
        size: (H, W) of the frames.
        style: ``"demo"`` or ``"small"`` objects (see the module).

    Returns:
        The clips.

    Raises:
        ValueError: an unknown style.
    """
    return [make_clip(_options(i, frames, seed, size, style)) for i in range(count)]


def _room(point: tuple[float, float], d: tuple[float, float], r: float, size: tuple[int, int]
          ) -> float:  # fmt: skip
    """How far back from ``point`` along direction ``-d`` a circle of radius ``r`` stays
    inside a frame of ``size`` (H, W)."""
    H, W = size
    out = 1e9
    for p, v, hi in ((point[0], d[0], W), (point[1], d[1], H)):
        if v > 1e-6:
            out = min(out, (p - r) / v)
        elif v < -1e-6:
            out = min(out, (hi - r - p) / -v)
    return max(out, 0.0)


def _crossing_tracks(options: ClipOptions, rng: np.random.Generator) -> list[Track]:
    """``options.objects`` objects whose paths meet at one point in the middle frame."""
    H, W = options.size
    side = min(H, W)
    background = random_background(np.random.default_rng(options.seed), (H, W))
    mean = background.reshape(-1, 3).mean(axis=0)
    meet = (float(rng.uniform(0.4, 0.6) * W), float(rng.uniform(0.4, 0.6) * H))
    first = float(rng.uniform(0, 2 * math.pi))
    plans = []
    for k in range(options.objects):
        shape = random_shape(rng, (H, W), mean, options.radius_range)
        r = min(shape.radius, side / 2 - 1)
        heading = first + 2 * math.pi * k / options.objects + float(rng.uniform(-0.4, 0.4))
        d = (math.cos(heading), math.sin(heading))
        speed = float(rng.uniform(*options.speed_range)) * side / options.fps
        plans.append((replace(shape, radius=r), d, speed, _room(meet, d, r, (H, W))))
    # Every object needs >= _LEAD frames from its start to the meeting point, all start
    # together; a speed is lowered where its object would otherwise start outside.
    middle = options.frames // 2
    lead = min(middle, max(_LEAD, min(int(room / max(v, 1e-9)) for _, _, v, room in plans)))
    tracks = []
    for k, (shape, d, speed, room) in enumerate(plans):
        speed = min(speed, room / max(lead, 1))
        start = (meet[0] - d[0] * speed * lead, meet[1] - d[1] * speed * lead)
        spin = float(rng.uniform(-0.05, 0.05))
        tracks.append(Track(k + 1, replace(shape, center=start), (speed * d[0], speed * d[1]),
                            middle - lead, options.frames, spin))  # fmt: skip
    return tracks


def crossing_clips(
    count: int,
    frames: int,
    seed: int = 0,
    size: tuple[int, int] = (160, 160),
    style: str = "demo",
) -> list[Clip]:
    """Clips whose 2 or 3 objects all cross one point in the middle frame.

    The objects appear together (at least 6 frames before the middle one) and head
    for a random point near the frame's centre, each from its own direction (spread
    evenly around the circle, jittered), all reaching it in the middle frame, so they
    overlap and the later-drawn ones hide the earlier ones; then they go on and
    bounce off the edges. Frame rates and speeds vary as in :func:`bench_clips`
    (a speed is lowered where its object would otherwise start outside the frame);
    sizes are the smaller 40% of the style's range, to leave the objects room to move.

    Args:
        count: number of clips.
        frames: frames per clip.
        seed: seed of the first clip; clip ``i`` uses ``seed + i``.
        size: (H, W) of the frames.
        style: ``"demo"`` or ``"small"`` objects (see the module).

    Returns:
        The clips.
    """
    clips = []
    for i in range(count):
        options = replace(_options(i, frames, seed, size, style), objects=2 + i % 2)
        low, high = options.radius_range  # the smaller part of the range: room to move
        options = replace(options, radius_range=(low, low + 0.4 * (high - low)))
        rng = np.random.default_rng([seed + i, 7])
        clips.append(make_clip(options, _crossing_tracks(options, rng)))
    return clips
