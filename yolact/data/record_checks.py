"""The dataset's checks on annotation columns, and their packing into records.

:func:`check_columns` gives every annotation of a
:class:`~yolact.data.ann_columns.AnnotationColumns` the result
:func:`~yolact.data.coco_annotations.check_annotation` gives it: numpy computes it
for the columns (the same float operations, in the same order, as the function),
the function itself runs on the annotations kept as dicts. Skipped counts are
ordered as ``validate`` orders them (images in file order, each image's
annotations in file order, reasons by count then first occurrence).
:func:`assemble` packs the kept ones as :func:`~yolact.data.records.pack` does.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from yolact.data.coco_annotations import (
    BAD_BOX,
    BOX_OUTSIDE,
    EMPTY_BOX,
    EMPTY_MASK,
    MASK_SIZE,
    NO_SEGMENTATION,
    SHORT_POLYGON,
    UNKNOWN_CATEGORY,
    UNKNOWN_IMAGE,
    UNLISTED_CATEGORY,
    Categories,
    _to_rle,
    check_annotation,
)
from yolact.data.polygons import PackedPolygon
from yolact.data.records import Records, pack

if TYPE_CHECKING:
    from yolact.data.ann_columns import AnnotationColumns

# Reason codes (0: kept), the first seven in the order check_annotation tries them.
REASONS = (
    UNKNOWN_CATEGORY, UNLISTED_CATEGORY, NO_SEGMENTATION, SHORT_POLYGON, BAD_BOX, EMPTY_BOX,
    BOX_OUTSIDE, MASK_SIZE, EMPTY_MASK,
)  # fmt: skip
_CODE = {reason: i + 1 for i, reason in enumerate(REASONS)}


@dataclass
class Checked:
    """The checks' results, per annotation in file order where not said otherwise.

    Attributes:
        kept: file positions of the kept annotations, in ``validate``'s order.
        image_pos: the position (in the images by id) of each one's image, -1 if none.
        column: each one's index in the columns, -1 for a dict.
        boxes: float64 [columns, 4]: the clipped xyxy box of each column annotation.
        labels: int64 [columns]: the label (-1 for crowd) of each column annotation.
        odd: file position -> (clipped box, label) of each kept dict annotation.
        skipped: per reason the number skipped, as ``validate`` returns it.
        heights, widths: of each image, by position.
    """

    kept: np.ndarray
    image_pos: np.ndarray
    column: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    odd: dict[int, tuple[tuple[float, ...], int]]
    skipped: dict[str, int]
    heights: list[int]
    widths: list[int]


_GATHER = 1 << 14  # annotations whose coordinates are copied at once


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices ``starts[i] .. starts[i] + lengths[i] - 1`` of every ``i``, joined."""
    ends = _offsets(lengths)
    return np.repeat(starts - ends[:-1], lengths) + np.arange(ends[-1], dtype=np.int64)


def check_columns(
    imgs: dict[Any, dict[str, Any]], columns: AnnotationColumns, categories: Categories
) -> Checked:
    """Run the dataset's checks on every annotation (see the module docstring).

    Args:
        imgs: the images by id (first position, last entry, as ``ImageIndex``).
        columns: the file's annotations.
        categories: the file's categories and the chosen labels.
    """
    heights = [int(info["height"]) for info in imgs.values()]
    widths = [int(info["width"]) for info in imgs.values()]
    pos_of = {img_id: i for i, img_id in enumerate(imgs)}
    n = columns.count
    image_pos = np.full(n, -1, dtype=np.int64)
    column = np.full(n, -1, dtype=np.int64)
    position = np.frombuffer(columns.position, dtype=np.int64)
    column[position] = np.arange(position.size)
    ints = np.frombuffer(columns.ints, dtype=np.int64).reshape(-1, 3)
    image_pos[position] = [pos_of.get(i, -1) for i in ints[:, 1].tolist()]
    codes = np.zeros(n, dtype=np.int8)
    odd: dict[int, tuple[tuple[float, ...], int]] = {}
    for p, ann in columns.odd.items():
        image_pos[p] = i = pos_of.get(ann["image_id"], -1)
        if i < 0:
            continue
        result = check_annotation(ann, heights[i], widths[i], categories)
        if isinstance(result, str):
            codes[p] = _CODE[result]
        else:
            odd[p] = (result[1], result[2])
    boxes, labels, fast_codes = _check_fast(columns, categories, image_pos[position], heights,
                                            widths)  # fmt: skip
    codes[position] = fast_codes
    found = np.flatnonzero(image_pos >= 0)
    order = found[np.argsort(image_pos[found], kind="stable")]
    in_order = codes[order]
    reasons: Counter[str] = Counter()
    skipped_codes = in_order[in_order > 0]
    if skipped_codes.size:
        uniq, first = np.unique(skipped_codes, return_index=True)
        tally = np.bincount(skipped_codes)
        for code in uniq[np.argsort(first)]:
            reasons[REASONS[code - 1]] = int(tally[code])
    orphans = n - found.size
    if orphans:
        reasons[UNKNOWN_IMAGE] = orphans
    return Checked(
        kept=order[in_order == 0], image_pos=image_pos, column=column, boxes=boxes,
        labels=labels, odd=odd, skipped=dict(reasons.most_common()), heights=heights,
        widths=widths,
    )  # fmt: skip


def _check_fast(
    columns: AnnotationColumns,
    categories: Categories,
    image_pos: np.ndarray,
    heights: list[int],
    widths: list[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """check_annotation on the columns: clipped boxes, labels and reason codes."""
    known, to_label = categories.known_ids, categories.category_id_to_label
    cats = np.frombuffer(columns.ints, dtype=np.int64)[2::3].tolist()
    is_known = np.array([c in known for c in cats], dtype=bool)
    label = np.array([to_label.get(c, -1) for c in cats], dtype=np.int64)
    crowd = np.frombuffer(columns.crowd, dtype=np.int8).astype(bool)
    rings = np.frombuffer(columns.ring_counts, dtype=np.int64)
    lengths = np.frombuffer(columns.ring_lengths, dtype=np.int64)
    longest = np.zeros(rings.size, dtype=np.int64)
    has = rings > 0
    if lengths.size:
        longest[has] = np.maximum.reduceat(lengths, _offsets(rings)[:-1][has])
    box = np.frombuffer(columns.boxes, dtype=np.float64).reshape(-1, 4)
    x, y, w, h = box[:, 0], box[:, 1], box[:, 2], box[:, 3]
    found = image_pos >= 0
    W = np.asarray(widths, dtype=np.float64)[np.where(found, image_pos, 0)] if widths else x * 0
    H = np.asarray(heights, dtype=np.float64)[np.where(found, image_pos, 0)] if heights else x * 0
    if max(map(abs, heights + widths), default=0) >= 2**53:
        raise ValueError("an image size beyond float64's integers")
    with np.errstate(all="ignore"):
        finite = np.isfinite(x + y + w + h)

        def clip(v: np.ndarray, top: np.ndarray) -> np.ndarray:  # min(max(v, 0.0), top)
            v = np.where(v < 0.0, 0.0, v)
            return np.where(top < v, top, v)

        x1, y1, x2, y2 = clip(x, W), clip(y, H), clip(x + w, W), clip(y + h, H)
        codes = np.select(
            [~is_known, label < 0, ~has, longest < 6, ~finite, (w <= 0) | (h <= 0),
             (x2 <= x1) | (y2 <= y1)],
            [_CODE[r] for r in REASONS[:7]], default=0,
        ).astype(np.int8)  # fmt: skip
    return np.stack([x1, y1, x2, y2], axis=1), np.where(crowd, -1, label), codes


def assemble(
    imgs: dict[Any, dict[str, Any]], columns: AnnotationColumns, checked: Checked
) -> Records:
    """The records of the images and their kept annotations (as ``pack`` makes them)."""
    base = pack(imgs.values(), {})
    kept = checked.kept
    entry_counts = np.bincount(checked.image_pos[kept], minlength=base.num_images)
    col = checked.column[kept]
    fast = col >= 0
    fc = col[fast]
    odd_pos = kept[~fast].tolist()
    odd_anns = [columns.odd[p] for p in odd_pos]
    ann_ids = np.empty(kept.size, dtype=np.int64)
    ann_ids[fast] = np.frombuffer(columns.ints, dtype=np.int64)[0::3][fc]
    ann_ids[~fast] = np.asarray([a["id"] for a in odd_anns], dtype=np.int64)
    boxes = np.empty((kept.size, 4), dtype=np.float64)
    boxes[fast] = checked.boxes[fc]
    boxes[~fast] = np.asarray([checked.odd[p][0] for p in odd_pos], dtype=np.float64).reshape(-1, 4)
    labels = np.empty(kept.size, dtype=np.int64)
    labels[fast] = checked.labels[fc]
    labels[~fast] = [checked.odd[p][1] for p in odd_pos]
    # The odd ones' rings, coordinates and RLE bytes, as pack makes them.
    odd_rings: list[list[int]] = []
    odd_coords: list[np.ndarray] = []
    odd_rles: list[bytes] = []
    for p, ann in zip(odd_pos, odd_anns):
        seg, i = ann["segmentation"], int(checked.image_pos[p])
        if isinstance(seg, PackedPolygon):
            odd_rings.append(list(seg.lengths))
            odd_coords.append(seg.coords)
            odd_rles.append(b"")
        elif isinstance(seg, list):
            odd_rings.append([len(ring) for ring in seg])
            try:
                odd_coords.append(np.fromiter(itertools.chain.from_iterable(seg), np.float64))
            except (TypeError, ValueError) as e:
                raise ValueError(f"annotation {ann['id']}: a polygon value is not a number") from e
            odd_rles.append(b"")
        else:
            odd_rings.append([])
            odd_coords.append(np.zeros(0))
            odd_rles.append(_to_rle(seg, checked.heights[i], checked.widths[i])["counts"])
    # Rings: counts and lengths per entry.
    rings_all = np.frombuffer(columns.ring_counts, dtype=np.int64)
    lengths_all = np.frombuffer(columns.ring_lengths, dtype=np.int64)
    ring_first = _offsets(rings_all)
    ring_counts = np.empty(kept.size, dtype=np.int64)
    ring_counts[fast] = rings_all[fc]
    ring_counts[~fast] = [len(r) for r in odd_rings]
    ring_dest = _offsets(ring_counts)
    ring_lengths = np.empty(int(ring_dest[-1]), dtype=np.int64)
    ring_lengths[_ranges(ring_dest[:-1][fast], ring_counts[fast])] = lengths_all[
        _ranges(ring_first[:-1][fc], rings_all[fc])]  # fmt: skip
    if odd_pos:
        ring_lengths[_ranges(ring_dest[:-1][~fast], ring_counts[~fast])] = list(
            itertools.chain.from_iterable(odd_rings))  # fmt: skip
    # Coordinates: each column annotation's block by block (each block freed once read).
    coord_first = _offsets(lengths_all)[ring_first]  # per column annotation, and the end
    coord_counts = np.empty(kept.size, dtype=np.int64)
    coord_counts[fast] = np.diff(coord_first)[fc]
    coord_counts[~fast] = [c.size for c in odd_coords]
    coord_dest = _offsets(coord_counts)
    coords = np.empty(int(coord_dest[-1]), dtype=np.float64)
    fast_dest, fast_counts = coord_dest[:-1][fast], coord_counts[fast]
    blocks, columns.coord_blocks = columns.coord_blocks, []
    bounds = [*columns.block_first, len(columns.position)]
    for b in range(len(blocks)):
        block, blocks[b] = blocks[b], np.zeros(0)
        mine = np.flatnonzero((fc >= bounds[b]) & (fc < bounds[b + 1]))
        for part in range(0, mine.size, _GATHER):  # bounded index arrays
            sel = mine[part : part + _GATHER]
            src = _ranges(coord_first[fc[sel]] - coord_first[bounds[b]], fast_counts[sel])
            coords[_ranges(fast_dest[sel], fast_counts[sel])] = block[src]
        del block
    for j, c in zip(np.flatnonzero(~fast).tolist(), odd_coords):
        coords[coord_dest[j] : coord_dest[j + 1]] = c
    rle_counts = np.zeros(kept.size, dtype=np.int64)
    rle_counts[~fast] = [len(r) for r in odd_rles]
    return dataclasses.replace(
        base,
        entry_offsets=_offsets(entry_counts),
        ann_ids=ann_ids,
        boxes=boxes,
        labels=labels.astype(np.int32),
        ring_index=ring_dest,
        rle_offsets=_offsets(rle_counts),
        rles=np.frombuffer(b"".join(odd_rles), dtype=np.uint8).copy(),
        ring_offsets=_offsets(ring_lengths),
        coords=coords,
    )
