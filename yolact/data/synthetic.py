"""Synthetic COCO-format datasets and videos of the shapes of :mod:`yolact.data.scenes`.

Used to make small datasets and videos for tests, demos and smoke training runs.
Options (:class:`~yolact.data.scenes.SceneOptions`) make data like users': varied
image sizes and aspect ratios, rings (masks with holes, written as RLE), objects in
two parts (multi-polygons), images without objects, crowd regions (``iscrowd=1`` RLE).

CLI (both splits; ``--varied`` turns every option on)::

    python -m yolact.data.synthetic --out data/synthetic --train 400 --val 60 --varied
    python -m yolact.data.synthetic --out data/synthetic --train 200 --val 50 \\
        --size 160 --video data/synthetic/demo.mp4
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from yolact.data.scenes import (
    MIN_VISIBLE_PIXELS,
    PLAIN,
    RADIUS_RANGE,
    SYNTHETIC_CLASSES,
    VARIED,
    SceneOptions,
    Shape,
    check_radius_range,
    make_scene,
    random_background,
    random_shape,
    render,
    scene_with_crowds,
    shape_mask,
    tight_boxes,
)

__all__ = [
    "MIN_VISIBLE_PIXELS",
    "PLAIN",
    "RADIUS_RANGE",
    "SYNTHETIC_CLASSES",
    "VARIED",
    "SceneOptions",
    "Shape",
    "main",
    "make_scene",
    "mask_to_polygons",
    "render",
    "shape_mask",
    "tight_boxes",
    "write_coco_dataset",
    "write_synthetic_video",
]


def mask_to_polygons(mask: np.ndarray) -> list[list[float]] | None:
    """A mask as COCO polygons, one ring per part, that pycocotools decodes to exactly it.

    The outline is traced on a 4x finer grid, so vertices lie an eighth of a pixel
    inside the edges of the mask's pixels (pixel (x, y) spans [x, x + 1] x [y, y + 1]).
    A polygon cannot hold a hole: a mask with one, or whose outline does not decode
    back exactly, gives None (write it as RLE).

    Args:
        mask: uint8 [H, W], values 0/1, not empty.

    Returns:
        ``[[x1, y1, x2, y2, ...], ...]`` or None.
    """
    H, W = mask.shape
    k = 4  # fine-grid cells per pixel side
    fine = cv2.resize(mask, (W * k, H * k), interpolation=cv2.INTER_NEAREST)
    contours, hierarchy = cv2.findContours(fine, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None or (hierarchy[0][:, 3] >= 0).any():  # an inner contour: a hole
        return None
    rings = [((c.reshape(-1, 2) + 0.5) / k).ravel().tolist() for c in contours]
    if any(len(ring) < 6 for ring in rings):
        return None
    decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(rings, H, W)))
    return rings if np.array_equal(decoded, mask) else None


def _annotation(
    ann_id: int,
    image_id: int,
    label: int,
    mask: np.ndarray,
    box: np.ndarray,
    crowd: bool,
    polygons: bool,
) -> dict[str, Any]:
    """One COCO annotation: polygons when asked and possible (not for crowds), else RLE."""
    H, W = mask.shape
    rings = mask_to_polygons(mask) if polygons and not crowd else None
    if rings is not None:
        segmentation: Any = rings
        area = float(mask.sum())
    else:
        rle = mask_utils.encode(np.asfortranarray(mask))
        segmentation = {"size": [H, W], "counts": rle["counts"].decode("ascii")}
        area = float(mask_utils.area(rle))
    x1, y1, x2, y2 = (float(v) for v in box)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": label + 1,
        "segmentation": segmentation,
        "area": area,
        "bbox": [x1, y1, x2 - x1, y2 - y1],
        "iscrowd": int(crowd),
    }


def write_coco_dataset(
    root: str,
    num_train: int = 200,
    num_val: int = 50,
    size: tuple[int, int] = (160, 160),
    seed: int = 0,
    max_objects: int = 5,
    radius_range: tuple[float, float] = RADIUS_RANGE,
    options: SceneOptions = PLAIN,
) -> dict[str, str]:
    """Write a COCO-format synthetic dataset.

    Layout: ``root/train/000001.png ...``, ``root/val/...``, ``root/annotations/train.json``
    and ``val.json`` (category ids 1..C in ``SYNTHETIC_CLASSES`` order; compressed RLE
    masks, or polygons where ``options.polygons`` asks and the mask has no hole; crowd
    regions as ``iscrowd=1`` RLE). A split of 0 images is not written. The images of
    split ``s`` (0 train, 1 val) are successive draws (image size with
    ``options.sizes``, then ``make_scene``) from ``np.random.default_rng([seed, s])``,
    so the output is a function of the arguments, and one split does not depend on
    the other's size.

    Returns:
        Paths of the written splits: ``train_ann_file``, ``train_image_dir``,
        ``val_ann_file``, ``val_image_dir``.
    """
    check_radius_range(radius_range)
    options.check()
    categories = [
        {"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(SYNTHETIC_CLASSES)
    ]
    paths: dict[str, str] = {}
    for split_index, (split, count) in enumerate((("train", num_train), ("val", num_val))):
        if count <= 0:
            continue
        rng = np.random.default_rng([seed, split_index])
        image_dir = os.path.join(root, split)
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for image_id in range(1, count + 1):
            H, W = size
            if options.sizes is not None:
                H, W = (int(v) for v in rng.integers(options.sizes[0], options.sizes[1] + 1, 2))
            scene, crowd_labels = scene_with_crowds(rng, (H, W), max_objects, radius_range, options)
            file_name = f"{image_id:06d}.png"
            if not cv2.imwrite(os.path.join(image_dir, file_name), scene["image"]):
                raise OSError(f"cannot write image: {os.path.join(image_dir, file_name)}")
            images.append({"id": image_id, "file_name": file_name, "height": H, "width": W})
            n, m = len(scene["labels"]), len(crowd_labels)
            objects = [
                *zip(scene["masks"], scene["boxes"], scene["labels"], [False] * n),
                *zip(scene["crowd_masks"], scene["crowd_boxes"], crowd_labels, [True] * m),
            ]
            for mask, box, label, crowd in objects:
                ann_id = len(annotations) + 1
                ann = _annotation(ann_id, image_id, int(label), mask, box, crowd, options.polygons)
                annotations.append(ann)
        ann_file = os.path.join(root, "annotations", f"{split}.json")
        info: dict[str, Any] = {"description": f"synthetic shapes, {split}, seed {seed}"}
        if options != PLAIN:
            info["options"] = asdict(options)
        dataset = {
            "info": info,
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
    check_radius_range(radius_range)
    H, W = size
    rng = np.random.default_rng(seed)
    background = random_background(rng, (H, W))
    mean = background.reshape(-1, 3).mean(axis=0)
    count = int(rng.integers(2, 5))
    shapes = [random_shape(rng, (H, W), mean, radius_range) for _ in range(count)]
    speed = rng.uniform(0.6, 2.5, size=len(shapes)) * min(H, W) / 160
    heading = rng.uniform(0, 2 * math.pi, size=len(shapes))
    velocity = np.stack([speed * np.cos(heading), speed * np.sin(heading)], axis=1)  # [K, 2]
    spin = rng.uniform(-0.08, 0.08, size=len(shapes))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*_CODECS[ext]), fps, (W, H))
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


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a probability in [0, 1], got {text}")
    return value


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
    varied = parser.add_argument_group(
        "data like users' data", "--varied turns all on (" + ", ".join(
            f"{k} {v}" for k, v in asdict(VARIED).items()) + "); a flag sets one"
    )  # fmt: skip
    varied.add_argument("--varied", action="store_true", help="all of the below")
    varied.add_argument("--sizes", type=int, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="each image side drawn in LOW..HIGH px (replaces --size)")  # fmt: skip
    varied.add_argument("--holes", type=_probability, default=None, metavar="P",
                        help="probability of a ring (a shape with a hole; RLE)")  # fmt: skip
    varied.add_argument("--splits", type=_probability, default=None, metavar="P",
                        help="probability of an object cut in two")  # fmt: skip
    varied.add_argument("--polygons", action="store_true", default=None,
                        help="write masks without holes as (multi-)polygons, not RLE")  # fmt: skip
    varied.add_argument("--empty", type=_probability, default=None, metavar="P",
                        help="probability of an image without objects")  # fmt: skip
    varied.add_argument("--crowd", type=_probability, default=None, metavar="P",
                        help="probability of a crowd region (iscrowd=1, RLE)")  # fmt: skip
    args = parser.parse_args(argv)
    if len(args.size) not in (1, 2) or min(args.size) < 8:
        parser.error("--size takes one or two integers >= 8 (S, or H W)")
    if args.train < 0 or args.val < 0 or args.max_objects < 1:
        parser.error("--train/--val must be >= 0 and --max-objects >= 1")
    if args.train + args.val == 0:
        parser.error("--train and --val are both 0: nothing to write")
    if not 0 < args.radius[0] <= args.radius[1]:
        parser.error("--radius takes LOW HIGH with 0 < LOW <= HIGH")
    if args.sizes is not None and not 8 <= args.sizes[0] <= args.sizes[1]:
        parser.error("--sizes takes LOW HIGH with 8 <= LOW <= HIGH")
    chosen: dict[str, Any] = {
        name: tuple(value) if name == "sizes" else value
        for name in ("sizes", "holes", "splits", "polygons", "empty", "crowd")
        if (value := getattr(args, name)) is not None
    }
    options = replace(VARIED if args.varied else PLAIN, **chosen)
    size = (args.size[0], args.size[-1])
    radius = (args.radius[0], args.radius[1])
    paths = write_coco_dataset(
        args.out, args.train, args.val, size, args.seed, args.max_objects, radius, options
    )
    for key, value in paths.items():
        print(f"{key}: {value}")
    if args.video:
        video = write_synthetic_video(args.video, args.frames, size, args.fps, args.seed, radius)
        print(f"video: {video}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
