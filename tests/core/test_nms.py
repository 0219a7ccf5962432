"""Fast NMS, cross-class Fast NMS and standard NMS against plain-Python references."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import iou

from yolact.models.yolact.fast_nms import cross_class_fast_nms, fast_nms, standard_nms

Box = list[float]


def ref_fast_nms(
    boxes: list[Box], scores: list[list[float]], thresh: float, top_k: int, max_det: int
) -> list[tuple[float, int, int]]:
    """(score, index, class) of the survivors, best first."""
    out = []
    for c, row in enumerate(scores):
        ranked = sorted(range(len(boxes)), key=lambda i: -row[i])[:top_k]
        for rank, i in enumerate(ranked):
            # Every higher-ranked box counts, suppressed or not.
            if all(iou(boxes[i], boxes[j]) <= thresh for j in ranked[:rank]):
                out.append((row[i], i, c))
    out.sort(key=lambda t: -t[0])
    return out[:max_det]


def ref_cross_class_nms(
    boxes: list[Box], scores: list[list[float]], thresh: float, top_k: int
) -> list[tuple[float, int, int]]:
    best = []
    for i in range(len(boxes)):
        column = [row[i] for row in scores]
        c = max(range(len(column)), key=lambda k: column[k])
        best.append((column[c], i, c))
    ranked = sorted(best, key=lambda t: -t[0])[:top_k]
    return [
        t
        for rank, t in enumerate(ranked)
        if all(iou(boxes[t[1]], boxes[u[1]]) <= thresh for u in ranked[:rank])
    ]


def ref_greedy_nms(
    boxes: list[Box], scores: list[list[float]], thresh: float, conf: float, max_det: int
) -> list[tuple[float, int, int]]:
    """Classic NMS: only boxes that were kept suppress others."""
    out = []
    for c, row in enumerate(scores):
        candidates = sorted((i for i in range(len(boxes)) if row[i] > conf), key=lambda i: -row[i])
        kept: list[int] = []
        for i in candidates:
            if all(iou(boxes[i], boxes[k]) <= thresh for k in kept):
                kept.append(i)
        out += [(row[i], i, c) for i in kept]
    out.sort(key=lambda t: -t[0])
    return out[:max_det]


def box(x1: int, y1: int, w: int, h: int) -> Box:
    return [float(x1), float(y1), float(x1 + w), float(y1 + h)]


def random_case(rng: random.Random) -> tuple[list[Box], list[list[float]]]:
    """Integer-coordinate boxes in a few clusters (so many overlap); distinct random scores.

    Integer coordinates keep every IoU exact in float32 and float64 alike, so the
    comparison with the thresholds cannot flip between the two implementations.
    """
    n = rng.randint(1, 60)
    c = rng.randint(1, 4)
    centres = [(rng.randint(10, 90), rng.randint(10, 90)) for _ in range(rng.randint(1, 5))]
    boxes = []
    for _ in range(n):
        cx, cy = rng.choice(centres)
        x1, y1 = cx + rng.randint(-8, 8), cy + rng.randint(-8, 8)
        boxes.append(box(x1, y1, rng.randint(1, 25), rng.randint(1, 25)))
    scores = torch.rand(c, n, generator=torch.Generator().manual_seed(rng.randint(0, 10**6)))
    return boxes, scores.tolist()


def as_tensors(boxes: list[Box], scores: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
        torch.tensor(scores, dtype=torch.float32).view(len(scores), -1),
    )


def check_sorted(scores: torch.Tensor) -> None:
    assert torch.all(scores[:-1] >= scores[1:])


def check_exact(result: tuple[torch.Tensor, ...], expected: list[tuple[float, int, int]]) -> None:
    idx, cls, sc = result
    check_sorted(sc)
    assert list(zip(idx.tolist(), cls.tolist())) == [(i, c) for _, i, c in expected]
    assert sc.tolist() == pytest.approx([s for s, _, _ in expected], abs=0)


@pytest.mark.parametrize("seed", range(60))
def test_fast_nms_matches_reference(seed: int) -> None:
    rng = random.Random(seed)
    boxes, scores = random_case(rng)
    n = len(boxes)
    thresh = rng.choice((0.3, 0.5, 0.7))
    top_k = rng.randint(1, n + 5)
    max_det = rng.randint(1, 3 * n)
    result = fast_nms(*as_tensors(boxes, scores), thresh, top_k, max_det)
    check_exact(result, ref_fast_nms(boxes, scores, thresh, top_k, max_det))


@pytest.mark.parametrize("seed", range(40))
def test_cross_class_fast_nms_matches_reference(seed: int) -> None:
    rng = random.Random(1000 + seed)
    boxes, scores = random_case(rng)
    thresh = rng.choice((0.3, 0.5, 0.7))
    top_k = rng.randint(1, len(boxes) + 5)
    # Capped by top_k only: max_detections = 1 must not cut the result.
    result = cross_class_fast_nms(*as_tensors(boxes, scores), thresh, top_k, 1)
    check_exact(result, ref_cross_class_nms(boxes, scores, thresh, top_k))


@pytest.mark.parametrize("seed", range(40))
def test_standard_nms_matches_greedy_reference(seed: int) -> None:
    rng = random.Random(2000 + seed)
    boxes, scores = random_case(rng)
    thresh = rng.choice((0.3, 0.5, 0.7))
    conf = rng.choice((0.0, 0.05, 0.5))
    max_det = rng.randint(1, 3 * len(boxes))
    result = standard_nms(*as_tensors(boxes, scores), thresh, conf, max_det)
    check_exact(result, ref_greedy_nms(boxes, scores, thresh, conf, max_det))


def tied_case(seed: int) -> tuple[list[Box], list[list[float]]]:
    """Score ties only between boxes of different, far-apart clusters (IoU 0), so the
    surviving set does not depend on how a sort orders equal scores."""
    rng = random.Random(seed)
    per_cluster, clusters, num_classes = 4, 5, 3
    levels = [0.2, 0.4, 0.6, 0.8]
    boxes, scores = [], [[] for _ in range(num_classes)]
    for k in range(clusters):
        for _ in range(per_cluster):
            x1, y1 = 100 * k + rng.randint(0, 10), rng.randint(0, 10)
            boxes.append(box(x1, y1, rng.randint(10, 30), rng.randint(10, 30)))
        for row in scores:
            row += rng.sample(levels, per_cluster)
    # Round through float32 so the reference holds the very values the tensors hold.
    return boxes, torch.tensor(scores, dtype=torch.float32).tolist()


def as_set(result: tuple[torch.Tensor, ...]) -> set[tuple[int, int]]:
    return set(zip(result[0].tolist(), result[1].tolist()))


@pytest.mark.parametrize("seed", range(10))
def test_fast_nms_tied_scores(seed: int) -> None:
    boxes, scores = tied_case(seed)
    n = len(boxes)
    expected = ref_fast_nms(boxes, scores, 0.5, n, 10**6)
    result = fast_nms(*as_tensors(boxes, scores), 0.5, n, 10**6)
    check_sorted(result[2])
    assert as_set(result) == {(i, c) for _, i, c in expected}
    # A max_detections cut inside a run of ties: the kept scores are still determined.
    cut = len(expected) // 2 + 1
    result = fast_nms(*as_tensors(boxes, scores), 0.5, n, cut)
    assert result[2].tolist() == pytest.approx([s for s, _, _ in expected[:cut]])
    assert as_set(result) <= {(i, c) for _, i, c in expected}
    for i, c, s in zip(*(t.tolist() for t in result)):
        assert scores[c][i] == s


@pytest.mark.parametrize("seed", range(10))
def test_standard_nms_tied_scores(seed: int) -> None:
    boxes, scores = tied_case(100 + seed)
    expected = ref_greedy_nms(boxes, scores, 0.5, 0.05, 10**6)
    result = standard_nms(*as_tensors(boxes, scores), 0.5, 0.05, 10**6)
    check_sorted(result[2])
    assert as_set(result) == {(i, c) for _, i, c in expected}


def test_suppressed_boxes_still_suppress_in_fast_nms() -> None:
    # A overlaps B, B overlaps C, A does not overlap C.
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [4.0, 0.0, 14.0, 10.0], [8.0, 0.0, 18.0, 10.0]])
    scores = torch.tensor([[0.9, 0.8, 0.7]])
    assert fast_nms(boxes, scores, 0.3, 200, 100)[0].tolist() == [0]
    assert standard_nms(boxes, scores, 0.3, 0.05, 100)[0].tolist() == [0, 2]


def test_identical_boxes() -> None:
    box = [10.0, 10.0, 30.0, 40.0]
    boxes = torch.tensor([box, box, box, [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([[0.7, 0.9, 0.8, 0.1], [0.6, 0.6, 0.0, 0.0]])
    idx, cls, sc = fast_nms(boxes, scores, 0.5, 200, 100)
    per_class = {c: sorted(i for i, k in zip(idx.tolist(), cls.tolist()) if k == c) for c in (0, 1)}
    assert per_class[0] == [1, 3]
    # Equal scores on identical boxes: exactly one of the two survives (which one is a
    # tie); box 2, identical but lower, is suppressed; box 3 is elsewhere (no second
    # score threshold, so its score of 0 does not matter).
    assert per_class[1] in ([0, 3], [1, 3])
    check_sorted(sc)
    # Across classes, identical boxes suppress each other once.
    idx, cls, _ = cross_class_fast_nms(boxes, scores, 0.5, 200, 100)
    assert idx.tolist() == [1, 3] and cls.tolist() == [0, 0]


@pytest.mark.parametrize("method", ["fast", "cross_class", "standard"])
def test_empty_and_single_input(method: str) -> None:
    def run(boxes: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if method == "fast":
            return fast_nms(boxes, scores, 0.5, 200, 100)
        if method == "cross_class":
            return cross_class_fast_nms(boxes, scores, 0.5, 200, 100)
        return standard_nms(boxes, scores, 0.5, 0.05, 100)

    idx, cls, sc = run(torch.zeros(0, 4), torch.zeros(3, 0))
    assert idx.shape == cls.shape == sc.shape == (0,)
    assert idx.dtype == cls.dtype == torch.int64
    assert sc.dtype == torch.float32

    idx, cls, sc = run(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[0.1], [0.7], [0.2]]))
    if method == "fast":
        # Fast NMS keeps the box once per class (no second score threshold).
        assert list(zip(idx.tolist(), cls.tolist())) == [(0, 1), (0, 2), (0, 0)]
        assert sc.tolist() == pytest.approx([0.7, 0.2, 0.1])
    else:
        assert idx.tolist()[0] == 0 and cls.tolist()[0] == 1
        assert sc.tolist()[0] == pytest.approx(0.7)
        assert len(idx) == (1 if method == "cross_class" else 3)


def test_fast_nms_top_k_per_class() -> None:
    # Ten far-apart boxes: nothing is suppressed, top_k keeps the best per class.
    boxes = torch.tensor([[20.0 * i, 0.0, 20.0 * i + 10, 10.0] for i in range(10)])
    scores = torch.stack((torch.linspace(0.1, 0.9, 10), torch.linspace(0.85, 0.05, 10)))
    idx, cls, sc = fast_nms(boxes, scores, 0.5, 3, 100)
    assert as_set((idx, cls)) == {(0, 1), (1, 1), (2, 1), (7, 0), (8, 0), (9, 0)}
    check_sorted(sc)
    idx, cls, sc = fast_nms(boxes, scores, 0.5, 3, 4)
    assert idx.tolist() == [9, 0, 8, 1] and cls.tolist() == [0, 1, 0, 1]
    assert sc.tolist() == pytest.approx([0.9, 0.85, 0.8111111, 0.7611111])


@pytest.mark.parametrize(
    "boxes",
    [
        # IoU 0.5012: the second box must go.
        [
            [0.29700413, 0.75675511, 0.30307203, 0.77443176],
            [0.29757744, 0.7594859, 0.30162707, 0.77776521],
        ],
        # IoU 0.4996: both stay.
        [
            [0.61161440, 0.38057532, 0.62590682, 0.38884603],
            [0.61404764, 0.37981891, 0.62918698, 0.38691350],
        ],
    ],
)
def test_standard_nms_is_exact_for_small_relative_boxes_of_high_classes(boxes: list[Box]) -> None:
    # Relative boxes of class 79: a per-class coordinate shift done in float32 would
    # round these coordinates by ~1e-5 and flip both decisions.
    scores = torch.zeros(80, 2)
    scores[79] = torch.tensor([0.9, 0.8])
    boxes = torch.tensor(boxes).tolist()  # the float32 values the tensors hold
    expected = ref_greedy_nms(boxes, scores.tolist(), 0.5, 0.05, 100)
    assert len(expected) == (1 if iou(*boxes) > 0.5 else 2)
    check_exact(standard_nms(*as_tensors(boxes, scores.tolist()), 0.5, 0.05, 100), expected)
