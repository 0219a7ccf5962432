"""Pasting masks reuses its resize weights per (mask size, image size, device): the
result is the same as with freshly made weights, and the cache stays small."""

from __future__ import annotations

import torch

from yolact.core.ops import masks as ops


def _fresh_paste(soft: torch.Tensor, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    ops._RESIZE_CACHE.clear()
    return ops.paste_masks_in_boxes(soft, height, width, boxes)


def test_cached_weights_paste_the_same_masks() -> None:
    g = torch.Generator().manual_seed(0)
    soft = torch.rand(4, 20, 20, generator=g)
    boxes = torch.tensor([[0.1, 0.1, 0.5, 0.6], [0.0, 0.2, 1.0, 0.9], [0.4, 0.4, 0.45, 0.5],
                          [0.7, 0.0, 1.0, 0.3]])  # fmt: skip
    cold = _fresh_paste(soft, boxes, 48, 64)
    assert set(ops._RESIZE_CACHE) == {(20, 48, "cpu"), (20, 64, "cpu")}
    warm = ops.paste_masks_in_boxes(soft, 48, 64, boxes)
    assert torch.equal(cold, warm) and cold.dtype == torch.bool and cold.any()
    # The window arithmetic with cached bounds equals the uncached one.
    weights, first, last = ops._RESIZE_CACHE[(20, 64, "cpu")]
    lo, hi = torch.tensor([0, 3, 19]), torch.tensor([5, 3, 20])
    assert all(
        torch.equal(a, b)
        for a, b in zip(ops._touched(weights, lo, hi), ops._touched(weights, lo, hi, (first, last)))
    )
    # Whole-image pasting (no boxes) uses the same weights.
    ry = ops._linear_weights(20, 48, torch.device("cpu"))
    rx = ops._linear_weights(20, 64, torch.device("cpu"))
    assert torch.equal(ops.paste_masks_in_boxes(soft, 48, 64), (ry @ soft @ rx.t()) > 0.5)


def test_the_cache_keeps_the_latest_sizes_only() -> None:
    ops._RESIZE_CACHE.clear()
    soft = torch.ones(1, 8, 8)
    for size in range(20, 20 + ops._RESIZE_CACHE_SIZE + 5):
        ops.paste_masks_in_boxes(soft, size, size)
    assert len(ops._RESIZE_CACHE) == ops._RESIZE_CACHE_SIZE
    assert (8, 20 + ops._RESIZE_CACHE_SIZE + 4, "cpu") in ops._RESIZE_CACHE
    assert (8, 20, "cpu") not in ops._RESIZE_CACHE


def test_no_detections_give_an_empty_bool_tensor() -> None:
    out = ops.paste_masks_in_boxes(torch.zeros(0, 8, 8), 30, 40, torch.zeros(0, 4))
    assert out.shape == (0, 30, 40) and out.dtype == torch.bool
