"""Synthetic video clips with ground-truth identities, for scoring trackers.

A clip is a fixed background (:func:`~yolact.data.scenes.random_background`) over
which shapes of :mod:`yolact.data.scenes` move with constant velocity, turn, bounce
off the frame edges, cross and occlude each other (draw order is depth: later
objects hide earlier ones). Some objects enter late and leave early. Each frame's
ground truth holds, for every visible object, its id (stable for the object, never
given to another one), class, tight box and the mask of its visible pixels. An
object with fewer than ``min_pixels`` visible pixels in a frame (fully hidden ones
included) is absent from that frame's ground truth and drawn as background.

:func:`write_clip` writes a folder::

    clip.avi    the frames, MJPG, at the clip's frame rate
    gt.txt      the ground truth in MOTS txt format (see :func:`write_mots`)
    clip.json   the clip's options (``ClipOptions`` fields) and ``fps``

and :func:`read_mots` reads ``gt.txt`` back, masks equal bit for bit.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from yolact.data.scenes import (
    MIN_VISIBLE_PIXELS,
    SYNTHETIC_CLASSES,
    Shape,
    _render,
    random_background,
    random_shape,
    tight_boxes,
)

__all__ = [
    "Clip",
    "ClipOptions",
    "FrameTruth",
    "Track",
    "make_clip",
    "read_mots",
    "track_shapes",
    "write_clip",
    "write_mots",
]


@dataclass(frozen=True)
class ClipOptions:
    """What :func:`make_clip` draws.

    Attributes:
        frames: number of frames.
        size: (H, W) of the frames.
        fps: frame rate of the clip (stored with it and in its video).
        objects: number of objects (tracks) in the clip.
        speed_range: (low, high) speed of the objects in shorter-side lengths per
            second; per frame an object moves ``speed * min(H, W) / fps`` pixels.
        radius_range: (low, high) circumradius of the shapes relative to the shorter
            side; high is at most 0.5 so that an object fits in the frame.
        seed: the clip is a function of the options.
        late_entry: probability that an object first appears after frame 0.
        early_exit: probability that an object leaves before the last frame.
        min_pixels: fewest visible pixels for an object to be in a frame's truth.
    """

    frames: int = 20
    size: tuple[int, int] = (96, 128)
    fps: float = 15.0
    objects: int = 4
    speed_range: tuple[float, float] = (0.1, 0.6)
    radius_range: tuple[float, float] = (0.08, 0.2)
    seed: int = 0
    late_entry: float = 0.3
    early_exit: float = 0.3
    min_pixels: int = MIN_VISIBLE_PIXELS

    def check(self) -> None:
        """Raise ``ValueError`` (one line) for an option out of range."""
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if min(self.size) < 8:
            raise ValueError(f"size sides must be >= 8, got {self.size}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.objects < 0:
            raise ValueError(f"objects must be >= 0, got {self.objects}")
        if not 0 <= self.speed_range[0] <= self.speed_range[1]:
            raise ValueError(f"speed_range must satisfy 0 <= low <= high, got {self.speed_range}")
        if not 0 < self.radius_range[0] <= self.radius_range[1] <= 0.5:
            raise ValueError(
                f"radius_range must satisfy 0 < low <= high <= 0.5, got {self.radius_range}"
            )
        for name in ("late_entry", "early_exit"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {value}")
        if self.min_pixels < 1:
            raise ValueError(f"min_pixels must be >= 1, got {self.min_pixels}")


@dataclass(frozen=True)
class Track:
    """One object of a clip: where it is at its first frame and how it moves.

    Attributes:
        object_id: the object's id in the ground truth (unique within the clip).
        shape: the object at frame ``start``.
        velocity: (vx, vy) in pixels per frame.
        start: first frame the object is present.
        end: one past its last frame.
        spin: rotation in radians per frame.
    """

    object_id: int
    shape: Shape
    velocity: tuple[float, float]
    start: int
    end: int
    spin: float = 0.0


@dataclass
class FrameTruth:
    """Ground truth of one frame, objects in drawing order (bottom first).

    Attributes:
        ids: int64 [N] object ids.
        labels: int64 [N] indices into ``SYNTHETIC_CLASSES``.
        boxes: float32 [N, 4] tight xyxy boxes of the visible masks (x2/y2 one past).
        masks: bool [N, H, W] visible pixels, disjoint.
    """

    ids: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray


@dataclass
class Clip:
    """A generated clip.

    Attributes:
        frames: BGR uint8 [H, W, 3] images.
        truth: per frame, its ground truth.
        fps: the clip's frame rate.
        options: the options it was made with.
        tracks: its objects, in drawing order (bottom first).
        shapes: per frame, the full (unoccluded) shape of each present object by id.
    """

    frames: list[np.ndarray]
    truth: list[FrameTruth]
    fps: float
    options: ClipOptions
    tracks: list[Track] = field(default_factory=list)
    shapes: list[dict[int, Shape]] = field(default_factory=list)


def _reflect(x: float, v: float, low: float, high: float) -> tuple[float, float]:
    """Position ``x`` and velocity ``v`` after bouncing into [low, high]."""
    if high <= low:
        return (low + high) / 2, 0.0
    while not low <= x <= high:
        if x < low:
            x, v = 2 * low - x, -v
        else:
            x, v = 2 * high - x, -v
    return x, v


def track_shapes(track: Track, size: tuple[int, int], frames: int) -> list[Shape | None]:
    """The object's shape in each of ``frames`` frames (None where it is absent).

    From frame ``start`` on, the centre moves by the velocity each frame and bounces
    off the edges so that the circumscribed circle stays inside the frame: the centre
    is reflected into [r, W - r] x [r, H - r] and the velocity component reversed.
    """
    H, W = size
    out: list[Shape | None] = [None] * frames
    shape = track.shape
    r = shape.radius
    x, vx = _reflect(shape.center[0], track.velocity[0], r, W - r)
    y, vy = _reflect(shape.center[1], track.velocity[1], r, H - r)
    angle = shape.angle
    for t in range(max(track.start, 0), min(track.end, frames)):
        out[t] = replace(shape, center=(x, y), angle=angle)
        x, vx = _reflect(x + vx, vx, r, W - r)
        y, vy = _reflect(y + vy, vy, r, H - r)
        angle += track.spin
    return out


def _random_tracks(rng: np.random.Generator, options: ClipOptions, mean: np.ndarray) -> list[Track]:
    """``options.objects`` random tracks with ids 1, 2, ... in drawing order."""
    H, W = options.size
    side = min(H, W)
    tracks = []
    for k in range(options.objects):
        shape = random_shape(rng, (H, W), mean, options.radius_range)
        r = min(shape.radius, side / 2)
        center = (float(rng.uniform(r, W - r)), float(rng.uniform(r, H - r)))
        shape = replace(shape, radius=r, center=center)
        speed = float(rng.uniform(*options.speed_range)) * side / options.fps
        heading = float(rng.uniform(0, 2 * math.pi))
        spin = float(rng.uniform(-0.08, 0.08))
        late, early = rng.random(2)
        n = options.frames
        start = int(rng.integers(1, n // 2 + 1)) if late < options.late_entry and n > 1 else 0
        end = n
        if early < options.early_exit and n - start > 1:
            end = int(rng.integers(max(start + 1, n // 2), n))
        velocity = (speed * math.cos(heading), speed * math.sin(heading))
        tracks.append(Track(k + 1, shape, velocity, start, end, spin))
    return tracks


def make_clip(options: ClipOptions, tracks: list[Track] | None = None) -> Clip:
    """Draw a clip and its ground truth.

    Args:
        options: what to draw (checked first).
        tracks: explicit objects in drawing order (bottom first), for hand-built
            cases; None: ``options.objects`` random ones. The background is drawn
            from ``options.seed`` either way.

    Returns:
        The clip; its frames and truth are a function of the arguments.
    """
    options.check()
    H, W = options.size
    rng = np.random.default_rng(options.seed)
    background = random_background(rng, (H, W))
    mean = background.reshape(-1, 3).mean(axis=0)
    if tracks is None:
        tracks = _random_tracks(rng, options, mean)
    ids = [t.object_id for t in tracks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"track object ids must be unique, got {ids}")
    paths = [track_shapes(t, (H, W), options.frames) for t in tracks]
    clip = Clip([], [], float(options.fps), options, list(tracks), [])
    for f in range(options.frames):
        present = [(t.object_id, p[f]) for t, p in zip(tracks, paths) if p[f] is not None]
        shapes = [s for _, s in present if s is not None]
        image, masks, labels, kept = _render(background, shapes, options.min_pixels)
        frame_ids = np.asarray([present[k][0] for k in kept], dtype=np.int64)
        clip.frames.append(image)
        clip.truth.append(FrameTruth(frame_ids, labels, tight_boxes(masks), masks.astype(bool)))
        clip.shapes.append({i: s for i, s in present if s is not None})
    return clip


def write_mots(truth: list[FrameTruth], path: str, size: tuple[int, int], first: int = 0) -> None:
    """Write ground truth (or tracker output) in MOTS txt format.

    One line per object per frame, frames in order, objects in drawing order::

        frame_index object_id class_id height width rle

    (the MOTS txt layout ``time_frame id class_id img_height img_width rle``).
    ``frame_index`` counts from ``first`` (0 as in KITTI MOTS; MOTSChallenge counts
    from 1). ``object_id`` is the object's id as is: the MOTS datasets' own ids are
    ``class_id * 1000 + instance`` (10000 an ignore region), a convention this file
    does not follow, so a scorer that derives the class from the id must be given
    ``class_id`` instead. ``class_id`` is the label + 1 (1..5 for
    ``SYNTHETIC_CLASSES``; MOTS keeps 10 for ignore regions), ``height``
    and ``width`` are the frame's, and ``rle`` is the mask's COCO compressed RLE
    (``pycocotools.mask.encode`` of the Fortran-ordered uint8 mask, its ``counts``
    as ASCII text). Masks within a frame must not overlap. The file is written
    beside ``path`` and moved into place when complete.

    Args:
        truth: per frame, the objects.
        path: the text file written.
        size: (H, W) of the frames.
        first: index of the first frame.
    """
    H, W = size
    lines = []
    for f, frame in enumerate(truth):
        for obj_id, label, mask in zip(frame.ids, frame.labels, frame.masks):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            counts = rle["counts"].decode("ascii")
            lines.append(f"{f + first} {int(obj_id)} {int(label) + 1} {H} {W} {counts}\n")
    _write_text(path, "".join(lines))


def _write_text(path: str, text: str) -> None:
    """Write ``text`` beside ``path``, then move it into place."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="ascii") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_mots(path: str, frames: int | None = None, first: int = 0) -> list[FrameTruth]:
    """Read a MOTS txt file (:func:`write_mots`'s format) as per-frame truth.

    Args:
        path: the text file.
        frames: number of frames returned; None: up to the last frame in the file.
        first: index of the first frame in the file's numbering.

    Returns:
        Per frame, the objects in file order; ``labels`` are ``class_id - 1``,
        ``boxes`` the masks' tight boxes. Frames without lines have no objects
        (masks [0, H, W], with H and W from the file, 0 x 0 for an empty file).

    Raises:
        ValueError: a line that is not six fields, or a frame index out of range.
    """
    rows: list[tuple[int, int, int, np.ndarray]] = []
    H = W = 0
    with open(path, encoding="ascii") as handle:
        for n, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise ValueError(f"{path}:{n}: expected 6 fields, got {len(parts)}")
            t, obj_id, cls, H, W = (int(v) for v in parts[:5])
            rle = {"size": [H, W], "counts": parts[5].encode("ascii")}
            mask = mask_utils.decode(rle).astype(bool)
            if t - first < 0 or (frames is not None and t - first >= frames):
                raise ValueError(f"{path}:{n}: frame index {t} out of range")
            rows.append((t - first, obj_id, cls - 1, mask))
    count = frames if frames is not None else max((r[0] for r in rows), default=-1) + 1
    out = []
    for f in range(count):
        mine = [r for r in rows if r[0] == f]
        masks = np.stack([r[3] for r in mine]) if mine else np.zeros((0, H, W), dtype=bool)
        out.append(
            FrameTruth(
                np.asarray([r[1] for r in mine], dtype=np.int64),
                np.asarray([r[2] for r in mine], dtype=np.int64),
                tight_boxes(masks),
                masks,
            )
        )
    return out


def write_clip(clip: Clip, folder: str) -> dict[str, str]:
    """Write ``clip.avi``, ``gt.txt`` (MOTS) and ``clip.json`` into ``folder``.

    Each file is written beside its target and moved into place when complete.

    Returns:
        Paths of the written files: ``video``, ``gt``, ``info``.
    """
    os.makedirs(folder, exist_ok=True)
    H, W = clip.options.size
    video = os.path.join(folder, "clip.avi")
    tmp = os.path.join(folder, "clip.tmp.avi")
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter.fourcc(*"MJPG"), clip.fps, (W, H))
    try:
        if not writer.isOpened():
            raise OSError(f"cannot open a video writer for {video}")
        for frame in clip.frames:
            writer.write(frame)
        writer.release()
        os.replace(tmp, video)
    finally:
        writer.release()
        if os.path.exists(tmp):
            os.remove(tmp)
    gt = os.path.join(folder, "gt.txt")
    write_mots(clip.truth, gt, (H, W))
    info = os.path.join(folder, "clip.json")
    meta = {"options": asdict(clip.options), "fps": clip.fps, "classes": list(SYNTHETIC_CLASSES)}
    _write_text(info, json.dumps(meta, indent=2) + "\n")
    return {"video": video, "gt": gt, "info": info}
