"""A COCO train2017-sized annotation file for memory and start-up benchmarks.

The file has COCO's 80 categories, star-shaped polygons of varied sizes and point
counts, about 1% crowd regions (uncompressed RLE, like COCO's) and about 0.2%
annotations that :class:`yolact.data.coco.CocoDataset` skips (short polygons, empty
boxes, boxes outside the image, unknown categories). Its images are symbolic links
to one JPEG per image size, so the folder costs a few hundred kilobytes.

CLI (the defaults are train2017's counts: 118,287 images, 860,001 annotations)::

    python -m yolact.data.coco_scale --out data/coco_scale
    python -m yolact.data.coco_scale --out /tmp/small --images 300
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from yolact.core.data_names import COCO_CATEGORY_IDS, COCO_CLASSES

TRAIN2017_IMAGES = 118_287
TRAIN2017_ANNOTATIONS = 860_001
# (height, width) of the images; each has one shared JPEG.
IMAGE_SIZES = ((480, 640), (640, 480), (427, 640), (375, 500))
CROWD_FRACTION = 0.01
INVALID_FRACTION = 0.002
UNKNOWN_CATEGORY_ID = 1000
ANN_NAME = "instances_train2017.json"
_CHUNK = 20_000  # annotations formatted at once


def _shared_jpegs(folder: str, seed: int) -> list[str]:
    """Write one smooth JPEG per image size; returns their file names."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for h, w in IMAGE_SIZES:
        small = rng.integers(0, 256, size=(h // 32 + 1, w // 32 + 1, 3), dtype=np.uint8)
        image = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        name = f"{h}x{w}.jpg"
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise OSError(f"cannot encode {name}")
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data.tobytes())
        names.append(name)
    return names


def _polygon_chunk(
    rng: np.random.Generator, heights: np.ndarray, widths: np.ndarray
) -> tuple[list[list[float]], np.ndarray, np.ndarray]:
    """Star-shaped polygons, one per (height, width): coordinates (x, y interleaved,
    two decimals), xywh boxes [N, 4] and areas [N]."""
    n = len(heights)
    points = rng.integers(4, 48, size=n)  # 4..47 points, about 26 on average
    short = np.minimum(heights, widths).astype(np.float64)
    radius = np.exp(rng.uniform(np.log(3.0), np.log(short / 2.0)))  # log-uniform sizes
    cx = rng.uniform(0.0, widths)
    cy = rng.uniform(0.0, heights)
    owner = np.repeat(np.arange(n), points)
    angles = rng.uniform(0.0, 2 * np.pi, size=len(owner))
    starts = np.concatenate([[0], np.cumsum(points)[:-1]])
    order = np.lexsort((angles, owner))  # sorted angles within each polygon
    angles = angles[order]
    r = radius[owner] * rng.uniform(0.5, 1.0, size=len(owner))
    x = np.clip(cx[owner] + r * np.cos(angles), 0.0, widths[owner]).round(2)
    y = np.clip(cy[owner] + r * np.sin(angles), 0.0, heights[owner]).round(2)
    x0, y0 = np.minimum.reduceat(x, starts), np.minimum.reduceat(y, starts)
    x1, y1 = np.maximum.reduceat(x, starts), np.maximum.reduceat(y, starts)
    boxes = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).round(2)
    # Shoelace area per polygon (the next point wraps within its polygon).
    nxt = np.arange(len(owner)) + 1
    ends = starts + points
    nxt[ends - 1] = starts
    cross = x * y[nxt] - x[nxt] * y
    areas = np.abs(np.add.reduceat(cross, starts) / 2.0).round(2)
    xy = np.empty(2 * len(x))
    xy[0::2], xy[1::2] = x, y
    flat = xy.tolist()
    bounds = np.concatenate([[0], np.cumsum(2 * points)]).tolist()
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])], boxes, areas


def _crowd_rle(height: int, width: int, rng: np.random.Generator) -> tuple[str, list[float]]:
    """Uncompressed RLE (column-major runs) of a rectangle, and its xywh box."""
    w = int(rng.integers(8, width // 2))
    h = int(rng.integers(8, height // 2))
    x0, y0 = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
    counts = [x0 * height + y0] + [h, height - h] * (w - 1) + [h]
    counts.append(height * width - sum(counts))
    rle = f'{{"size":[{height},{width}],"counts":[{",".join(map(str, counts))}]}}'
    return rle, [float(x0), float(y0), float(w), float(h)]


def _invalid(kind: int, height: int, width: int) -> tuple[str, list[float], int]:
    """An annotation the dataset skips: (segmentation, box, category offset)."""
    if kind == 0:  # polygon with < 3 points
        return "[[1.0,1.0,5.0,5.0]]", [1.0, 1.0, 4.0, 4.0], 0
    if kind == 1:  # zero-width box
        return "[[1.0,1.0,5.0,1.0,5.0,5.0]]", [1.0, 1.0, 0.0, 4.0], 0
    if kind == 2:  # box outside the image
        x, y = float(width + 10), float(height + 10)
        return f"[[{x},{y},{x + 9},{y},{x + 9},{y + 9}]]", [x, y, 9.0, 9.0], 0
    return "[[1.0,1.0,9.0,1.0,9.0,9.0]]", [1.0, 1.0, 8.0, 8.0], -1  # unknown category


def _annotation_lines(
    n_images: int, n_annotations: int, sizes: np.ndarray, seed: int
) -> Iterator[str]:
    """The json text of every annotation, in image order, chunk by chunk."""
    rng = np.random.default_rng(seed)
    image_of = np.sort(rng.integers(0, n_images, size=n_annotations))
    kind_draw = rng.random(n_annotations)
    categories = np.asarray(COCO_CATEGORY_IDS)[rng.integers(0, 80, size=n_annotations)]
    hw = np.asarray(IMAGE_SIZES)[sizes[image_of]]
    for start in range(0, n_annotations, _CHUNK):
        stop = min(start + _CHUNK, n_annotations)
        heights, widths = hw[start:stop, 0], hw[start:stop, 1]
        rings, boxes, areas = _polygon_chunk(rng, heights, widths)
        for i in range(start, stop):
            j = i - start
            h, w = int(heights[j]), int(widths[j])
            draw, cat, crowd = kind_draw[i], int(categories[i]), 0
            if draw < INVALID_FRACTION:
                seg, box, unknown = _invalid(int(draw / INVALID_FRACTION * 4), h, w)
                cat, area = (UNKNOWN_CATEGORY_ID if unknown else cat), 16.0
            elif draw < INVALID_FRACTION + CROWD_FRACTION:
                seg, box = _crowd_rle(h, w, rng)
                crowd, area = 1, box[2] * box[3]
            else:
                seg, box, area = "[[" + ",".join(map(repr, rings[j])) + "]]", boxes[j], areas[j]
            yield (
                f'{{"id":{i + 1},"image_id":{int(image_of[i]) + 1},"category_id":{cat},'
                f'"segmentation":{seg},"area":{float(area)!r},'
                f'"bbox":[{",".join(repr(float(v)) for v in box)}],"iscrowd":{crowd}}}'
            )


def write_coco_scale(
    out: str,
    n_images: int = TRAIN2017_IMAGES,
    n_annotations: int | None = None,
    seed: int = 0,
) -> tuple[str, str]:
    """Write ``out/annotations/instances_train2017.json`` and ``out/images/``.

    Args:
        out: the output folder (created).
        n_images: number of images; each is a link to a shared JPEG of its size.
        n_annotations: number of annotations; default train2017's ratio to images
            (860,001 for 118,287 images).
        seed: seed of every random draw (the same seed writes the same file).

    Returns:
        ``(ann_file, image_dir)``.
    """
    if n_annotations is None:
        n_annotations = round(n_images * TRAIN2017_ANNOTATIONS / TRAIN2017_IMAGES)
    ann_dir, image_dir = os.path.join(out, "annotations"), os.path.join(out, "images")
    shared = os.path.join(out, "shared")
    jpegs = _shared_jpegs(shared, seed)
    sizes = np.random.default_rng([seed, 1]).integers(0, len(IMAGE_SIZES), size=n_images)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    names = [f"{i + 1:012d}.jpg" for i in range(n_images)]
    for name, size in zip(names, sizes.tolist()):
        link = os.path.join(image_dir, name)
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(os.path.join("..", "shared", jpegs[size]), link)
    ann_file = os.path.join(ann_dir, ANN_NAME)
    fd, tmp = tempfile.mkstemp(prefix=f".{ANN_NAME}.", suffix=".tmp", dir=ann_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write('{"info":{"description":"COCO train2017-sized synthetic file"},"images":[')
            f.write(",".join(
                f'{{"id":{i + 1},"file_name":"{name}","height":{IMAGE_SIZES[s][0]},'
                f'"width":{IMAGE_SIZES[s][1]}}}'
                for i, (name, s) in enumerate(zip(names, sizes.tolist()))
            ))  # fmt: skip
            f.write('],"annotations":[')
            for i, line in enumerate(_annotation_lines(n_images, n_annotations, sizes, seed)):
                f.write(line if i == 0 else "," + line)
            cats = ",".join(
                f'{{"id":{c},"name":"{n}","supercategory":"thing"}}'
                for c, n in zip(COCO_CATEGORY_IDS, COCO_CLASSES)
            )
            f.write(f'],"categories":[{cats}]}}')
        os.chmod(tmp, 0o644)
        os.replace(tmp, ann_file)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return ann_file, image_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write a COCO train2017-sized annotation file and linked images."""
    parser = argparse.ArgumentParser(
        prog="python -m yolact.data.coco_scale",
        description="Write a COCO train2017-sized annotation file (images link to one JPEG).",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--images", type=int, default=TRAIN2017_IMAGES, help="number of images")
    parser.add_argument("--annotations", type=int, default=None,
                        help="number of annotations (default: train2017's ratio)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.images < 1 or (args.annotations is not None and args.annotations < 0):
        print("coco_scale: --images must be >= 1 and --annotations >= 0", file=sys.stderr)
        return 2
    try:
        ann_file, image_dir = write_coco_scale(args.out, args.images, args.annotations, args.seed)
    except OSError as e:
        print(f"coco_scale: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"annotations: {ann_file}")
    print(f"images: {image_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
