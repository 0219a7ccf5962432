"""Issue 16 item 11: the best-scored label is drawn on top, and labels stay inside the frame."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_detections

from yolact.io.render import PALETTE, draw_detections

NAMES = ("circle", "star")


def det(boxes: list[list[float]], scores: list[float], size: tuple[int, int]):
    labels = list(range(len(boxes)))
    return make_detections(boxes, labels, scores, None, image_size=size, class_names=NAMES)


def label_pixels(out: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    """[H, W] True where the drawing shows a label background of ``color``."""
    return (out == np.array(color, np.uint8)).all(axis=-1)


def test_best_label_is_on_top_where_labels_overlap() -> None:
    """Two detections at the same place (the default drawing of a synthetic circle):
    the label of the best (``circle: 1.00``) covers that of the worst (``star: 0.00``)."""
    H, W = 80, 200
    image = np.zeros((H, W, 3), np.uint8)
    best, worst = PALETTE[0], PALETTE[5]  # colours of detections 0 and 1
    d = det([[20, 40, 120, 70], [20, 40, 120, 70]], [1.0, 0.0], (H, W))
    out = draw_detections(image, d, masks=False, boxes=False)
    assert label_pixels(out, best).sum() > 100
    assert label_pixels(out, worst).sum() == 0  # entirely covered by the best label
    # where the labels overlap (just above the box's top-left corner) the best shows
    assert tuple(out[38, 21]) == best


def test_best_box_is_on_top_where_boxes_overlap() -> None:
    H, W = 60, 60
    image = np.zeros((H, W, 3), np.uint8)
    d = det([[10, 10, 50, 50], [10, 10, 50, 50]], [0.9, 0.1], (H, W))
    out = draw_detections(image, d, masks=False, text=False)
    assert tuple(out[10, 30]) == PALETTE[0]
    assert label_pixels(out, PALETTE[5]).sum() == 0


@pytest.mark.parametrize(
    ("box", "size"),
    [
        ([150, 30, 199, 59], (60, 200)),  # at the right edge: the label moves left
        ([-20, 30, 40, 59], (60, 200)),  # starts left of the frame
        ([10, 0, 40, 59], (60, 200)),  # at the top edge: the label goes inside the box
        ([10, 55, 40, 59], (60, 200)),  # low box near the bottom
        ([0, 0, 47, 31], (32, 48)),  # a frame narrower than the label: drawn smaller
        ([2, 2, 10, 10], (12, 40)),  # a frame lower than the label
    ],
)
def test_label_stays_inside_the_frame(box: list[float], size: tuple[int, int]) -> None:
    """The label is a filled rectangle in the frame whose border holds no text: a
    label cut by the frame's edge would show its text up to that edge."""
    H, W = size
    out = draw_detections(np.zeros((H, W, 3), np.uint8), det([box], [1.0], size), boxes=False)
    covered = label_pixels(out, PALETTE[0])
    rows, cols = np.nonzero(covered)
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    label = covered[top : bottom + 1, left : right + 1]
    assert label[[0, -1], :].all() and label[:, [0, -1]].all()  # a border all background
    assert (~label).sum() > 0  # and text inside it
    assert not covered[:top].any() and not covered[bottom + 1 :].any()


def test_label_at_right_edge_keeps_its_full_width() -> None:
    """At the right edge the label is moved left, not cut: as wide as away from the edge."""
    H, W = 60, 200
    image = np.zeros((H, W, 3), np.uint8)
    away = draw_detections(image, det([[10, 30, 60, 59]], [1.0], (H, W)), boxes=False)
    edge = draw_detections(image, det([[180, 30, 199, 59]], [1.0], (H, W)), boxes=False)
    width = label_pixels(away, PALETTE[0]).any(axis=0).sum()
    cols = np.nonzero(label_pixels(edge, PALETTE[0]).any(axis=0))[0]
    assert len(cols) == width
    assert cols.max() == W - 1
