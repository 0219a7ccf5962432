"""MOTS txt export (issue 18, item 1): line format, disjoint masks, files per source."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from yolact.core.structures import Detections
from yolact.data.clips import read_mots
from yolact.io.mots import MotsWriter, disjoint_masks, kept_objects, mots_lines, mots_paths

H, W = 6, 8


def _mask(y1: int, y2: int, x1: int, x2: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y1:y2, x1:x2] = True
    return m


def _det(masks: list[np.ndarray], scores: list[float], labels: list[int], ids: list[int] | None
         ) -> Detections:  # fmt: skip
    n = len(masks)
    stack = np.stack(masks) if masks else np.zeros((0, H, W), bool)
    return Detections(
        boxes=torch.zeros((n, 4)), labels=torch.tensor(labels, dtype=torch.long),
        scores=torch.tensor(scores), box_scores=torch.zeros(n), mask_scores=torch.zeros(n),
        masks=torch.from_numpy(stack), image_size=(H, W), class_names=("a", "b", "c"),
        track_ids=None if ids is None else torch.tensor(ids, dtype=torch.long),
    )  # fmt: skip


def _rle(mask: np.ndarray) -> str:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode("ascii")


def test_disjoint_masks_give_a_pixel_to_the_higher_score():
    low, high = _mask(0, 4, 0, 4), _mask(2, 6, 2, 6)
    out = disjoint_masks(np.stack([low, high]), np.array([0.4, 0.9]))
    assert np.array_equal(out[1], high)
    assert np.array_equal(out[0], low & ~high)
    assert out[0].sum() == 16 - 4
    tie = disjoint_masks(np.stack([low, high]), np.array([0.5, 0.5]))
    assert np.array_equal(tie[0], low) and np.array_equal(tie[1], high & ~low)


def test_lines_hold_frame_id_class_size_and_rle_of_tracked_detections():
    a, b, c = _mask(0, 3, 0, 3), _mask(1, 4, 1, 5), _mask(4, 6, 6, 8)
    det = _det([a, b, c], [0.5, 0.9, 0.8], [0, 2, 1], [4, 7, -1])
    lines = mots_lines(det, frame=3)
    # c is untracked; a loses the pixels b (higher score) covers.
    assert lines == [f"3 4 1 6 8 {_rle(a & ~b)}\n", f"3 7 3 6 8 {_rle(b)}\n"]
    assert mots_lines(det, 0, category_ids=[11, 12, 13])[1].split()[:3] == ["0", "7", "13"]


def test_a_detection_left_without_pixels_is_not_written():
    big, inside = _mask(0, 6, 0, 8), _mask(1, 3, 1, 3)
    det = _det([inside, big], [0.3, 0.9], [0, 0], [1, 2])
    keep, masks = kept_objects(np.array([1, 2]), np.stack([inside, big]), np.array([0.3, 0.9]))
    assert keep.tolist() == [1] and np.array_equal(masks[0], big)
    assert [line.split()[1] for line in mots_lines(det, 0)] == ["2"]


def test_untracked_or_maskless_detections_are_refused():
    with pytest.raises(ValueError, match="track_ids is None"):
        mots_lines(_det([_mask(0, 1, 0, 1)], [0.9], [0], None), 0)
    det = _det([_mask(0, 1, 0, 1)], [0.9], [0], [1])
    det.masks = None
    with pytest.raises(ValueError, match="masks"):
        mots_lines(det, 0)


def test_several_sources_get_one_file_each(tmp_path):
    assert mots_paths("out/run.txt") == ["out/run.txt"]
    assert mots_paths("out/run.txt", 3) == ["out/run_0.txt", "out/run_1.txt", "out/run_2.txt"]
    writer = MotsWriter(str(tmp_path / "run.txt"), sources=2)
    a, b = _mask(0, 2, 0, 2), _mask(3, 5, 3, 7)
    writer.add(_det([a], [0.9], [0], [1]), frame=1, source=1)
    writer.add(_det([b], [0.9], [1], [1]), frame=0, source=1)  # out of order: sorted
    writer.add(_det([b], [0.9], [2], [5]), frame=0, source=0)
    writer.add(_det([], [], [], []), frame=1, source=0)
    assert writer.frames == 4
    with pytest.raises(ValueError, match="source 2 out of range"):
        writer.add(_det([a], [0.9], [0], [1]), frame=2, source=2)
    assert writer.save() == [str(tmp_path / "run_0.txt"), str(tmp_path / "run_1.txt")]
    assert not (tmp_path / "run.txt").exists()
    first = (tmp_path / "run_0.txt").read_text()
    assert first == f"0 5 3 6 8 {_rle(b)}\n"
    second = (tmp_path / "run_1.txt").read_text()
    assert second == f"0 1 2 6 8 {_rle(b)}\n1 1 1 6 8 {_rle(a)}\n"
    frames = read_mots(str(tmp_path / "run_1.txt"))
    assert [f.ids.tolist() for f in frames] == [[1], [1]]
    assert [f.labels.tolist() for f in frames] == [[1], [0]]
    assert np.array_equal(frames[0].masks[0], b) and np.array_equal(frames[1].masks[0], a)
