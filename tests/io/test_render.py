"""Rendering of detections: mask blending, boxes, labels, FPS overlay."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DET_NAMES, DET_SIZE, make_det

from yolact.core.structures import Detections
from yolact.io.render import PALETTE, blend_masks, color_for, draw_detections

H, W = DET_SIZE
NAMES = DET_NAMES


def full_mask(n: int = 1) -> torch.Tensor:
    return torch.ones((n, H, W), dtype=torch.bool)


def test_palette_and_color_for() -> None:
    assert len(PALETTE) == 19
    assert len(set(PALETTE)) == 19
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in PALETTE)
    # by detection index, stepping 5 palette entries at a time
    assert color_for(0, 2, False) == PALETTE[0]
    assert color_for(1, 2, False) == PALETTE[5]
    assert color_for(4, 2, False) == PALETTE[1]  # 20 % 19
    # by class: the index does not matter
    assert color_for(0, 2, True) == color_for(7, 2, True) == PALETTE[10]
    # 19 consecutive detections use all 19 colours
    assert len({color_for(i, 0, False) for i in range(19)}) == 19


def test_single_full_mask_on_black() -> None:
    image = np.zeros((H, W, 3), np.uint8)
    det = make_det([[0, 0, W, H]], [0], [0.9], full_mask())
    out = draw_detections(image, det, boxes=False, text=False, mask_alpha=0.45)
    c = np.array(PALETTE[0], dtype=np.float64)  # (60, 20, 220)
    expected = np.round(0.45 * c)  # (27, 9, 99)
    assert expected.tolist() == [27.0, 9.0, 99.0]
    diff = np.abs(out.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= 1
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)


def test_two_overlapping_masks_best_on_top() -> None:
    image = np.full((H, W, 3), 100, np.uint8)
    masks = torch.zeros((2, H, W), dtype=torch.bool)
    masks[0, :, :40] = True  # best detection: columns 0..39
    masks[1, :, 20:] = True  # second: columns 20..59, overlap 20..39
    det = make_det([[0, 0, 40, H], [20, 0, W, H]], [0, 1], [0.9, 0.6], masks)
    out = draw_detections(image, det, boxes=False, text=False, mask_alpha=0.5).astype(int)
    assert color_for(0, 0, False) == (60, 20, 220)
    assert color_for(1, 1, False) == (200, 200, 30)
    # only mask 0: 100 * 0.5 + c0 * 0.5
    only0 = [80, 60, 160]
    # overlap: 100 * 0.25 + c0 * 0.5 + c1 * 0.5 * 0.5
    both = [105, 85, 142.5]
    # only mask 1: 100 * 0.5 + c1 * 0.5
    only1 = [150, 150, 65]
    assert np.abs(out[:, :20] - np.array(only0)).max() <= 1
    assert np.abs(out[:, 20:40] - np.array(both)).max() <= 1
    assert np.abs(out[:, 40:] - np.array(only1)).max() <= 1
    # colour by class so each colour follows its detection; with the other
    # one ranked first, its colour dominates the overlap:
    # 100 * 0.25 + c1 * 0.5 + c0 * 0.25 = (140, 130, 95)
    kw = {"boxes": False, "text": False, "mask_alpha": 0.5, "class_color": True}
    out1 = draw_detections(image, det, **kw).astype(int)
    assert np.abs(out1[:, 20:40] - np.array(both)).max() <= 1
    swapped = make_det([[20, 0, W, H], [0, 0, 40, H]], [1, 0], [0.9, 0.6], masks.flip(0))
    out2 = draw_detections(image, swapped, **kw).astype(int)
    assert np.abs(out2[:, 20:40] - np.array([140, 130, 95])).max() <= 1
    assert np.abs(out2[:, :20] - np.array(only0)).max() <= 1
    assert np.abs(out2[:, 40:] - np.array(only1)).max() <= 1


def test_blend_masks_matches_formula_with_three_masks() -> None:
    torch.manual_seed(0)
    img = torch.rand(5, 7, 3) * 255
    masks = torch.rand(3, 5, 7) > 0.4
    colors = torch.tensor([[10.0, 20.0, 30.0], [200.0, 0.0, 50.0], [0.0, 255.0, 128.0]])
    a = 0.3
    got = blend_masks(img, masks, colors, a)
    # back-to-front painting of the last mask first gives the same result
    ref = img.clone()
    for j in (2, 1, 0):
        m = masks[j].float().unsqueeze(-1) * a
        ref = ref * (1 - m) + colors[j] * m
    torch.testing.assert_close(got, ref, atol=1e-3, rtol=0)


def test_pixels_outside_masks_unchanged() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    masks = torch.zeros((2, H, W), dtype=torch.bool)
    masks[0, 5:15, 5:25] = True
    masks[1, 10:30, 20:50] = True
    det = make_det([[5, 5, 25, 15], [20, 10, 50, 30]], [0, 2], [0.8, 0.7], masks)
    out = draw_detections(image, det, boxes=False, text=False)
    outside = ~(masks[0] | masks[1]).numpy()
    assert np.array_equal(out[outside], image[outside])
    assert not np.array_equal(out[~outside], image[~outside])


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_only_the_covered_rectangle_is_blended_with_the_same_result(kind, monkeypatch) -> None:
    """The blend runs over the masks' bounding rectangle only, and the drawing equals
    the full-image blend bit for bit."""
    import yolact.io.render as render

    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    masks = torch.zeros((3, H, W))
    masks[0, 5:15, 8:25] = 1.0
    masks[1, 12:31, 20:44] = 0.6 if kind == "float" else 1.0
    masks = masks.bool() if kind == "bool" else masks
    det = make_det([[8, 5, 25, 15], [20, 12, 44, 31], [0, 0, 1, 1]], [0, 2, 1], [0.9, 0.7, 0.5],
                   masks)  # fmt: skip
    colors = torch.tensor([color_for(i, det.labels[i].item(), False) for i in range(3)])
    full = blend_masks(torch.from_numpy(image).float(), masks, colors.float(), 0.45)
    expected = full.round().clamp(0, 255).to(torch.uint8).numpy()
    shapes = []
    real = render.blend_masks
    monkeypatch.setattr(
        render, "blend_masks", lambda im, *a: shapes.append(im.shape) or real(im, *a)
    )
    out = draw_detections(image, det, boxes=False, text=False)
    assert shapes == [(31 - 5, 44 - 8, 3)]
    assert np.array_equal(out, expected)


def test_empty_masks_leave_the_image_as_it_is() -> None:
    image = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    det = make_det([[1, 1, 9, 9]], [0], [0.9], torch.zeros((1, H, W), dtype=torch.bool))
    assert np.array_equal(draw_detections(image, det, boxes=False, text=False), image)


def test_box_outline_has_detection_colour() -> None:
    image = np.zeros((H, W, 3), np.uint8)
    det = make_det([[10, 5, 50, 30], [2, 2, 8, 8]], [0, 1], [0.9, 0.5], full_mask(2))
    out = draw_detections(image, det, masks=False, text=False)
    c0, c1 = np.array(PALETTE[0]), np.array(PALETTE[5])
    assert (out[5, 10:51] == c0).all() and (out[30, 10:51] == c0).all()
    assert (out[5:31, 10] == c0).all() and (out[5:31, 50] == c0).all()
    assert (out[2, 2:9] == c1).all() and (out[2:9, 8] == c1).all()
    assert (out[15, 20] == 0).all()  # inside the box, no mask drawn
    assert (out[35:, :] == 0).all()


def test_box_on_image_border_is_visible() -> None:
    image = np.zeros((H, W, 3), np.uint8)
    det = make_det([[0, 0, W, H]], [0], [0.9], None)
    out = draw_detections(image, det, text=False)
    c0 = np.array(PALETTE[0])
    assert (out[H - 1, :] == c0).all() and (out[:, W - 1] == c0).all()


def test_text_label_near_box_top_left() -> None:
    image = np.zeros((H, 200, 3), np.uint8)  # wide enough for the label where the box is
    det = make_det([[10, 25, 50, 38]], [0], [0.87], None, image_size=(H, 200))
    out = draw_detections(image, det, boxes=False)
    c0 = np.array(PALETTE[0])
    label = out[:25, 10:]
    # filled background in the detection colour above the box, white-ish text on it
    assert (label == c0).all(axis=-1).sum() > 50
    assert (label.min(axis=-1) > 200).sum() > 10
    assert (out[:, :10] == 0).all()  # nothing left of the box
    assert (out[26:, :] == 0).all()  # nothing inside or below the box


def test_text_label_moves_inside_at_top_edge() -> None:
    image = np.zeros((H, W, 3), np.uint8)
    det = make_det([[5, 0, 50, 38]], [1], [0.5], None)
    out = draw_detections(image, det, boxes=False)
    assert (out[0:21, 5:] == np.array(PALETTE[0])).all(axis=-1).sum() > 50
    assert (out[21:, :] == 0).all()


def test_scores_false_gives_shorter_label() -> None:
    image = np.zeros((H, 200, 3), np.uint8)
    masks = torch.zeros((1, H, 200), dtype=torch.bool)
    det = make_det([[0, 30, 150, 39]], [0], [0.87], masks, image_size=(H, 200))
    with_score = draw_detections(image, det, boxes=False)
    name_only = draw_detections(image, det, boxes=False, scores=False)
    c0 = np.array(PALETTE[0])
    width_score = (with_score[20] == c0).all(axis=-1).sum()
    width_name = (name_only[20] == c0).all(axis=-1).sum()
    assert width_name < width_score


def test_fps_overlay_top_left() -> None:
    image = np.full((H, 120, 3), 128, np.uint8)
    det = Detections.empty((H, 120), NAMES)
    out = draw_detections(image, det, fps=23.4)
    corner = out[:20, :80]
    assert (corner == 0).all(axis=-1).sum() > 100  # black background
    assert (corner.min(axis=-1) > 200).sum() > 10  # white text
    assert np.array_equal(out[30:], image[30:])
    assert np.array_equal(out[:, 100:], image[:, 100:])


def test_empty_detections_equal_copy() -> None:
    image = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    out = draw_detections(image, Detections.empty((H, W), NAMES))
    assert out is not image and np.array_equal(out, image)
    out2 = draw_detections(image, Detections.empty((H, W), NAMES, with_masks=False))
    assert np.array_equal(out2, image)


def test_input_not_modified() -> None:
    image = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    before = image.copy()
    det = make_det([[10, 25, 50, 38]], [0], [0.87], full_mask())
    out = draw_detections(image, det, fps=5.0)
    assert np.array_equal(image, before)
    assert not np.array_equal(out, image)


def test_class_color_same_class_same_colour() -> None:
    image = np.zeros((H, W, 3), np.uint8)
    masks = torch.zeros((2, H, W), dtype=torch.bool)
    masks[0, :, :20] = True
    masks[1, :, 40:] = True
    det = make_det([[0, 0, 20, H], [40, 0, W, H]], [2, 2], [0.9, 0.8], masks)
    by_class = draw_detections(image, det, boxes=False, text=False, class_color=True)
    by_index = draw_detections(image, det, boxes=False, text=False)
    assert np.array_equal(by_class[10, 5], by_class[10, 50])
    assert not np.array_equal(by_index[10, 5], by_index[10, 50])


def test_mask_size_mismatch_raises() -> None:
    image = np.zeros((H + 1, W, 3), np.uint8)
    det = make_det([[0, 0, 5, 5]], [0], [0.9], full_mask())
    with pytest.raises(ValueError, match="masks are"):
        draw_detections(image, det)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu() -> None:
    image = np.random.default_rng(4).integers(0, 256, (H, W, 3), dtype=np.uint8)
    masks = torch.rand(3, H, W, generator=torch.Generator().manual_seed(0)) > 0.5
    det = make_det(
        [[1, 1, 20, 20], [5, 5, 30, 30], [10, 10, 50, 35]], [0, 1, 2], [0.9, 0.7, 0.5], masks
    )
    cpu = draw_detections(image, det)
    gpu = draw_detections(image, det.to("cuda"))
    assert np.abs(cpu.astype(int) - gpu.astype(int)).max() <= 1
