"""Synthetic instance-segmentation scenes: coloured shapes on varied backgrounds.

Shapes are drawn without anti-aliasing, later shapes on top of earlier ones, so
every mask is exactly the set of pixels where its object is visible. Used to make
small COCO-format datasets and videos for tests, demos and smoke training runs.

CLI::

    python -m yolact.data.synthetic --out data/synthetic --train 200 --val 50 \\
        --size 160 --video data/synthetic/demo.mp4
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

SYNTHETIC_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")

# Objects left with fewer visible pixels than this are dropped (drawn as background).
MIN_VISIBLE_PIXELS = 20
# Circumradius range of the shapes, relative to the shorter image side.
RADIUS_RANGE: tuple[float, float] = (0.08, 0.28)
_SHIFT = 4  # sub-pixel bits for OpenCV drawing: smooth motion in videos


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
    """

    label: int
    center: tuple[float, float]
    radius: float
    angle: float = 0.0
    colour: tuple[int, int, int] = (255, 255, 255)


def shape_mask(shape: Shape, size: tuple[int, int]) -> np.ndarray:
    """Pixels covered by ``shape`` alone: bool [H, W] for ``size`` = (H, W)."""
    H, W = size
    canvas = np.zeros((H, W), dtype=np.uint8)
    scale = 1 << _SHIFT
    cx, cy = shape.center
    name = SYNTHETIC_CLASSES[shape.label]
    if name == "circle":
        centre = (round(cx * scale), round(cy * scale))
        cv2.circle(canvas, centre, round(shape.radius * scale), 1, -1, cv2.LINE_8, _SHIFT)
    else:
        c, s = math.cos(shape.angle), math.sin(shape.angle)
        rotation = np.array([[c, s], [-s, c]])
        pts = _UNIT_POLYGONS[name] @ rotation * shape.radius + (cx, cy)  # [K, 2]
        pts = np.round(pts * scale).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 1, cv2.LINE_8, _SHIFT)
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
    H, W = background.shape[:2]
    owner = np.full((H, W), -1, dtype=np.int64)
    for k, shape in enumerate(shapes):
        owner[shape_mask(shape, (H, W))] = k
    visible = np.bincount(owner[owner >= 0], minlength=len(shapes))
    image = background.copy()
    ys, xs = np.mgrid[0:H, 0:W]
    masks, labels = [], []
    for k, shape in enumerate(shapes):
        if visible[k] < min_pixels:
            continue
        mask = owner == k
        cx, cy = shape.center
        along = (xs[mask] - cx) * math.cos(shape.angle) + (ys[mask] - cy) * math.sin(shape.angle)
        shade = 1.0 + 0.2 * np.clip(along / max(shape.radius, 1e-6), -1.0, 1.0)  # [P]
        colour = np.asarray(shape.colour, dtype=np.float64)
        image[mask] = np.clip(shade[:, None] * colour, 0, 255).astype(np.uint8)
        masks.append(mask)
        labels.append(shape.label)
    mask_array = np.stack(masks).astype(np.uint8) if masks else np.zeros((0, H, W), np.uint8)
    return image, mask_array, np.asarray(labels, dtype=np.int64)


def tight_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight boxes of masks [N, H, W]: float32 [N, 4] xyxy, x2/y2 one past the last pixel."""
    boxes = np.zeros((masks.shape[0], 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size:
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def _background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
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


def _random_shape(
    rng: np.random.Generator,
    size: tuple[int, int],
    avoid: np.ndarray,
    radius_range: tuple[float, float] = RADIUS_RANGE,
) -> Shape:
    """A shape of random class, size, position, rotation and a colour far from ``avoid``."""
    H, W = size
    label = int(rng.integers(len(SYNTHETIC_CLASSES)))
    radius = max(float(rng.uniform(*radius_range)) * min(H, W), 4.0)
    center = (float(rng.uniform(0.1, 0.9) * W), float(rng.uniform(0.1, 0.9) * H))
    angle = float(rng.uniform(0, 2 * math.pi))
    colour = rng.integers(0, 256, size=3)
    for _ in range(20):
        if np.abs(colour - avoid).sum() >= 150:
            break
        colour = rng.integers(0, 256, size=3)
    return Shape(label, center, radius, angle, tuple(int(c) for c in colour))


def _check_radius_range(radius_range: tuple[float, float]) -> None:
    lo, hi = radius_range
    if not 0 < lo <= hi:
        raise ValueError(f"radius range must satisfy 0 < low <= high, got {radius_range}")


def make_scene(
    rng: np.random.Generator,
    size: tuple[int, int] = (160, 160),
    max_objects: int = 5,
    radius_range: tuple[float, float] = RADIUS_RANGE,
) -> dict[str, Any]:
    """A random scene of 1..max_objects overlapping shapes, as a sample dict.

    Args:
        rng: the random generator (the scene is a function of its state).
        size: (H, W) of the image.
        max_objects: most objects drawn; occluded ones may be dropped, at least one stays.
        radius_range: shape circumradius range relative to the shorter side.

    Returns:
        A sample: ``image`` uint8 [H, W, 3] BGR, ``boxes`` float32 [N, 4] tight xyxy,
        ``labels`` int64 [N] into ``SYNTHETIC_CLASSES``, ``masks`` uint8 [N, H, W],
        empty ``crowd_boxes`` [0, 4] / ``crowd_masks`` [0, H, W], ``image_id`` 0,
        ``file_name`` "", ``height``, ``width``.
    """
    if max_objects < 1:
        raise ValueError(f"max_objects must be >= 1, got {max_objects}")
    _check_radius_range(radius_range)
    H, W = size
    background = _background(rng, (H, W))
    mean = background.reshape(-1, 3).mean(axis=0)
    for _ in range(10):
        n = int(rng.integers(1, max_objects + 1))
        image, masks, labels = render(
            background, [_random_shape(rng, (H, W), mean, radius_range) for _ in range(n)]
        )
        if len(labels):
            break
    return {
        "image": image,
        "boxes": tight_boxes(masks),
        "labels": labels,
        "masks": masks,
        "crowd_boxes": np.zeros((0, 4), dtype=np.float32),
        "crowd_masks": np.zeros((0, H, W), dtype=np.uint8),
        "image_id": 0,
        "file_name": "",
        "height": H,
        "width": W,
    }


def write_coco_dataset(
    root: str,
    num_train: int = 200,
    num_val: int = 50,
    size: tuple[int, int] = (160, 160),
    seed: int = 0,
    max_objects: int = 5,
    radius_range: tuple[float, float] = RADIUS_RANGE,
) -> dict[str, str]:
    """Write a COCO-format synthetic dataset.

    Layout: ``root/train/000001.png ...``, ``root/val/...``, ``root/annotations/train.json``
    and ``val.json`` (category ids 1..C in ``SYNTHETIC_CLASSES`` order, compressed RLE
    masks). The images of split ``s`` (0 train, 1 val) are successive ``make_scene``
    draws from ``np.random.default_rng([seed, s])``, so the output is a function of
    the arguments.

    Returns:
        Paths: ``train_ann_file``, ``train_image_dir``, ``val_ann_file``, ``val_image_dir``.
    """
    H, W = size
    categories = [
        {"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(SYNTHETIC_CLASSES)
    ]
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    paths: dict[str, str] = {}
    for split_index, (split, count) in enumerate((("train", num_train), ("val", num_val))):
        rng = np.random.default_rng([seed, split_index])
        image_dir = os.path.join(root, split)
        os.makedirs(image_dir, exist_ok=True)
        images, annotations = [], []
        for image_id in range(1, count + 1):
            scene = make_scene(rng, (H, W), max_objects, radius_range)
            file_name = f"{image_id:06d}.png"
            if not cv2.imwrite(os.path.join(image_dir, file_name), scene["image"]):
                raise OSError(f"cannot write image: {os.path.join(image_dir, file_name)}")
            images.append({"id": image_id, "file_name": file_name, "height": H, "width": W})
            rles = mask_utils.encode(np.asfortranarray(scene["masks"].transpose(1, 2, 0)))
            for rle, box, label in zip(rles, scene["boxes"], scene["labels"]):
                x1, y1, x2, y2 = (float(v) for v in box)
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": int(label) + 1,
                        "segmentation": {"size": [H, W], "counts": rle["counts"].decode("ascii")},
                        "area": float(mask_utils.area(rle)),
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "iscrowd": 0,
                    }
                )
        ann_file = os.path.join(root, "annotations", f"{split}.json")
        dataset = {
            "info": {"description": f"synthetic shapes, {split}, seed {seed}"},
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        with open(ann_file, "w", encoding="utf-8") as f:
            json.dump(dataset, f)
        paths[f"{split}_ann_file"] = ann_file
        paths[f"{split}_image_dir"] = image_dir
    return paths


_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


def write_synthetic_video(
    path: str,
    num_frames: int = 60,
    size: tuple[int, int] = (160, 160),
    fps: float = 15.0,
    seed: int = 0,
    radius_range: tuple[float, float] = RADIUS_RANGE,
) -> str:
    """Write a video of 2-4 shapes moving and turning smoothly over a fixed background.

    Args:
        path: output file, ``.mp4`` (mp4v) or ``.avi`` (MJPG).
        num_frames: frames written.
        size: (H, W) of the frames.
        fps: frame rate stored in the file.
        seed: the video is a function of the arguments.
        radius_range: shape circumradius range relative to the shorter side.

    Returns:
        ``path``.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in _CODECS:
        raise ValueError(f"video must end in {' or '.join(_CODECS)}: {path}")
    _check_radius_range(radius_range)
    H, W = size
    rng = np.random.default_rng(seed)
    background = _background(rng, (H, W))
    mean = background.reshape(-1, 3).mean(axis=0)
    count = int(rng.integers(2, 5))
    shapes = [_random_shape(rng, (H, W), mean, radius_range) for _ in range(count)]
    speed = rng.uniform(0.6, 2.5, size=len(shapes)) * min(H, W) / 160
    heading = rng.uniform(0, 2 * math.pi, size=len(shapes))
    velocity = np.stack([speed * np.cos(heading), speed * np.sin(heading)], axis=1)  # [K, 2]
    spin = rng.uniform(-0.08, 0.08, size=len(shapes))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*_CODECS[ext]), fps, (W, H))
    if not writer.isOpened():
        raise OSError(f"cannot open a video writer for {path}")
    try:
        for _ in range(num_frames):
            writer.write(render(background, shapes)[0])
            for k, shape in enumerate(shapes):
                (x, y), margin = shape.center, shape.radius / 2
                vx, vy = velocity[k]
                if not margin <= x + vx <= W - margin:  # bounce off the borders
                    velocity[k, 0] = vx = -vx
                if not margin <= y + vy <= H - margin:
                    velocity[k, 1] = vy = -vy
                shapes[k] = replace(shape, center=(x + vx, y + vy), angle=shape.angle + spin[k])
    finally:
        writer.release()
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write a synthetic COCO-format dataset and optionally a video."""
    parser = argparse.ArgumentParser(
        prog="python -m yolact.data.synthetic", description="Write synthetic shape datasets."
    )
    parser.add_argument("--out", default="data/synthetic", help="output folder")
    parser.add_argument("--train", type=int, default=200, help="number of training images")
    parser.add_argument("--val", type=int, default=50, help="number of validation images")
    parser.add_argument("--size", type=int, nargs="+", default=[160], metavar="N", help="S or H W")
    parser.add_argument("--max-objects", type=int, default=5, help="most objects per image")
    parser.add_argument("--radius", type=float, nargs=2, default=list(RADIUS_RANGE),
                        metavar=("LOW", "HIGH"),
                        help="shape circumradius range, relative to the shorter side")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video", default=None, help="also write a video (.mp4 or .avi)")
    parser.add_argument("--frames", type=int, default=60, help="frames of the video")
    parser.add_argument("--fps", type=float, default=15.0, help="frame rate of the video")
    args = parser.parse_args(argv)
    if len(args.size) not in (1, 2) or min(args.size) < 8:
        parser.error("--size takes one or two integers >= 8 (S, or H W)")
    if args.train < 0 or args.val < 0 or args.max_objects < 1:
        parser.error("--train/--val must be >= 0 and --max-objects >= 1")
    if not 0 < args.radius[0] <= args.radius[1]:
        parser.error("--radius takes LOW HIGH with 0 < LOW <= HIGH")
    size = (args.size[0], args.size[-1])
    radius = (args.radius[0], args.radius[1])
    paths = write_coco_dataset(
        args.out, args.train, args.val, size, args.seed, args.max_objects, radius
    )
    for key, value in paths.items():
        print(f"{key}: {value}")
    if args.video:
        video = write_synthetic_video(args.video, args.frames, size, args.fps, args.seed, radius)
        print(f"video: {video}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
