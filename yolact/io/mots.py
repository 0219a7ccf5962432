"""MOTS txt export of a tracked run, for standard multi-object tracking scorers.

One line per tracked object per frame, frames in order::

    frame track_id class_id height width rle

- ``frame``: the frame's index in its source, counting from 0 as KITTI MOTS does
  (TrackEval's ``KittiMOTS`` reader) and as ``--output_json``'s ``image_id`` and the
  generated clips' ``gt.txt`` (:func:`yolact.data.clips.write_mots`) do.
- ``track_id``: the detection's track id as is (>= 1). The MOTS datasets' own ids
  are ``class_id * 1000 + instance``; scorers take the class from ``class_id``.
- ``class_id``: the class's category id, as ``--output_json`` writes it (1..N in
  class order, COCO's own ids for the 80 COCO classes).
- ``height width``: the frame's size in pixels; ``rle``: the mask at that size as
  COCO compressed RLE (pycocotools, column-major), its ``counts`` as ASCII text.

Only tracked detections (track id >= 0) are written. MOTS masks may not overlap
(TrackEval refuses a file where they do), so where masks of one frame overlap, each
pixel stays with the highest-scoring detection (:func:`disjoint_masks`); a detection
left with no pixel is not written.

With several sources, one file per source: ``run.txt`` becomes ``run_0.txt``,
``run_1.txt``, ... (the source's position in the list, as ``--output_json``'s
``source``); see :func:`mots_paths`. Files are written beside their target and
moved into place once complete, and only by :meth:`MotsWriter.save`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from yolact.core.structures import Detections
from yolact.io.outputs import FileSet, OutputError, check_output_file, write_or_rescue
from yolact.io.sources import redact

__all__ = [
    "MotsWriter",
    "check_mots_output",
    "disjoint_masks",
    "kept_objects",
    "mots_lines",
    "mots_paths",
]


def mots_paths(path: str, sources: int = 1) -> list[str]:
    """The file of each source: ``path`` for one, ``stem_K.ext`` (K = 0, 1, ...) for several.

    Args:
        path: the file asked for (``--output_mots``).
        sources: how many sources the run reads.

    Returns:
        One path per source, in source order.
    """
    if sources <= 1:
        return [path]
    stem, ext = os.path.splitext(path)
    return [f"{stem}_{k}{ext}" for k in range(sources)]


def disjoint_masks(masks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``masks`` [N, H, W] made disjoint: a pixel stays with the highest-scoring mask.

    Ties in score keep the earlier mask's pixel.

    Args:
        masks: [N, H, W] bool (or 0/1).
        scores: [N] scores.

    Returns:
        [N, H, W] bool, each mask a subset of its input, no two overlapping.
    """
    out: np.ndarray = np.array(masks, dtype=bool, copy=True)
    if len(out) < 2:
        return out
    taken = np.zeros(out.shape[1:], dtype=bool)
    for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"):
        out[i] &= ~taken
        taken |= out[i]
    return out


def kept_objects(
    ids: np.ndarray, masks: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """What a MOTS file keeps of one frame: tracked detections, masks made disjoint.

    Args:
        ids: [N] track ids (-1: untracked).
        masks: [N, H, W] bool.
        scores: [N] scores.

    Returns:
        The indices of the kept detections (tracked, with a pixel left after
        :func:`disjoint_masks`), in order, and their disjoint masks [K, H, W].
    """
    keep = np.flatnonzero(np.asarray(ids) >= 0)
    masks = disjoint_masks(np.asarray(masks)[keep], np.asarray(scores)[keep])
    nonempty = np.array([m.any() for m in masks], dtype=bool)
    return keep[nonempty], masks[nonempty]


def mots_lines(det: Detections, frame: int, category_ids: Sequence[int] | None = None) -> list[str]:
    """The MOTS lines of one frame's tracked detections (see the module's format).

    Args:
        det: the frame's detections, with ``track_ids`` and masks at frame size.
        frame: the frame's index.
        category_ids: the ``class_id`` of each label; None: label + 1.

    Returns:
        One line (ending in a newline) per tracked detection with a pixel left, in
        order of detection.

    Raises:
        ValueError: the detections have no track ids or no masks.
    """
    if det.track_ids is None:
        raise ValueError("MOTS export needs tracked detections (track_ids is None)")
    if det.masks is None:
        raise ValueError("MOTS export needs the detections' masks")
    H, W = det.image_size
    if tuple(det.masks.shape[1:]) != (H, W):
        raise ValueError(
            f"MOTS export needs masks at frame size {H}x{W}, got {tuple(det.masks.shape[1:])}"
        )
    ids = det.track_ids.detach().cpu().numpy()
    if not (ids >= 0).any():
        return []
    keep, masks = kept_objects(
        ids, det.masks.detach().cpu().numpy(), det.scores.detach().cpu().numpy()
    )
    if len(keep) == 0:
        return []
    labels = det.labels.detach().cpu().numpy()
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    lines = []
    for k, rle in zip(keep, rles):
        label = int(labels[k])
        cls = category_ids[label] if category_ids is not None else label + 1
        lines.append(f"{frame} {int(ids[k])} {cls} {H} {W} {rle['counts'].decode('ascii')}\n")
    return lines


class MotsWriter:
    """Collects the tracked detections of a run and writes them as MOTS txt files.

    Example::

        writer = MotsWriter("run.txt", category_ids=category_ids_for(p.class_names))
        for r in p.stream("clip.mp4", track=True):
            writer.add(r.detections, r.frame_index, r.source_index)
        writer.save()

    Attributes:
        paths: the file of each source (:func:`mots_paths`).
        frames: frames added, with or without tracked detections.
    """

    def __init__(
        self, path: str, sources: int = 1, category_ids: Sequence[int] | None = None
    ) -> None:
        """Collect nothing yet.

        Args:
            path: the file (one source) or the name the sources' files derive from.
            sources: how many sources the run reads (one file each).
            category_ids: the ``class_id`` of each label; None: label + 1.

        Raises:
            ValueError: an empty path or fewer than one source.
        """
        if not path:
            raise ValueError("the MOTS output path is empty")
        if sources < 1:
            raise ValueError(f"a MOTS export needs at least one source, got {sources}")
        self.paths = mots_paths(path, sources)
        self.category_ids = list(category_ids) if category_ids is not None else None
        self._lines: list[list[tuple[int, str]]] = [[] for _ in self.paths]
        self.frames = 0

    def add(self, det: Detections, frame: int, source: int = 0) -> None:
        """Add one frame's detections (untracked ones are left out).

        Args:
            det: the frame's detections, with track ids and full-size masks.
            frame: the frame's index in its source.
            source: the source's position in the run's list.

        Raises:
            ValueError: no track ids or masks, or a source out of range.
        """
        if not 0 <= source < len(self.paths):
            raise ValueError(f"MOTS source {source} out of range (0..{len(self.paths) - 1})")
        lines = mots_lines(det, frame, self.category_ids)
        self._lines[source].extend((frame, line) for line in lines)
        self.frames += 1

    def text(self, source: int = 0) -> str:
        """The file content of one source so far, frames in order."""
        rows = sorted(self._lines[source], key=lambda row: row[0])  # stable within a frame
        return "".join(line for _, line in rows)

    def save(self) -> list[str]:
        """Write every source's file beside its target, then move it into place.

        Returns:
            The paths written.

        Raises:
            OutputError: a file could not be written (one line: why, and where its
                content was saved instead); the files before it are written.
        """
        written = []
        for k, path in enumerate(self.paths):
            count = len(self._lines[k])
            write_or_rescue(path, self.text(k).encode("ascii"), f"{count} MOTS lines")
            written.append(path)
        return written


def check_mots_output(
    path: str, inputs: Sequence[str], outputs: Sequence[str] = (), sources: int = 1
) -> None:
    """Refuse, before any work, a MOTS path that cannot be written or would replace a file.

    Args:
        path: ``--output_mots``.
        inputs: the run's input files.
        outputs: the run's other outputs (drawings, video, ``--output_json``).
        sources: how many sources the run reads.

    Raises:
        OutputError: one line naming ``--output_mots`` and the cause.
    """
    for target in mots_paths(path, sources):
        check_output_file(target, "--output_mots")
        hit = FileSet(list(inputs)).find(target)
        if hit is not None:
            raise OutputError(f"--output_mots {target} is the input {redact(hit)} (the same "
                              "file); give another path")  # fmt: skip
        hit = FileSet([o for o in outputs if o]).find(target)
        if hit is not None:
            raise OutputError(f"--output_mots {target} is also where {redact(hit)} goes; "
                              "give another path")  # fmt: skip
