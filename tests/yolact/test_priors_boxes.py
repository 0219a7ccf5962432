"""Anchors ("priors"), SSD box coding, IoU and coordinate sanitising, by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import box_iou

from yolact.core.ops.boxes import batched_iou, boxes_to_pixels, sanitize_coordinates
from yolact.models.yolact.box_coding import center_size, decode, encode
from yolact.models.yolact.priors import make_priors
from yolact.registry import get_config

# Feature map sides of P3..P7 for a 550 x 550 input.
LEVELS_550 = (69, 35, 18, 9, 5)


def _expected_2x3(sizes: list[tuple[float, float]]) -> torch.Tensor:
    """Rows for a 2 x 3 level: y outer, x inner, then the anchors of the cell."""
    rows = []
    for y in range(2):
        for x in range(3):
            for w, h in sizes:
                rows.append([(x + 0.5) / 3, (y + 0.5) / 2, w, h])
    return torch.tensor(rows, dtype=torch.float32)


def test_priors_2x3_rectangular() -> None:
    # Two scales and two aspect ratios: scale is the outer loop, aspect ratio the inner.
    priors = make_priors(
        2, 3, scales=(10, 20), aspect_ratios=(1.0, 4.0), max_size=100, square=False
    )
    sizes = [(0.1, 0.1), (0.2, 0.05), (0.2, 0.2), (0.4, 0.1)]
    assert priors.shape == (2 * 3 * 4, 4)
    assert priors.dtype == torch.float32
    assert torch.equal(priors, _expected_2x3(sizes))


def test_priors_2x3_square_v1_anchors() -> None:
    # The v1 models set h = w after computing w = s * sqrt(ar) / max_size.
    priors = make_priors(2, 3, scales=(10, 20), aspect_ratios=(1.0, 4.0), max_size=100, square=True)
    sizes = [(0.1, 0.1), (0.2, 0.2), (0.2, 0.2), (0.4, 0.4)]
    assert torch.equal(priors, _expected_2x3(sizes))


def test_priors_half_aspect_ratio_and_first_cell() -> None:
    priors = make_priors(
        2, 3, scales=(24,), aspect_ratios=(1.0, 0.5, 2.0), max_size=550, square=False
    )
    r = math.sqrt(0.5)
    expected_first_cell = torch.tensor(
        [
            [1 / 6, 1 / 4, 24 / 550, 24 / 550],
            [1 / 6, 1 / 4, 24 * r / 550, 24 / r / 550],
            [1 / 6, 1 / 4, 24 * math.sqrt(2) / 550, 24 / math.sqrt(2) / 550],
        ]
    )
    assert torch.allclose(priors[:3], expected_first_cell, rtol=0, atol=1e-7)
    # Last cell (y = 1, x = 2).
    assert torch.allclose(priors[-1, :2], torch.tensor([5 / 6, 3 / 4]))
    # Sizes are relative to max_size, not to the feature map: every cell has the same ones.
    cells = priors.view(6, 3, 4)
    assert torch.equal(cells[:, :, 2:], cells[:1, :, 2:].expand(6, 3, 2))


def _total_priors(name: str, sides: tuple[int, ...] = LEVELS_550) -> int:
    cfg = get_config(name)
    return sum(
        make_priors(s, s, scales, cfg.aspect_ratios, cfg.max_size, cfg.square_anchors).shape[0]
        for s, scales in zip(sides, cfg.scales)
    )


def test_total_priors_at_550() -> None:
    assert _total_priors("yolact_base") == 19248
    assert _total_priors("yolact_resnet50") == 19248
    assert _total_priors("yolact_plus_base") == 57744
    assert _total_priors("yolact_plus_resnet50") == 57744


def test_anchor_styles_of_named_configs() -> None:
    base = get_config("yolact_base")
    assert base.square_anchors and base.scales == ((24,), (48,), (96,), (192,), (384,))
    assert base.aspect_ratios == (1.0, 0.5, 2.0)
    plus = get_config("yolact_plus_base")
    assert not plus.square_anchors
    for level, s in zip(plus.scales, (24, 48, 96, 192, 384)):
        assert level == pytest.approx((s, s * 2 ** (1 / 3), s * 2 ** (2 / 3)), rel=1e-12)
    assert plus.anchors_per_cell == 9


@pytest.mark.parametrize(
    "name, expected",
    [
        ("yolact_im400", (17, 34, 69, 139, 279)),
        ("yolact_im700", (30, 61, 122, 244, 488)),
        ("yolact_base", (24, 48, 96, 192, 384)),
    ],
)
def test_scaled_configs_truncate_scales(name: str, expected: tuple[int, ...]) -> None:
    cfg = get_config(name)
    assert tuple(level[0] for level in cfg.scales) == expected
    assert all(isinstance(level[0], int) for level in cfg.scales)
    assert cfg.square_anchors


def test_decode_by_hand() -> None:
    priors = torch.tensor([[0.5, 0.5, 0.2, 0.4], [0.25, 0.75, 0.1, 0.1]])
    loc = torch.tensor([[1.0, -2.0, 0.5, -1.0], [0.0, 0.0, 0.0, 0.0]])
    cx, cy = 0.5 + 1.0 * 0.1 * 0.2, 0.5 - 2.0 * 0.1 * 0.4
    w, h = 0.2 * math.exp(0.5 * 0.2), 0.4 * math.exp(-1.0 * 0.2)
    expected = torch.tensor(
        [
            [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2],
            [0.2, 0.7, 0.3, 0.8],  # zero offsets: the prior itself
        ]
    )
    assert torch.allclose(decode(loc, priors), expected, atol=1e-6)
    # A leading batch dimension broadcasts.
    batched = decode(torch.stack((loc, torch.zeros_like(loc))), priors)
    assert batched.shape == (2, 2, 4)
    assert torch.allclose(batched[0], expected, atol=1e-6)
    assert torch.allclose(batched[1, 1], expected[1], atol=1e-6)


def test_encode_decode_round_trip() -> None:
    g = torch.Generator().manual_seed(0)
    priors = torch.cat((torch.rand(50, 2, generator=g), 0.05 + torch.rand(50, 2, generator=g)), 1)
    loc = torch.randn(50, 4, generator=g)
    assert torch.allclose(encode(decode(loc, priors), priors), loc, atol=1e-4)


def test_center_size() -> None:
    boxes = torch.tensor([[0.1, 0.2, 0.5, 0.8]])
    assert torch.allclose(center_size(boxes), torch.tensor([[0.3, 0.5, 0.4, 0.6]]))


def test_batched_iou_matches_torchvision() -> None:
    g = torch.Generator().manual_seed(1)

    def random_boxes(*shape: int) -> torch.Tensor:
        xy = torch.rand(*shape, 2, generator=g)
        return torch.cat((xy, xy + 0.05 + torch.rand(*shape, 2, generator=g)), dim=-1)

    a, b = random_boxes(3, 7), random_boxes(3, 5)
    iou = batched_iou(a, b)
    assert iou.shape == (3, 7, 5)
    for c in range(3):
        assert torch.allclose(iou[c], box_iou(a[c], b[c]), atol=1e-6)
    # Disjoint and identical boxes.
    pair = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]]])
    assert torch.equal(batched_iou(pair, pair)[0], torch.eye(2))


def test_sanitize_coordinates_by_hand() -> None:
    c1 = torch.tensor([0.5, 0.9, -0.1])
    c2 = torch.tensor([0.25, 1.2, 0.3])
    lo, hi = sanitize_coordinates(c1, c2, 8)
    # Scaled: (4, 2), (7.2, 9.6), (-0.8, 2.4); ordered, clamped to [0, 8], not rounded.
    assert torch.allclose(lo, torch.tensor([2.0, 7.2, 0.0]))
    assert torch.allclose(hi, torch.tensor([4.0, 8.0, 2.4]))
    lo, hi = sanitize_coordinates(c1, c2, 8, padding=1)
    assert torch.allclose(lo, torch.tensor([1.0, 6.2, 0.0]))
    assert torch.allclose(hi, torch.tensor([5.0, 8.0, 3.4]))


def test_boxes_to_pixels_swaps_clamps_truncates() -> None:
    boxes = torch.tensor(
        [
            [0.25, 0.8, 0.1, 0.3],  # swapped in both axes
            [0.123, 0.456, 0.789, 1.5],  # fractional; y2 beyond the image
            [-0.05, -0.2, 0.019, 0.999],  # negative; 0.019 * 100 = 1.9 -> 1
        ]
    )
    px = boxes_to_pixels(boxes, width=100, height=50)
    expected = torch.tensor(
        [[10.0, 15.0, 25.0, 40.0], [12.0, 22.0, 78.0, 50.0], [0.0, 0.0, 1.0, 49.0]]
    )
    assert torch.equal(px, expected)
    assert boxes_to_pixels(torch.zeros(0, 4), 10, 10).shape == (0, 4)
