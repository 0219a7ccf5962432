"""Training / evaluation transforms: geometry, pairing, empty inputs, determinism."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch

from yolact.data.transforms import (
    Compose,
    ConvertToFloat,
    Expand,
    Normalize,
    PhotometricDistort,
    RandomMirror,
    RandomSampleCrop,
    Resize,
    ToPercentCoords,
    resize_masks,
    train_transform,
    val_transform,
)

MEAN = np.array([103.94, 116.78, 123.68], np.float32)
STD = np.array([57.38, 57.12, 58.40], np.float32)
CROWD_COLOUR = (255, 255, 255)
# Label l is painted with PALETTE[l]: distinct colours, none black (background),
# white (crowds) or near the mean pixel (Expand's fill).
PALETTE = [
    c
    for c in itertools.product((0, 85, 170, 255), repeat=3)
    if c not in ((0, 0, 0), CROWD_COLOUR) and np.abs(np.array(c) - MEAN).max() > 60
]
NUM_LABELS = len(PALETTE)


def tight_box(mask: np.ndarray) -> np.ndarray:
    """[4] x1, y1, x2 + 1, y2 + 1 of the nonzero pixels (the box convention used)."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def make_sample(
    rng: np.random.Generator, height: int, width: int, n: int, n_crowd: int = 0
) -> dict[str, object]:
    """Objects in separate grid cells; even labels are rectangles, odd ones ellipses.

    Each instance is painted in its label's colour, crowds in white; boxes are
    the tight boxes of the masks.
    """
    H, W = height, width
    total = max(n + n_crowd, 1)
    cols = int(np.ceil(np.sqrt(total)))
    rows = int(np.ceil(total / cols))
    ch, cw = H // rows, W // cols
    cells = rng.permutation(rows * cols)[: n + n_crowd]
    labels = rng.choice(NUM_LABELS, size=n, replace=False).astype(np.int64)
    image = np.zeros((H, W, 3), np.uint8)
    masks = np.zeros((n + n_crowd, H, W), np.uint8)
    for i, cell in enumerate(cells):
        y0, x0 = (cell // cols) * ch + 1, (cell % cols) * cw + 1
        h = int(rng.integers(3, ch - 1))
        w = int(rng.integers(3, cw - 1))
        y, x = y0 + int(rng.integers(0, ch - 1 - h)), x0 + int(rng.integers(0, cw - 1 - w))
        if i < n and labels[i] % 2 == 1:
            centre, axes = (x + w // 2, y + h // 2), (max(w // 2, 1), max(h // 2, 1))
            cv2.ellipse(masks[i], centre, axes, 0, 0, 360, 1, -1)
        else:
            masks[i, y : y + h, x : x + w] = 1
        colour = PALETTE[labels[i]] if i < n else CROWD_COLOUR
        image[masks[i] == 1] = colour
    boxes = np.array([tight_box(m) for m in masks], np.float32).reshape(-1, 4)
    return {
        "image": image,
        "boxes": boxes[:n],
        "labels": labels,
        "masks": masks[:n],
        "crowd_boxes": boxes[n:],
        "crowd_masks": masks[n:],
        "image_id": 7,
        "file_name": "x.jpg",
        "height": H,
        "width": W,
    }


def random_sample(seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    H, W = (int(v) for v in rng.integers(40, 161, size=2))
    return make_sample(rng, H, W, int(rng.integers(0, 9)), int(rng.integers(0, 3)))


def check_boxes_match_masks(
    boxes: np.ndarray, masks: np.ndarray, labels: np.ndarray | None, tol: float
) -> None:
    """Each mask is non-empty and inside its box; rectangles fill their box."""
    for i, (box, mask) in enumerate(zip(boxes, masks)):
        assert mask.any(), f"object {i} lost its mask"
        tb = tight_box(mask)
        assert (tb[:2] >= box[:2] - tol).all() and (tb[2:] <= box[2:] + tol).all(), (tb, box)
        if labels is None or labels[i] % 2 == 0:  # rectangle
            np.testing.assert_allclose(tb, box, atol=tol)


def check_output_types(out: dict[str, object], size: int) -> None:
    S = size
    N, M = len(out["boxes"]), len(out["crowd_boxes"])
    assert out["image"].dtype == torch.float32 and out["image"].shape == (3, S, S)
    assert out["boxes"].dtype == torch.float32 and out["boxes"].shape == (N, 4)
    assert out["labels"].dtype == torch.int64 and out["labels"].shape == (N,)
    assert out["masks"].dtype == torch.uint8 and out["masks"].shape == (N, S, S)
    assert out["crowd_boxes"].dtype == torch.float32 and out["crowd_boxes"].shape == (M, 4)
    assert out["crowd_masks"].dtype == torch.uint8 and out["crowd_masks"].shape == (M, S, S)
    assert set(out["masks"].unique().tolist()) <= {0, 1}
    for boxes in (out["boxes"], out["crowd_boxes"]):
        assert ((boxes >= 0) & (boxes <= 1 + 1e-6)).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
    assert out["image_id"] == 7 and out["file_name"] == "x.jpg"


def test_train_pipeline_keeps_boxes_masks_and_labels_together() -> None:
    S = 96
    transform = train_transform(S)
    kept = dropped = 0
    for seed in range(150):
        sample = random_sample(seed)
        out = transform(sample, np.random.default_rng(seed))
        check_output_types(out, S)
        labels = out["labels"].numpy()
        assert len(set(labels)) == len(labels) and set(labels) <= set(sample["labels"])
        check_boxes_match_masks(out["boxes"].numpy() * S, out["masks"].numpy(), labels, 2.0)
        check_boxes_match_masks(
            out["crowd_boxes"].numpy() * S, out["crowd_masks"].numpy(), None, 2.0
        )
        kept += len(labels)
        dropped += len(sample["labels"]) - len(labels)
    assert kept > 200 and dropped > 20  # the augmentation both keeps and drops objects


def test_geometric_steps_keep_labels_on_their_pixels_exactly() -> None:
    transform = Compose([ConvertToFloat(), Expand(), RandomSampleCrop(), RandomMirror()])
    for seed in range(150):
        sample = random_sample(seed)
        out = transform(sample, np.random.default_rng(seed))
        image = out["image"]
        assert out["masks"].shape == (len(out["labels"]), *image.shape[:2])
        for label, mask, box in zip(out["labels"], out["masks"], out["boxes"]):
            assert (image[mask == 1] == PALETTE[label]).all()
            check_boxes_match_masks(box[None], mask[None], label[None], 0.0)
        for mask, box in zip(out["crowd_masks"], out["crowd_boxes"]):
            assert (image[mask == 1] == CROWD_COLOUR).all()
            check_boxes_match_masks(box[None], mask[None], None, 0.0)


def test_resized_objects_keep_their_colour() -> None:
    S = 80
    transform = Compose(
        [ConvertToFloat(), Expand(), RandomSampleCrop(), RandomMirror(), Resize(S)]
        + [ToPercentCoords(), Normalize()]
    )
    for seed in range(100):
        out = transform(random_sample(seed), np.random.default_rng(seed))
        image = out["image"].numpy().transpose(1, 2, 0)[:, :, ::-1] * STD + MEAN  # BGR pixels
        for label, mask in zip(out["labels"].numpy(), out["masks"].numpy()):
            pixels = image[mask == 1]
            assert np.abs(pixels - PALETTE[label]).max(axis=1).min() < 1.0


def test_mirror_flips_exactly() -> None:
    sample = ConvertToFloat()(random_sample(3), None)
    W = sample["image"].shape[1]
    out = RandomMirror(p=1.0)(sample, np.random.default_rng(0))
    b, ob = sample["boxes"], out["boxes"]
    np.testing.assert_array_equal(ob[:, 0], W - b[:, 2])
    np.testing.assert_array_equal(ob[:, 2], W - b[:, 0])
    np.testing.assert_array_equal(ob[:, [1, 3]], b[:, [1, 3]])
    np.testing.assert_array_equal(out["image"], sample["image"][:, ::-1])
    np.testing.assert_array_equal(out["masks"], sample["masks"][:, :, ::-1])
    np.testing.assert_array_equal(out["crowd_masks"], sample["crowd_masks"][:, :, ::-1])
    assert RandomMirror(p=0.0)(sample, np.random.default_rng(0)) is sample


def test_expand_shifts_by_the_offset_exactly() -> None:
    for seed in range(20):
        sample = ConvertToFloat()(make_sample(np.random.default_rng(seed), 50, 70, 4, 1), None)
        out = Expand(p=1.0)(sample, np.random.default_rng(seed))
        H2, W2 = out["image"].shape[:2]
        assert 50 <= H2 <= 200 and 70 <= W2 <= 280
        shift = out["boxes"] - sample["boxes"]
        dx, dy = int(shift[0, 0]), int(shift[0, 1])
        np.testing.assert_array_equal(shift, np.tile([dx, dy, dx, dy], (4, 1)))
        np.testing.assert_array_equal(out["crowd_boxes"], sample["crowd_boxes"] + [dx, dy, dx, dy])
        canvas = out["image"].copy()
        np.testing.assert_array_equal(canvas[dy : dy + 50, dx : dx + 70], sample["image"])
        canvas[dy : dy + 50, dx : dx + 70] = MEAN
        np.testing.assert_array_equal(canvas, np.broadcast_to(MEAN, canvas.shape))
        for key in ("masks", "crowd_masks"):
            assert out[key].shape[1:] == (H2, W2)
            np.testing.assert_array_equal(out[key][:, dy : dy + 50, dx : dx + 70], sample[key])
            assert out[key].sum() == sample[key].sum()


def test_resize_scales_boxes_exactly_and_keeps_masks_binary() -> None:
    sample = ConvertToFloat()(make_sample(np.random.default_rng(1), 60, 90, 5, 1), None)
    out = Resize(120, discard_size=None)(sample, np.random.default_rng(0))
    assert out["image"].shape == (120, 120, 3) and out["masks"].shape == (5, 120, 120)
    np.testing.assert_allclose(out["boxes"], sample["boxes"] * [120 / 90, 2, 120 / 90, 2], 1e-6)
    np.testing.assert_array_equal(out["labels"], sample["labels"])
    assert set(np.unique(out["masks"])) <= {0, 1}
    check_boxes_match_masks(out["boxes"], out["masks"], out["labels"], 1.0)
    check_boxes_match_masks(out["crowd_boxes"], out["crowd_masks"], None, 1.0)


def test_resize_masks_beyond_the_opencv_channel_limit() -> None:
    masks = (np.random.default_rng(0).random((600, 13, 17)) > 0.5).astype(np.uint8)
    out = resize_masks(masks, 9, 31)
    assert out.shape == (600, 9, 31) and out.dtype == np.uint8
    for i in (0, 127, 128, 511, 512, 599):
        np.testing.assert_array_equal(out[i], cv2.resize(masks[i], (31, 9)))
    as_float = resize_masks(masks.astype(np.float32), 9, 31)
    assert set(np.unique(as_float)) <= {0.0, 1.0}
    assert resize_masks(masks[:0], 9, 31).shape == (0, 9, 31)


def test_resize_drops_boxes_under_four_pixels() -> None:
    # At S = 100 on a 200 x 200 image, sizes halve: 7.8 px -> 3.9 px, 9 px -> 4.5 px.
    masks = np.zeros((4, 200, 200), np.uint8)
    boxes = np.array(
        [[10, 10, 17.8, 60], [30, 30, 39, 39], [50, 50, 150, 57.8], [100, 120, 160, 190]],
        np.float32,
    )
    for m, (x1, y1, x2, y2) in zip(masks, boxes.astype(int)):
        m[y1:y2, x1:x2] = 1
    sample = {
        "image": np.zeros((200, 200, 3), np.float32),
        "boxes": boxes,
        "labels": np.array([5, 6, 7, 8]),
        "masks": masks,
        "crowd_boxes": boxes[:2],
        "crowd_masks": masks[:2],
    }
    out = Resize(100)(sample, np.random.default_rng(0))
    np.testing.assert_array_equal(out["labels"], [6, 8])
    np.testing.assert_allclose(out["boxes"], boxes[[1, 3]] / 2)
    np.testing.assert_array_equal(out["masks"], resize_masks(masks[[1, 3]], 100, 100))
    np.testing.assert_allclose(out["crowd_boxes"], boxes[[1]] / 2)
    assert out["crowd_masks"].shape == (1, 100, 100)


def coordinate_sample(
    boxes: np.ndarray, crowd_boxes: np.ndarray, height: int, width: int
) -> dict[str, np.ndarray]:
    """A float image whose pixels hold their own (x, y), so a crop reveals its rectangle."""
    H, W = height, width
    ys, xs = np.mgrid[0:H, 0:W]
    image = np.stack([xs, ys, np.zeros_like(xs)], axis=-1).astype(np.float32)
    masks = np.zeros((len(boxes), H, W), np.uint8)
    crowd_masks = np.zeros((len(crowd_boxes), H, W), np.uint8)
    for m, (x1, y1, x2, y2) in zip([*masks, *crowd_masks], [*boxes, *crowd_boxes]):
        m[int(y1) : int(y2), int(x1) : int(x2)] = 1
    return {
        "image": image,
        "boxes": boxes.astype(np.float32),
        "labels": np.arange(len(boxes)),
        "masks": masks,
        "crowd_boxes": crowd_boxes.astype(np.float32),
        "crowd_masks": crowd_masks,
    }


@pytest.mark.parametrize("strict", [False, True])
def test_crop_keeps_exactly_the_boxes_whose_centre_is_inside(strict: bool) -> None:
    rng = np.random.default_rng(0)
    H, W = 80, 120
    cropped = 0
    for seed in range(200):
        xy = rng.uniform(0, [W - 5, H - 5], size=(12, 2))
        wh = rng.uniform(4, 60, size=(12, 2))
        all_boxes = np.concatenate([xy, np.minimum(xy + wh, [W, H])], axis=1)
        sample = coordinate_sample(all_boxes[:9], all_boxes[9:], H, W)
        crop = RandomSampleCrop(strict_iou=strict)
        out = crop(sample, np.random.default_rng(seed))
        if out is sample:
            continue
        cropped += 1
        h, w = out["image"].shape[:2]
        x0, y0 = out["image"][0, 0, :2].astype(int)
        rect = np.array([x0, y0, x0 + w, y0 + h])
        assert w >= 0.3 * W - 1 and h >= 0.3 * H - 1 and 0.4 < h / w < 2.5
        for key, mask_key in (("boxes", "masks"), ("crowd_boxes", "crowd_masks")):
            boxes = sample[key]
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            inside = (centres > rect[:2]).all(1) & (centres < rect[2:]).all(1)
            expected = np.concatenate(
                [np.maximum(boxes[inside, :2], rect[:2]), np.minimum(boxes[inside, 2:], rect[2:])],
                axis=1,
            )
            np.testing.assert_allclose(out[key], expected - [x0, y0, x0, y0])
            expected_masks = sample[mask_key][inside, y0 : y0 + h, x0 : x0 + w]
            np.testing.assert_array_equal(out[mask_key], expected_masks)
            if key == "boxes":
                assert inside.any()
                np.testing.assert_array_equal(out["labels"], np.nonzero(inside)[0])
    assert cropped > 100


def test_strict_crop_meets_the_iou_floor() -> None:
    H, W = 100, 100
    boxes = np.array([[10, 10, 60, 70], [50, 40, 95, 90]], np.float32)
    sample = coordinate_sample(boxes, np.zeros((0, 4)), H, W)
    crop = RandomSampleCrop(options=[(0.7, None)], strict_iou=True)
    cropped = 0
    for seed in range(30):
        out = crop(sample, np.random.default_rng(seed))
        if out is sample:  # all 50 trials failed
            continue
        cropped += 1
        h, w = out["image"].shape[:2]
        x0, y0 = out["image"][0, 0, :2]
        lt = np.maximum(boxes[:, :2], [x0, y0])
        rb = np.minimum(boxes[:, 2:], [x0 + w, y0 + h])
        inter = np.clip(rb - lt, 0, None).prod(1)
        union = (boxes[:, 2:] - boxes[:, :2]).prod(1) + w * h - inter
        assert (inter / union).max() >= 0.7
    assert cropped >= 10
    # An unreachable floor (no crop is 0.3 x 0.3 of the image or less) gives up.
    tiny = coordinate_sample(np.array([[5, 5, 8, 8]], np.float32), np.zeros((0, 4)), H, W)
    impossible = RandomSampleCrop(options=[(0.5, None)], strict_iou=True)
    assert impossible(tiny, np.random.default_rng(0)) is tiny


def test_crop_never_leaves_only_crowds() -> None:
    # One small instance in a corner, a large crowd in the middle.
    sample = coordinate_sample(
        np.array([[0, 0, 12, 12]], np.float32), np.array([[20, 20, 100, 100]], np.float32), 120, 120
    )
    crop = RandomSampleCrop()
    for seed in range(100):
        out = crop(sample, np.random.default_rng(seed))
        assert len(out["boxes"]) == 1 and len(out["labels"]) == 1


def test_empty_instances_and_crowds_work_everywhere() -> None:
    S = 64
    for n, n_crowd in ((0, 0), (0, 2), (2, 0)):
        for seed in range(40):
            sample = make_sample(np.random.default_rng(seed), 50, 60, n, n_crowd)
            out = train_transform(S)(sample, np.random.default_rng(seed))
            check_output_types(out, S)
            if n == 0:
                assert out["boxes"].shape == (0, 4) and out["masks"].shape == (0, S, S)
            if n_crowd == 0:
                assert out["crowd_boxes"].shape == (0, 4)
                assert out["crowd_masks"].shape == (0, S, S)
            val = val_transform(S)(sample, np.random.default_rng(seed))
            assert val["masks"].shape[1:] == (50, 60) and len(val["masks"]) <= n
            assert val["crowd_masks"].shape[1:] == (50, 60) and len(val["crowd_masks"]) <= n_crowd


def test_missing_crowd_keys_read_as_empty() -> None:
    sample = make_sample(np.random.default_rng(0), 50, 60, 3)
    del sample["crowd_boxes"], sample["crowd_masks"]
    out = train_transform(64)(sample, np.random.default_rng(0))
    assert out["crowd_boxes"].shape == (0, 4) and out["crowd_masks"].shape == (0, 64, 64)


def test_same_seed_same_output_and_input_untouched() -> None:
    sample = random_sample(11)
    before = {k: v.copy() for k, v in sample.items() if isinstance(v, np.ndarray)}
    transform = train_transform(64)
    a = transform(sample, np.random.default_rng(5))
    b = transform(sample, np.random.default_rng(5))
    for key in ("image", "boxes", "labels", "masks", "crowd_boxes", "crowd_masks"):
        assert torch.equal(a[key], b[key])
    outs = [transform(sample, np.random.default_rng(s))["image"] for s in range(6)]
    assert not all(torch.equal(outs[0], o) for o in outs[1:])
    for key, value in before.items():
        np.testing.assert_array_equal(sample[key], value)


def test_normalize_gives_rgb_standardised_chw() -> None:
    image = np.empty((4, 5, 3), np.float32)
    image[:] = (10.0, 20.0, 30.0)  # B, G, R
    sample = {
        "image": image,
        "boxes": np.zeros((0, 4), np.float32),
        "labels": np.zeros(0, np.int64),
        "masks": np.zeros((0, 4, 5), np.uint8),
    }
    out = Normalize()(sample, np.random.default_rng(0))["image"]
    assert out.shape == (3, 4, 5) and out.dtype == torch.float32
    # R = (30 - 123.68) / 58.40, G = (20 - 116.78) / 57.12, B = (10 - 103.94) / 57.38
    expected = torch.tensor([-1.6041096, -1.6943277, -1.6371558]).view(3, 1, 1)
    torch.testing.assert_close(out, expected.expand(3, 4, 5), rtol=0, atol=1e-6)


def test_photometric_distort_is_affine_on_grey_and_leaves_geometry() -> None:
    grey = np.repeat(np.linspace(40, 220, 64, dtype=np.float32)[None, :, None], 3, axis=2)
    sample = {"image": np.repeat(grey, 8, axis=0), "boxes": np.ones((1, 4), np.float32)}
    changed = 0
    for seed in range(30):
        out = PhotometricDistort()(sample, np.random.default_rng(seed))
        img = out["image"]
        assert img.dtype == np.float32 and img.shape == sample["image"].shape
        assert out["boxes"] is sample["boxes"]
        # Grey has no saturation or hue: only brightness and contrast act, the same on
        # every channel, so out = a * in + b.
        np.testing.assert_allclose(img[..., 0], img[..., 2], atol=1e-3)
        a, b = np.polyfit(sample["image"][0, :, 0], img[0, :, 1], 1)
        np.testing.assert_allclose(img[..., 1], a * sample["image"][..., 1] + b, atol=1e-2)
        assert 0.5 - 1e-4 <= a <= 1.5 + 1e-4 and abs(b) <= 32 * 1.5 + 1e-3
        changed += not np.allclose(img, sample["image"])
    assert changed > 15

    # Brightness and contrast keep hue, so on coloured pixels the hue moves by one
    # common shift of at most 18 degrees.
    coloured = ConvertToFloat()(make_sample(np.random.default_rng(0), 40, 40, 5), None)
    on = coloured["masks"].any(0) & (np.ptp(coloured["image"], axis=2) > 0)  # not grey
    hue_in = cv2.cvtColor(coloured["image"], cv2.COLOR_BGR2HSV)[..., 0][on]
    shifts = []
    for seed in range(20):
        out = PhotometricDistort()(coloured, np.random.default_rng(seed))["image"]
        hue_out = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)[..., 0][on]
        shift = (hue_out - hue_in + 180) % 360 - 180
        np.testing.assert_allclose(shift, np.median(shift), atol=0.5)
        assert abs(np.median(shift)) <= 18.5
        shifts.append(np.median(shift))
    assert sum(abs(s) > 0.5 for s in shifts) > 5


def test_val_transform_keeps_ground_truth_in_the_original_frame() -> None:
    S = 64
    sample = make_sample(np.random.default_rng(4), 90, 130, 6, 1)
    sample["boxes"][0] = [10, 10, 13, 60]  # 3 px wide -> 1.5 px at S: dropped
    out = val_transform(S)(sample, np.random.default_rng(0))
    assert out["image"].shape == (3, S, S)
    keep = ((sample["boxes"][:, 2:] - sample["boxes"][:, :2]) * [S / 130, S / 90] > 4).all(1)
    assert not keep[0]
    np.testing.assert_array_equal(out["labels"].numpy(), sample["labels"][keep])
    np.testing.assert_array_equal(out["masks"].numpy(), sample["masks"][keep])
    np.testing.assert_allclose(out["boxes"].numpy(), sample["boxes"][keep] / [130, 90, 130, 90])
    assert repr(val_transform(S)).startswith("Compose([ConvertToFloat, Resize")


def test_augmentation_presets() -> None:
    """'light' only mirrors (boxes equal or flipped), 'none' only resizes, both keep all."""
    S = 96
    names = lambda t: [type(s).__name__ for s in t.transforms]  # noqa: E731
    assert names(train_transform(S, augment="none")) == [
        "ConvertToFloat", "Resize", "ToPercentCoords", "Normalize",
    ]  # fmt: skip
    assert names(train_transform(S, augment="light")) == [
        "ConvertToFloat", "PhotometricDistort", "RandomMirror", "Resize", "ToPercentCoords",
        "Normalize",
    ]  # fmt: skip
    assert "RandomSampleCrop" in names(train_transform(S))
    flips = 0
    for seed in range(20):
        sample = random_sample(seed)
        H, W = sample["image"].shape[:2]
        rel = sample["boxes"] / np.array([W, H, W, H], np.float32)
        rng = np.random.default_rng(seed)
        plain = train_transform(S, discard_size=0.0, augment="none")(sample, rng)
        np.testing.assert_allclose(plain["boxes"].numpy(), rel, atol=1e-6)
        light = train_transform(S, discard_size=0.0, augment="light")(sample, rng)
        assert light["labels"].tolist() == sample["labels"].tolist()
        boxes = light["boxes"].numpy()
        mirrored = np.stack([1 - rel[:, 2], rel[:, 1], 1 - rel[:, 0], rel[:, 3]], axis=1)
        same = np.allclose(boxes, rel, atol=1e-6)
        flips += not same
        assert same or np.allclose(boxes, mirrored, atol=1e-6)
    assert 0 < flips < 20
    with pytest.raises(ValueError, match="unknown augmentation 'heavy'"):
        train_transform(S, augment="heavy")


def _write_rcnn_data(root) -> tuple[str, str]:
    """A 96x200 image: a red disc (radius 20 at (150, 48)) and a green 40x40 square at
    x 20..60, y 30..70, on grey; compressed RLE masks."""
    import json

    from pycocotools import mask as mask_utils

    H, W = 96, 200
    image = np.full((H, W, 3), 128, np.uint8)
    disc = np.zeros((H, W), np.uint8)
    cv2.circle(disc, (150, 48), 20, 1, -1)
    square = np.zeros((H, W), np.uint8)
    square[30:70, 20:60] = 1
    image[disc > 0] = (0, 0, 255)
    image[square > 0] = (0, 255, 0)
    (root / "images").mkdir()
    cv2.imwrite(str(root / "images" / "a.png"), image)
    anns = []
    for k, mask in enumerate((disc, square)):
        rle = mask_utils.encode(np.asfortranarray(mask))
        anns.append({
            "id": k + 1, "image_id": 1, "category_id": k + 1, "iscrowd": 0,
            "segmentation": {"size": [H, W], "counts": rle["counts"].decode("ascii")},
            "bbox": [float(v) for v in mask_utils.toBbox(rle)], "area": float(mask.sum()),
        })  # fmt: skip
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": H, "width": W}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "disc"}, {"id": 2, "name": "square"}],
    }
    (root / "ann.json").write_text(json.dumps(data))
    return str(root / "ann.json"), str(root / "images")


def _rcnn_inputs(tmp_path, augment: str, epochs: int) -> list[tuple]:
    """(image [3, H, W], target) pairs the Mask R-CNN's own transform receives in
    training steps and the (image, target) it makes of them, over ``epochs`` epochs."""
    from yolact.data.coco import CocoDataset
    from yolact.engine.trainer import Trainer, TrainOptions
    from yolact.registry import get_config

    cfg = get_config("mask_rcnn_tiny").replace(class_names=("disc", "square"))
    train_set = CocoDataset(*_write_rcnn_data(tmp_path))
    options = TrainOptions(batch_size=1, num_workers=0, save_folder=str(tmp_path),
                           save_interval=0, validation_epoch=-1, progress=False,
                           augment=augment, max_iter=epochs)  # fmt: skip
    trainer = Trainer(cfg, options, train_set)
    seen: list[tuple] = []

    def record(module, args, output) -> None:
        (images, targets), (image_list, resized) = args, output
        size = image_list.image_sizes[0]
        seen.append((images[0], targets[0], image_list.tensors[0, :, : size[0], : size[1]],
                     resized[0]))  # fmt: skip

    trainer.model.transform.register_forward_hook(record)
    for epoch in range(epochs):
        batch = next(iter(trainer._loader(epoch, 0)))
        trainer._step(batch, 1e-4)
    return seen


def test_mask_rcnn_trains_at_the_aspect_ratio_it_predicts_at(tmp_path) -> None:
    """mask_rcnn_tiny predicts at min 160 / max 192: a 96x200 image becomes 92x192."""
    ((image, target, normalised, resized),) = _rcnn_inputs(tmp_path, "none", 1)
    assert tuple(image.shape) == (3, 92, 192) and tuple(normalised.shape) == (3, 92, 192)
    # The model's own resize is the identity on what the transform made.
    s = np.array([192 / 200, 92 / 96] * 2)  # aspect ratio kept within rounding
    np.testing.assert_allclose(target["boxes"].numpy(), resized["boxes"].numpy(), atol=1e-4)
    torch.testing.assert_close(target["masks"], resized["masks"])
    disc_box, square_box = target["boxes"].numpy()
    np.testing.assert_allclose(square_box, np.array([20, 30, 60, 70]) * s, atol=1e-4)
    np.testing.assert_allclose(disc_box, np.array([130, 28, 171, 69]) * s, atol=1e-4)
    assert target["labels"].tolist() == [1, 2]  # past the background class
    disc, square = target["masks"].numpy()
    np.testing.assert_allclose(tight_box(square), square_box, atol=1.0)
    np.testing.assert_allclose(tight_box(disc), disc_box, atol=1.0)
    # The pixels under each mask are the object's colour (RGB in [0, 1]).
    rgb = image.numpy()
    assert (rgb[1][square > 0] > 0.9).mean() > 0.97 and (rgb[0][disc > 0] > 0.9).mean() > 0.97
    x1, y1, x2, y2 = tight_box(disc)
    assert (x2 - x1) / (y2 - y1) == pytest.approx(1.0, abs=0.05)


def test_mask_rcnn_augmentation_keeps_circles_round_and_masks_aligned(tmp_path) -> None:
    steps = _rcnn_inputs(tmp_path, "ssd", 12)
    shapes = set()
    for image, target, _, _ in steps:
        h, w = image.shape[1:]
        shapes.add((h, w))
        assert min(h, w) == 160 or max(h, w) == 192  # the scale the model predicts at
        for label, box, mask in zip(target["labels"], target["boxes"], target["masks"]):
            mask = mask.numpy()
            np.testing.assert_allclose(tight_box(mask), box.numpy(), atol=1.5)
            x1, y1, x2, y2 = tight_box(mask)
            if label == 1 and x1 > 0 and y1 > 0 and x2 < w and y2 < h:  # a whole disc
                assert (x2 - x1) / (y2 - y1) == pytest.approx(1.0, abs=0.08)
    assert len(shapes) > 3  # crops of several aspect ratios
