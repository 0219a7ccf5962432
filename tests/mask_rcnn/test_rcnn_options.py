"""Soft-NMS, the Sobel edge loss and Dynamic R-CNN against plain-Python references
and hand-computed numbers."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
import torch.nn.functional as F
from conftest import iou

from yolact.models.mask_rcnn.dynamic_rcnn import DynamicRCNN, regression_label_errors, smooth_l1
from yolact.models.mask_rcnn.edge_loss import edge_loss, sobel_edges
from yolact.models.mask_rcnn.soft_nms import soft_nms

Box = list[float]

# ----------------------------------------------------------------------------- Soft-NMS


def ref_soft_nms(
    boxes: list[Box],
    scores: list[float],
    labels: list[int],
    method: str,
    sigma: float,
    iou_thresh: float,
    score_thresh: float,
) -> list[tuple[int, float]]:
    """Greedy Soft-NMS over all boxes at once: (index, score), best first."""
    current = {i: s for i, s in enumerate(scores) if s >= score_thresh}
    out = []
    while current:
        best = max(current, key=lambda j: (current[j], -j))  # ties: lowest index
        out.append((best, current.pop(best)))
        for j in list(current):
            if labels[j] != labels[best]:
                continue
            o = iou(boxes[best], boxes[j])
            if method == "gaussian":
                current[j] *= math.exp(-(o * o) / sigma)
            elif o > iou_thresh:
                current[j] *= 1.0 - o
            if current[j] < score_thresh:
                del current[j]
    out.sort(key=lambda t: (-t[1], t[0]))
    return out


def random_set(rng: random.Random) -> tuple[list[Box], list[float], list[int]]:
    """Crowded boxes (many overlaps), a few labels, scores with deliberate ties."""
    n = rng.choice([0, 1, 2, 3, rng.randint(4, 40)])
    boxes, scores, labels = [], [], []
    for _ in range(n):
        if boxes and rng.random() < 0.15:
            boxes.append(list(rng.choice(boxes)))  # an exact duplicate
        else:
            x, y = rng.uniform(0, 40), rng.uniform(0, 40)
            boxes.append([x, y, x + rng.uniform(5, 30), y + rng.uniform(5, 30)])
        tied = rng.random() < 0.3
        scores.append(rng.choice([0.3, 0.5, 0.9]) if tied else rng.uniform(0.0, 1.0))
        labels.append(rng.choice([0, 3, 7]))
    return boxes, scores, labels


def as_tensors(boxes: list[Box], scores: list[float], labels: list[int]):
    return (
        torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4),
        torch.tensor(scores, dtype=torch.float64),
        torch.tensor(labels, dtype=torch.long),
    )


@pytest.mark.parametrize("method", ["gaussian", "linear"])
def test_soft_nms_matches_brute_force(method: str) -> None:
    rng = random.Random(0)
    for trial in range(150):
        boxes, scores, labels = random_set(rng)
        sigma = rng.choice([0.1, 0.5, 1.0])
        thresh = rng.choice([0.0, 0.3, 0.5])
        score_thresh = rng.choice([0.001, 0.05, 0.3])
        max_det = rng.choice([None, None, 0, 1, 3, 10])
        ref = ref_soft_nms(boxes, scores, labels, method, sigma, thresh, score_thresh)
        ref = ref[:max_det] if max_det is not None else ref
        keep, new_scores = soft_nms(
            *as_tensors(boxes, scores, labels),
            method=method,
            sigma=sigma,
            iou_thresh=thresh,
            score_thresh=score_thresh,
            max_detections=max_det,
        )
        assert keep.dtype == torch.long and new_scores.dtype == torch.float64
        assert keep.tolist() == [i for i, _ in ref], f"trial {trial}"
        assert new_scores.tolist() == pytest.approx([s for _, s in ref], rel=1e-12, abs=1e-15)


def test_soft_nms_float32_and_max_detections() -> None:
    rng = random.Random(1)
    for _ in range(30):
        boxes, scores, labels = random_set(rng)
        ref = ref_soft_nms(boxes, scores, labels, "gaussian", 0.5, 0.3, 0.001)
        b, s, lab = as_tensors(boxes, scores, labels)
        keep, new_scores = soft_nms(b.float(), s.float(), lab, max_detections=5)
        assert new_scores.dtype == torch.float32
        # float32 may reorder near-equal scores: compare the scores, in order.
        assert new_scores.tolist() == pytest.approx([s for _, s in ref[:5]], abs=1e-5)
        assert len(keep) == min(5, len(ref))


def test_soft_nms_classes_are_independent() -> None:
    rng = random.Random(2)
    for _ in range(20):
        boxes, scores, labels = random_set(rng)
        b, s, lab = as_tensors(boxes, scores, labels)
        keep, new_scores = soft_nms(b, s, lab, method="linear", iou_thresh=0.1)
        together = dict(zip(keep.tolist(), new_scores.tolist()))
        alone: dict[int, float] = {}
        for c in set(labels):
            idx = torch.nonzero(lab == c).squeeze(1)
            k, ns = soft_nms(b[idx], s[idx], lab[idx], method="linear", iou_thresh=0.1)
            alone.update(zip(idx[k].tolist(), ns.tolist()))
        assert together == alone


def test_soft_nms_two_boxes_by_hand() -> None:
    # IoU of these two = 50 / (100 + 100 - 50) = 1/3.
    boxes = torch.tensor([[5.0, 0.0, 15.0, 10.0], [0.0, 0.0, 10.0, 10.0]], dtype=torch.float64)
    scores = torch.tensor([0.8, 0.9], dtype=torch.float64)
    labels = torch.tensor([1, 1])

    keep, s = soft_nms(boxes, scores, labels, method="gaussian", sigma=0.5)
    assert keep.tolist() == [1, 0]
    assert s.tolist() == pytest.approx([0.9, 0.8 * math.exp(-(1 / 9) / 0.5)], rel=1e-12)
    assert s[1].item() == pytest.approx(0.6405899, abs=1e-7)

    keep, s = soft_nms(boxes, scores, labels, method="linear", iou_thresh=0.3)
    assert keep.tolist() == [1, 0]
    assert s.tolist() == pytest.approx([0.9, 0.8 * 2 / 3], rel=1e-12)

    # The decay can reorder: a third box of score 0.6 overtakes the decayed 0.5333.
    third = torch.tensor([[100.0, 100.0, 110.0, 110.0]], dtype=torch.float64)
    keep, s = soft_nms(
        torch.cat([boxes, third]),
        torch.tensor([0.8, 0.9, 0.6], dtype=torch.float64),
        torch.tensor([1, 1, 1]),
        method="linear",
        iou_thresh=0.3,
    )
    assert keep.tolist() == [1, 2, 0]

    # Another label: no decay at all.
    keep, s = soft_nms(boxes, scores, torch.tensor([1, 2]), method="gaussian")
    assert keep.tolist() == [1, 0] and s.tolist() == [0.9, 0.8]


def test_soft_nms_max_detections_tie_at_the_cut() -> None:
    # Round 1 picks box 2 (class 0) and box 1 (class 1); box 0 (class 0, far from
    # box 2, so undecayed) ties box 1 and, with the lower index, outranks it.
    boxes = [[0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 6.0, 6.0], [10.0, 10.0, 11.0, 11.0]]
    b, s, lab = as_tensors(boxes, [0.5, 0.5, 0.9], [0, 1, 0])
    keep, new = soft_nms(b, s, lab, max_detections=2)
    assert keep.tolist() == [2, 0] and new.tolist() == [0.9, 0.5]
    keep, new = soft_nms(b, s, lab, max_detections=0)
    assert keep.numel() == 0 and new.numel() == 0


def test_soft_nms_linear_below_thresh_unchanged() -> None:
    boxes = torch.tensor([[5.0, 0.0, 15.0, 10.0], [0.0, 0.0, 10.0, 10.0]], dtype=torch.float64)
    scores = torch.tensor([0.8, 0.9], dtype=torch.float64)
    # IoU == thresh exactly (1/3): not above it, so no decay.
    keep, s = soft_nms(boxes, scores, torch.tensor([0, 0]), method="linear", iou_thresh=1 / 3)
    assert keep.tolist() == [1, 0] and s.tolist() == [0.9, 0.8]

    rng = random.Random(3)
    boxes_l, scores_l, labels_l = random_set(rng)
    while len(boxes_l) < 10:
        boxes_l, scores_l, labels_l = random_set(rng)
    b, sc, lab = as_tensors(boxes_l, scores_l, labels_l)
    keep, s = soft_nms(b, sc, lab, method="linear", iou_thresh=1.0, score_thresh=0.0)
    assert torch.equal(s, sc[keep])
    assert sorted(keep.tolist()) == list(range(len(boxes_l)))
    assert s.tolist() == sorted(scores_l, reverse=True)


def test_soft_nms_ties_duplicates_single_empty() -> None:
    box = [0.0, 0.0, 10.0, 10.0]
    b, s, lab = as_tensors([box, box, box], [0.5, 0.5, 0.5], [0, 0, 0])
    keep, new = soft_nms(b, s, lab, method="gaussian", sigma=0.5)
    assert keep.tolist() == [0, 1, 2]  # lowest index first among ties
    assert new.tolist() == pytest.approx([0.5, 0.5 * math.exp(-2), 0.5 * math.exp(-4)])
    # Linear on an exact duplicate: 1 - IoU = 0, below every positive threshold.
    keep, new = soft_nms(b, s, lab, method="linear")
    assert keep.tolist() == [0] and new.tolist() == [0.5]

    keep, new = soft_nms(*as_tensors([box], [0.7], [4]))
    assert keep.tolist() == [0] and new.tolist() == [0.7]
    keep, new = soft_nms(*as_tensors([box], [0.0005], [4]))  # under score_thresh
    assert keep.numel() == 0 and new.numel() == 0

    keep, new = soft_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert keep.shape == (0,) and keep.dtype == torch.long and new.shape == (0,)


def test_soft_nms_unknown_method() -> None:
    b, s, lab = as_tensors([[0.0, 0.0, 1.0, 1.0]], [0.5], [0])
    with pytest.raises(ValueError):
        soft_nms(b, s, lab, method="hard")
    with pytest.raises(ValueError):
        soft_nms(b, s, lab, method="gaussian", sigma=0.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_soft_nms_cuda_matches_cpu() -> None:
    boxes, scores, labels = random_set(random.Random(4))
    b, s, lab = as_tensors(boxes, scores, labels)
    keep, new = soft_nms(b, s, lab)
    keep_cuda, new_cuda = soft_nms(b.cuda(), s.cuda(), lab.cuda())
    assert keep_cuda.is_cuda and keep_cuda.cpu().tolist() == keep.tolist()
    assert torch.allclose(new_cuda.cpu(), new)


# ----------------------------------------------------------------------------- edge loss


def ref_sobel(mask: list[list[float]]) -> list[list[float]]:
    """Sobel magnitude with a replicated border, by loops."""
    H, W = len(mask), len(mask[0])

    def px(r: int, c: int) -> float:
        return mask[min(max(r, 0), H - 1)][min(max(c, 0), W - 1)]

    out = []
    for r in range(H):
        row = []
        for c in range(W):
            gx = sum(
                w * (px(r + d, c + 1) - px(r + d, c - 1)) for d, w in ((-1, 1), (0, 2), (1, 1))
            )
            gy = sum(
                w * (px(r + 1, c + d) - px(r - 1, c + d)) for d, w in ((-1, 1), (0, 2), (1, 1))
            )
            row.append(math.sqrt(gx * gx + gy * gy))
        out.append(row)
    return out


def test_sobel_matches_loops() -> None:
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(3, 5, 6, generator=g, dtype=torch.float64)
    masks[1] = (masks[1] > 0.5).double()
    edges = sobel_edges(masks)
    assert edges.shape == (3, 5, 6)
    for m, e in zip(masks, edges):
        assert e.tolist() == [pytest.approx(row, abs=1e-12) for row in ref_sobel(m.tolist())]
    assert torch.equal(sobel_edges(masks[:, None]), edges)


def test_sobel_and_edge_loss_by_hand() -> None:
    # Left half 1: a vertical step; each column gets 4 * (x[c+1] - x[c-1]).
    half = torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 4)
    assert sobel_edges(half[None])[0].tolist() == [[0.0, 4.0, 4.0, 0.0]] * 4
    # One pixel in the top-left corner (replicated into the padding).
    corner = torch.zeros(4, 4)
    corner[0, 0] = 1.0
    expected = torch.zeros(4, 4)
    expected[0, 0] = math.sqrt(18.0)  # gx = gy = -3
    expected[0, 1] = expected[1, 0] = math.sqrt(10.0)  # (3, 1)
    expected[1, 1] = math.sqrt(2.0)  # (1, 1)
    assert torch.allclose(sobel_edges(corner[None])[0], expected, atol=1e-6)

    # Logits 0 -> probability 0.5 everywhere -> no edges: loss = mean(target edges^2).
    zeros = torch.zeros(1, 4, 4)
    assert edge_loss(zeros, half[None]).item() == pytest.approx(8 * 16 / 16)
    assert edge_loss(zeros, corner[None]).item() == pytest.approx((18 + 10 + 10 + 2) / 16)
    # Both at once: the mean is over N * H * W.
    both = edge_loss(torch.zeros(2, 4, 4), torch.stack([half, corner]))
    assert both.item() == pytest.approx((128 + 40) / 32)


def square(size: int, top: int, left: int, side: int) -> torch.Tensor:
    mask = torch.zeros(size, size)
    mask[top : top + side, left : left + side] = 1.0
    return mask


def test_edge_loss_zero_for_identical_positive_for_shifted() -> None:
    target = torch.stack([square(16, 3, 4, 6), square(16, 8, 8, 8), torch.zeros(16, 16)])
    assert edge_loss(target, target, from_probs=True).item() == 0.0
    logits = (target * 2 - 1) * 1000.0  # sigmoid is exactly 0 / 1
    assert edge_loss(logits, target).item() == 0.0
    shifted = torch.stack([square(16, 4, 5, 6), square(16, 8, 8, 8), torch.zeros(16, 16)])
    assert edge_loss(shifted, target, from_probs=True).item() > 0.1
    assert edge_loss((shifted * 2 - 1) * 1000.0, target).item() > 0.1


def test_edge_loss_gradients_finite() -> None:
    target = square(8, 2, 2, 4)[None]
    # A constant prediction: Sobel magnitude exactly 0 everywhere.
    logits = torch.zeros(1, 8, 8, requires_grad=True)
    loss = edge_loss(logits, target)
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(logits.grad).all()
    # Also at a constant target and prediction (loss 0).
    logits = torch.full((2, 8, 8), 3.0, requires_grad=True)
    edge_loss(logits, torch.ones(2, 8, 8)).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().max() == 0
    # A generic point: analytic gradients match finite differences.
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    targets = (torch.rand(1, 4, 5, generator=g) > 0.5).double()
    assert torch.autograd.gradcheck(lambda x: edge_loss(x, targets), (logits,))


def test_edge_loss_empty_and_shapes() -> None:
    logits = torch.zeros(0, 7, 7, requires_grad=True)
    loss = edge_loss(logits, torch.zeros(0, 7, 7))
    assert loss.item() == 0.0
    loss.backward()
    assert sobel_edges(torch.zeros(0, 1, 7, 7)).shape == (0, 7, 7)
    with pytest.raises(ValueError):
        edge_loss(torch.zeros(1, 4, 4), torch.zeros(1, 4, 5))
    with pytest.raises(ValueError):
        sobel_edges(torch.zeros(1, 2, 4, 4))


# ----------------------------------------------------------------------------- Dynamic R-CNN


def scripted_step(step: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Image 0: 100 IoUs, image 1: 50 (fewer than K_iou = 75), an image without
    proposals; 40 errors whose 10th smallest is (step + 1) / 400."""
    image0 = torch.linspace(0.3, 0.9, 100) + 0.001 * step
    image1 = torch.linspace(0.5, 0.9, 50) + 0.002 * step
    errors = (step + 1) / 100 * torch.arange(1, 41, dtype=torch.float32) / 40
    errors = errors[torch.randperm(40, generator=torch.Generator().manual_seed(step))]
    return [image0[torch.randperm(100)], image1, torch.zeros(0)], errors


def test_dynamic_rcnn_scripted_interval() -> None:
    dyn = DynamicRCNN()  # k_iou 75, k_beta 10, interval 100, start 0.4 / 1.0
    assert (dyn.iou_thresh, dyn.beta) == (0.4, 1.0)
    for step in range(99):
        dyn.record(*scripted_step(step))
        assert (dyn.iou_thresh, dyn.beta) == (0.4, 1.0)
    dyn.record(*scripted_step(99))
    # 75th largest of image 0 = ascending index 25; image 1 has 50: its 50th largest.
    kth = [0.3 + 25 * 0.6 / 99 + 0.001 * s for s in range(100)]
    kth += [0.5 + 0.002 * s for s in range(100)]
    assert dyn.iou_thresh == pytest.approx(sum(kth) / len(kth), abs=1e-6)
    assert dyn.iou_thresh == pytest.approx(0.5500076, abs=1e-6)
    # 10th smallest error = (s + 1) / 400; median of 100 values = (50 + 51) / 2 / 400.
    assert dyn.beta == pytest.approx(0.12625, abs=1e-7)
    assert dyn.num_records == 100

    # The stores were cleared: the next interval sees only its own values.
    for _ in range(100):
        dyn.record([torch.full((80,), 0.7)], torch.full((30,), 0.05))
    assert dyn.iou_thresh == pytest.approx(0.7) and dyn.beta == pytest.approx(0.05)


def test_dynamic_rcnn_floor_ceiling_and_empty() -> None:
    dyn = DynamicRCNN(k_iou=3, k_beta=2, interval=4, start_iou=0.4, start_beta=1.0)
    for _ in range(4):
        dyn.record([torch.tensor([0.9, 0.8, 0.6, 0.1])], torch.tensor([0.5, 0.2, 0.3]))
    assert dyn.iou_thresh == pytest.approx(0.6) and dyn.beta == pytest.approx(0.3)
    # Low IoUs and large errors: back to the floor / ceiling (the start values).
    for _ in range(4):
        dyn.record([torch.tensor([0.3, 0.2, 0.1])], torch.tensor([5.0, 4.0]))
    assert dyn.iou_thresh == 0.4 and dyn.beta == 1.0
    # An interval with nothing recorded keeps the values.
    for _ in range(4):
        dyn.record([torch.tensor([0.9, 0.9, 0.9])], torch.tensor([0.1, 0.1]))
    for _ in range(4):
        dyn.record([torch.zeros(0)], torch.zeros(0))
    assert dyn.iou_thresh == pytest.approx(0.9) and dyn.beta == pytest.approx(0.1)
    # [P, 4] errors are averaged over the last dimension; fewer than K_beta: the largest.
    dyn = DynamicRCNN(k_beta=10, interval=1)
    dyn.record([], torch.tensor([[0.1, 0.3, 0.0, 0.0], [0.2, 0.2, 0.4, 0.0]]))
    assert dyn.beta == pytest.approx(0.2) and dyn.iou_thresh == 0.4
    with pytest.raises(ValueError):
        DynamicRCNN(interval=0)


def test_regression_label_errors() -> None:
    targets = torch.tensor([[0.5, -1.5, 3.0, -2.0], [0.0, 0.25, 9.0, 9.0]])
    assert regression_label_errors(targets).tolist() == [1.0, 0.125]


def test_dynamic_rcnn_state_dict_resumes_exactly() -> None:
    a = DynamicRCNN(k_iou=20, k_beta=5, interval=25)
    b = DynamicRCNN()
    g = torch.Generator().manual_seed(5)
    steps = []
    for _ in range(140):
        sizes = torch.randint(1, 60, (2,), generator=g).tolist()
        ious = [0.5 + 0.5 * torch.rand(n, generator=g) for n in sizes]
        steps.append((ious, torch.rand(30, generator=g)))
    for step, (ious, errors) in enumerate(steps):
        if step == 60:  # mid-interval
            b.load_state_dict(json.loads(json.dumps(a.state_dict())))
        a.record(ious, errors)
        if step >= 60:
            b.record(ious, errors)
            assert (a.iou_thresh, a.beta, a.num_records) == (b.iou_thresh, b.beta, b.num_records)
    assert a.iou_thresh != 0.4 and a.beta != 1.0
    assert a.state_dict() == b.state_dict()


# ----------------------------------------------------------------------------- smooth L1


def test_smooth_l1() -> None:
    x = torch.tensor([0.0, 0.5, -2.0, 0.05, 3.0], dtype=torch.float64)
    y = torch.zeros(5, dtype=torch.float64)
    assert smooth_l1(x, y, 1.0).tolist() == pytest.approx([0.0, 0.125, 1.5, 0.00125, 2.5])
    for beta in (1.0, 1 / 9, 0.01):
        assert torch.allclose(
            smooth_l1(x, y, beta), F.smooth_l1_loss(x, y, beta=beta, reduction="none")
        )
    assert smooth_l1(x, y, 0.0).tolist() == x.abs().tolist()
    assert smooth_l1(x, y, 1.0, "sum").item() == pytest.approx(4.12625)
    assert smooth_l1(x, y, 1.0, "mean").item() == pytest.approx(4.12625 / 5)

    # Tiny and zero beta: finite gradients of magnitude <= 1, L1's beyond beta.
    for beta in (1e-30, 0.0):
        inp = torch.tensor([1e6, -3.0, 0.0, 1e-35], requires_grad=True)
        smooth_l1(inp, torch.zeros(4), beta, "sum").backward()
        assert torch.isfinite(inp.grad).all() and inp.grad.abs().max() <= 1
        assert inp.grad[:2].tolist() == [1.0, -1.0]
    with pytest.raises(ValueError):
        smooth_l1(x, y, -1.0)
    with pytest.raises(ValueError):
        smooth_l1(x, y, 1.0, "max")
