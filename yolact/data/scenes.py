"""Synthetic instance-segmentation scenes: coloured shapes on varied backgrounds.

Shapes are drawn without anti-aliasing, later shapes on top of earlier ones, so
every mask is exactly the set of pixels where its object is visible. Options
(:class:`SceneOptions`) add data like users': rings (shapes with holes), objects
cut in two, scenes without objects, crowd regions, varied image sizes.
:mod:`yolact.data.synthetic` writes scenes as COCO-format datasets and videos.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

SYNTHETIC_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")

# Objects left with fewer visible pixels than this are dropped (drawn as background).
MIN_VISIBLE_PIXELS = 20
# Circumradius range of the shapes, relative to the shorter image side.
RADIUS_RANGE: tuple[float, float] = (0.08, 0.28)
_SHIFT = 4  # sub-pixel bits for OpenCV drawing: smooth motion in videos


@dataclass(frozen=True)
class SceneOptions:
    """Kinds of data beyond plain shapes on fixed-size images (all off by default).

    Attributes:
        sizes: (low, high) pixel range of each image side, drawn per image and per
            side (portrait and landscape images); None: every image has the one size.
        holes: probability that an object is a ring (a hole of its own shape at its
            centre); masks with holes are written as RLE.
        splits: probability that an object is cut in two by a straight gap.
        polygons: write the masks without holes as polygons, one ring per part (a
            split object becomes a multi-polygon); RLE otherwise.
        empty: probability that an image has no object and no annotation.
        crowd: probability that an image holds a crowd: a cluster of small shapes of
            one class under the objects, written as one ``iscrowd=1`` RLE annotation.
    """

    sizes: tuple[int, int] | None = None
    holes: float = 0.0
    splits: float = 0.0
    polygons: bool = False
    empty: float = 0.0
    crowd: float = 0.0

    def check(self) -> None:
        """Raise ``ValueError`` (one line) for an option out of range."""
        for name in ("holes", "splits", "empty", "crowd"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {value}")
        if self.sizes is not None and not 8 <= self.sizes[0] <= self.sizes[1]:
            raise ValueError(f"sizes must satisfy 8 <= low <= high, got {self.sizes}")


PLAIN = SceneOptions()
# Data like users' data: varied sizes and aspect ratios, rings, split objects,
# polygons, images without objects and crowd regions.
VARIED = SceneOptions(sizes=(96, 256), holes=0.25, splits=0.2, polygons=True, empty=0.1, crowd=0.3)


def _regular(n: int, start: float, radii: Sequence[float] = (1.0,)) -> np.ndarray:
    """[n, 2] vertices at angles start + 2*pi*k/n, radius cycling through ``radii``."""
    k = np.arange(n)
    r = np.asarray(radii)[k % len(radii)]
    a = start + 2 * math.pi * k / n
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


_A = 0.34  # half-width of the cross's arms, relative to its radius
_UNIT_POLYGONS: dict[str, np.ndarray] = {
    "square": _regular(4, math.pi / 4),
    "triangle": _regular(3, -math.pi / 2),
    "star": _regular(10, -math.pi / 2, radii=(1.0, 0.42)),
    "cross": np.array(
        [
            (-_A, -1),
            (_A, -1),
            (_A, -_A),
            (1, -_A),
            (1, _A),
            (_A, _A),
            (_A, 1),
            (-_A, 1),
            (-_A, _A),
            (-1, _A),
            (-1, -_A),
            (-_A, -_A),
        ],
        dtype=np.float64,
    ),  # fmt: skip
}


@dataclass(frozen=True)
class Shape:
    """One object of a scene.

    Attributes:
        label: index into ``SYNTHETIC_CLASSES``.
        center: (x, y) in pixels (may lie outside the image).
        radius: circumradius in pixels.
        angle: rotation in radians.
        colour: BGR colour at the centre; the object is shaded +-20% along ``angle``.
        hole: radius of a hole of the same shape at the centre, relative to ``radius``
            (a ring); 0 for none.
        gap: half-width of a cut through the centre along ``angle``, relative to
            ``radius``, that splits the object in two; 0 for none.
    """

    label: int
    center: tuple[float, float]
    radius: float
    angle: float = 0.0
    colour: tuple[int, int, int] = (255, 255, 255)
    hole: float = 0.0
    gap: float = 0.0


def _fill(canvas: np.ndarray, shape: Shape, radius: float, value: int) -> None:
    """Draw ``shape`` at circumradius ``radius`` into ``canvas`` [H, W] with ``value``."""
    scale = 1 << _SHIFT
    cx, cy = shape.center
    name = SYNTHETIC_CLASSES[shape.label]
    if name == "circle":
        centre = (round(cx * scale), round(cy * scale))
        cv2.circle(canvas, centre, round(radius * scale), value, -1, cv2.LINE_8, _SHIFT)
    else:
        c, s = math.cos(shape.angle), math.sin(shape.angle)
        rotation = np.array([[c, s], [-s, c]])
        pts = _UNIT_POLYGONS[name] @ rotation * radius + (cx, cy)  # [K, 2]
        pts = np.round(pts * scale).astype(np.int32)
        cv2.fillPoly(canvas, [pts], value, cv2.LINE_8, _SHIFT)


def shape_mask(shape: Shape, size: tuple[int, int]) -> np.ndarray:
    """Pixels covered by ``shape`` alone: bool [H, W] for ``size`` = (H, W)."""
    H, W = size
    canvas = np.zeros((H, W), dtype=np.uint8)
    _fill(canvas, shape, shape.radius, 1)
    if shape.hole > 0:
        _fill(canvas, shape, shape.radius * shape.hole, 0)
    if shape.gap > 0:
        ys, xs = np.mgrid[0:H, 0:W]
        cx, cy = shape.center
        across = (ys - cy) * math.cos(shape.angle) - (xs - cx) * math.sin(shape.angle)  # [H, W]
        canvas[np.abs(across) < shape.gap * shape.radius] = 0
    return canvas.astype(bool)


def render(
    background: np.ndarray, shapes: Sequence[Shape], min_pixels: int = MIN_VISIBLE_PIXELS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``shapes`` in order (later on top) over ``background``.

    Objects left with fewer than ``min_pixels`` visible pixels are dropped and their
    pixels show the background, so the masks cover exactly the visible objects.

    Args:
        background: uint8 [H, W, 3] BGR.
        shapes: objects, bottom first.
        min_pixels: smallest visible area kept.

    Returns:
        image: uint8 [H, W, 3]; masks: uint8 [N, H, W] (0/1, disjoint);
        labels: int64 [N], for the N kept shapes in drawing order.
    """
    image, masks, labels, _ = _render(background, shapes, min_pixels)
    return image, masks, labels


def _render(
    background: np.ndarray, shapes: Sequence[Shape], min_pixels: int = MIN_VISIBLE_PIXELS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`render`, also returning the index in ``shapes`` of each kept object ([N])."""
    H, W = background.shape[:2]
    owner = np.full((H, W), -1, dtype=np.int64)
    for k, shape in enumerate(shapes):
        owner[shape_mask(shape, (H, W))] = k
    visible = np.bincount(owner[owner >= 0], minlength=len(shapes))
    image = background.copy()
    ys, xs = np.mgrid[0:H, 0:W]
    masks, labels, kept = [], [], []
    for k, shape in enumerate(shapes):
        if visible[k] < min_pixels:
            continue
        kept.append(k)
        mask = owner == k
        cx, cy = shape.center
        along = (xs[mask] - cx) * math.cos(shape.angle) + (ys[mask] - cy) * math.sin(shape.angle)
        shade = 1.0 + 0.2 * np.clip(along / max(shape.radius, 1e-6), -1.0, 1.0)  # [P]
        colour = np.asarray(shape.colour, dtype=np.float64)
        image[mask] = np.clip(shade[:, None] * colour, 0, 255).astype(np.uint8)
        masks.append(mask)
        labels.append(shape.label)
    mask_array = np.stack(masks).astype(np.uint8) if masks else np.zeros((0, H, W), np.uint8)
    return image, mask_array, np.asarray(labels, dtype=np.int64), np.asarray(kept, dtype=np.int64)


def tight_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight boxes of masks [N, H, W]: float32 [N, 4] xyxy, x2/y2 one past the last pixel."""
    boxes = np.zeros((masks.shape[0], 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size:
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def random_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A random gradient, noise texture or stripe pattern: uint8 [H, W, 3]."""
    H, W = size
    kind = int(rng.integers(3))
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    theta = rng.uniform(0, 2 * math.pi)
    along = xs * math.cos(theta) + ys * math.sin(theta)  # [H, W]
    c0, c1 = rng.uniform(20, 235, size=(2, 3))
    if kind == 0:  # linear gradient
        t = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
        image = c0 * (1 - t[..., None]) + c1 * t[..., None]
    elif kind == 1:  # smooth noise texture
        cell = int(rng.integers(6, 20))
        coarse = rng.normal(0.0, 45.0, size=(H // cell + 2, W // cell + 2, 3))
        image = c0 + cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC)
    else:  # stripes
        period = rng.uniform(8, 32)
        band = (np.floor(along / (period / 2)) % 2)[..., None]  # [H, W, 1]
        image = c0 * band + c1 * (1 - band)
    image = image + rng.normal(0.0, 6.0, size=(H, W, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _far_colour(rng: np.random.Generator, avoid: np.ndarray) -> np.ndarray:
    """A random BGR colour [3] at L1 distance >= 150 from ``avoid`` (20 tries at most)."""
    colour = rng.integers(0, 256, size=3)
    for _ in range(20):
        if np.abs(colour - avoid).sum() >= 150:
            break
        colour = rng.integers(0, 256, size=3)
    return colour


def _bgr(colour: np.ndarray) -> tuple[int, int, int]:
    """A colour array [3] as a (B, G, R) tuple of ints."""
    b, g, r = (int(c) for c in colour)
    return b, g, r


def random_shape(
    rng: np.random.Generator,
    size: tuple[int, int],
    avoid: np.ndarray,
    radius_range: tuple[float, float] = RADIUS_RANGE,
    options: SceneOptions = PLAIN,
) -> Shape:
    """A shape of random class, size, position, rotation and a colour far from ``avoid``;
    a ring or cut in two with the probabilities of ``options``."""
    H, W = size
    label = int(rng.integers(len(SYNTHETIC_CLASSES)))
    radius = max(float(rng.uniform(*radius_range)) * min(H, W), 4.0)
    center = (float(rng.uniform(0.1, 0.9) * W), float(rng.uniform(0.1, 0.9) * H))
    angle = float(rng.uniform(0, 2 * math.pi))
    colour = _far_colour(rng, avoid)
    hole = gap = 0.0
    if options.holes > 0 and rng.random() < options.holes:
        hole = float(rng.uniform(0.35, 0.6))
    elif options.splits > 0 and rng.random() < options.splits:
        gap = max(float(rng.uniform(0.08, 0.16)), 1.5 / radius)  # at least 3 px wide
    return Shape(label, center, radius, angle, _bgr(colour), hole, gap)


def _crowd_shapes(
    rng: np.random.Generator, size: tuple[int, int], avoid: np.ndarray
) -> list[Shape]:
    """4-8 small shapes of one class and similar colour, clustered around a point."""
    H, W = size
    side = min(H, W)
    label = int(rng.integers(len(SYNTHETIC_CLASSES)))
    count = int(rng.integers(4, 9))
    centre = rng.uniform(0.25, 0.75, size=2) * (W, H)
    colour = _far_colour(rng, avoid)
    shapes = []
    for _ in range(count):
        x, y = centre + rng.normal(0.0, 0.12 * side, size=2)
        tint = np.clip(colour + rng.integers(-25, 26, size=3), 0, 255)
        radius = max(float(rng.uniform(0.05, 0.08)) * side, 4.0)
        angle = float(rng.uniform(0, 2 * math.pi))
        colour_k = _bgr(tint)
        shapes.append(Shape(label, (float(x), float(y)), radius, angle, colour_k))
    return shapes


def check_radius_range(radius_range: tuple[float, float]) -> None:
    """Raise ``ValueError`` unless 0 < low <= high."""
    lo, hi = radius_range
    if not 0 < lo <= hi:
        raise ValueError(f"radius range must satisfy 0 < low <= high, got {radius_range}")


def make_scene(
    rng: np.random.Generator,
    size: tuple[int, int] = (160, 160),
    max_objects: int = 5,
    radius_range: tuple[float, float] = RADIUS_RANGE,
    options: SceneOptions = PLAIN,
) -> dict[str, Any]:
    """A random scene of 1..max_objects overlapping shapes, as a sample dict.

    Args:
        rng: the random generator (the scene is a function of its state).
        size: (H, W) of the image.
        max_objects: most objects drawn; occluded ones may be dropped, at least one
            stays (none in an empty scene of ``options``).
        radius_range: shape circumradius range relative to the shorter side.
        options: rings, split objects, empty scenes and crowds (``sizes`` and
            ``polygons`` concern :func:`write_coco_dataset`).

    Returns:
        A sample: ``image`` uint8 [H, W, 3] BGR, ``boxes`` float32 [N, 4] tight xyxy,
        ``labels`` int64 [N] into ``SYNTHETIC_CLASSES``, ``masks`` uint8 [N, H, W],
        ``crowd_boxes`` [M, 4] / ``crowd_masks`` [M, H, W] (M is 0 or 1), ``image_id`` 0,
        ``file_name`` "", ``height``, ``width``.
    """
    return scene_with_crowds(rng, size, max_objects, radius_range, options)[0]


def scene_with_crowds(
    rng: np.random.Generator,
    size: tuple[int, int],
    max_objects: int,
    radius_range: tuple[float, float],
    options: SceneOptions,
) -> tuple[dict[str, Any], list[int]]:
    """:func:`make_scene` and the label of each crowd region."""
    if max_objects < 1:
        raise ValueError(f"max_objects must be >= 1, got {max_objects}")
    check_radius_range(radius_range)
    options.check()
    H, W = size
    background = random_background(rng, (H, W))
    mean = background.reshape(-1, 3).mean(axis=0)
    empty = options.empty > 0 and rng.random() < options.empty
    crowd: list[Shape] = []
    if not empty and options.crowd > 0 and rng.random() < options.crowd:
        crowd = _crowd_shapes(rng, (H, W), mean)
    for _ in range(10):
        n = 0 if empty else int(rng.integers(1, max_objects + 1))
        shapes = [random_shape(rng, (H, W), mean, radius_range, options) for _ in range(n)]
        image, masks, labels, kept = _render(background, crowd + shapes)
        instance = kept >= len(crowd)  # [N + crowd members kept]
        if empty or instance.any():
            break
    members = masks[~instance]  # the crowd's shapes that stayed visible
    if len(members):
        crowd_masks, crowd_labels = members.max(axis=0, keepdims=True), [crowd[0].label]
    else:
        crowd_masks, crowd_labels = np.zeros((0, H, W), dtype=np.uint8), []
    return {
        "image": image,
        "boxes": tight_boxes(masks[instance]),
        "labels": labels[instance],
        "masks": masks[instance],
        "crowd_boxes": tight_boxes(crowd_masks),
        "crowd_masks": crowd_masks,
        "image_id": 0,
        "file_name": "",
        "height": H,
        "width": W,
    }, crowd_labels


def synthetic_frames(
    count: int, height: int = 480, width: int = 640, seed: int = 0
) -> list[np.ndarray]:
    """``count`` BGR uint8 frames of six random filled circles and rectangles on a
    horizontal grey gradient, for benchmarks and checks that need frames but no
    inputs (no labels: :func:`make_scene` draws annotated scenes).

    Args:
        count: frames returned.
        height: their height.
        width: their width.
        seed: the frames are a function of the arguments.
    """
    rng = np.random.default_rng(seed)
    frames = []
    base = np.linspace(40, 200, width, dtype=np.float32)[None, :, None]
    for _ in range(count):
        img = np.broadcast_to(base, (height, width, 3)).astype(np.uint8).copy()
        for _ in range(6):
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
            r = int(rng.integers(20, min(height, width) // 3))
            if rng.random() < 0.5:
                cv2.circle(img, (cx, cy), r, color, -1)
            else:
                cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), color, -1)
        frames.append(img)
    return frames
