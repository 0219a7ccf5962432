"""Training and evaluation transforms: the original YOLACT (SSD-style) augmentation.

A *sample* is a plain dict:

- ``image``: uint8 [H, W, 3] BGR (float32 after :class:`ConvertToFloat`).
- ``boxes``: float32 [N, 4] x1, y1, x2, y2 in absolute pixels.
- ``labels``: int64 [N].
- ``masks``: uint8 [N, H, W], values 0/1.
- ``crowd_boxes``: float32 [M, 4]; ``crowd_masks``: uint8 [M, H, W] (missing
  crowd keys are read as empty).
- any other key (``image_id``, ``file_name``, ``height``, ``width``, ...) is
  passed through untouched.

Every transform is a callable ``(sample, rng) -> sample`` that returns a new
dict and never modifies its input; all randomness comes from the
``np.random.Generator`` handed in, so DataLoader workers can be seeded and
results are reproducible. Crowd annotations follow every geometric step
together with the instances (as in the original, where they travel at the end
of the same arrays), so they stay aligned with the image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from yolact.core.config import AUGMENTATIONS, PIXEL_MEAN_BGR, PIXEL_STD_BGR, Augmentation

Sample = dict[str, Any]
Transform = Callable[[Sample, np.random.Generator], Sample]

# SSD's crop modes: keep the image, minimum IoU 0.1 / 0.3 / 0.7 / 0.9, any crop.
CROP_OPTIONS: tuple[tuple[float | None, float | None] | None, ...] = (
    None,
    (0.1, None),
    (0.3, None),
    (0.7, None),
    (0.9, None),
    (None, None),
)


def _crowds(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """The crowd boxes [M, 4] and masks [M, H, W] of a sample, empty if absent."""
    if "crowd_boxes" in sample:
        return sample["crowd_boxes"], sample["crowd_masks"]
    H, W = sample["masks"].shape[1:]
    return np.zeros((0, 4), np.float32), np.zeros((0, H, W), np.uint8)


def resize_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize binary masks with bilinear interpolation, keeping them binary.

    uint8 0/1 masks come out of OpenCV's fixed-point bilinear resize rounded,
    i.e. thresholded at 0.5 as in the original; other dtypes are thresholded at
    0.5 explicitly. One ``cv2.resize`` per mask: on [N, H, W] uint8 masks this
    is 3-5x faster than resizing them as the channels of one [H, W, N] image
    (which also needs chunks of at most 128 channels in OpenCV 5), with
    identical output.

    Args:
        masks: [N, H, W], values 0/1.
        height, width: output size.

    Returns:
        [N, height, width], same dtype, values 0/1.
    """
    out = np.empty((masks.shape[0], height, width), masks.dtype)
    for i, mask in enumerate(masks):
        src = mask if mask.dtype == np.uint8 else mask.astype(np.float32)
        res = cv2.resize(src, (width, height), interpolation=cv2.INTER_LINEAR)
        out[i] = res if src.dtype == np.uint8 else res >= 0.5
    return out


def box_rect_iou(boxes: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """IoU of every box with one rectangle.

    Args:
        boxes: [N, 4] x1, y1, x2, y2.
        rect: [4] x1, y1, x2, y2.

    Returns:
        [N] IoU.
    """
    lt = np.maximum(boxes[:, :2], rect[:2])
    rb = np.minimum(boxes[:, 2:], rect[2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=1)
    area_boxes = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area_rect = (rect[2] - rect[0]) * (rect[3] - rect[1])
    return inter / np.maximum(area_boxes + area_rect - inter, 1e-12)


class Compose:
    """Apply transforms in order, threading one random generator through them."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        """Args: a sample and the generator (a fresh unseeded one if None)."""
        rng = np.random.default_rng() if rng is None else rng
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample

    def __repr__(self) -> str:
        inner = ", ".join(type(t).__name__ for t in self.transforms)
        return f"Compose([{inner}])"


class ConvertToFloat:
    """image -> float32; boxes -> float32, labels -> int64."""

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        crowd_boxes, crowd_masks = _crowds(sample)
        return {
            **sample,
            "image": sample["image"].astype(np.float32),
            "boxes": sample["boxes"].astype(np.float32).reshape(-1, 4),
            "labels": sample["labels"].astype(np.int64),
            "crowd_boxes": crowd_boxes.astype(np.float32).reshape(-1, 4),
            "crowd_masks": crowd_masks,
        }


class PhotometricDistort:
    """SSD's colour jitter on a float BGR image; annotations untouched.

    Brightness (add U(-32, 32)), then contrast (multiply by U(0.5, 1.5)) either
    before or after (prob 0.5 each) the HSV changes: saturation (multiply by
    U(0.5, 1.5)) and hue (add U(-18, 18) degrees, wrapped). Each of the four
    changes happens with probability 0.5. As in the original, values are not
    clipped to [0, 255].
    """

    def __init__(
        self,
        brightness_delta: float = 32.0,
        contrast: tuple[float, float] = (0.5, 1.5),
        saturation: tuple[float, float] = (0.5, 1.5),
        hue_delta: float = 18.0,
    ) -> None:
        self.brightness_delta = brightness_delta
        self.contrast = contrast
        self.saturation = saturation
        self.hue_delta = hue_delta

    def _contrast(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < 0.5:
            image = image * np.float32(rng.uniform(*self.contrast))
        return image

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        image = sample["image"].astype(np.float32)  # copy
        if rng.random() < 0.5:
            image += np.float32(rng.uniform(-self.brightness_delta, self.brightness_delta))
        contrast_first = rng.random() < 0.5
        if contrast_first:
            image = self._contrast(image, rng)
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)  # H in degrees, S in [0, 1]
        if rng.random() < 0.5:
            hsv[:, :, 1] *= np.float32(rng.uniform(*self.saturation))
        if rng.random() < 0.5:
            hsv[:, :, 0] = np.mod(hsv[:, :, 0] + rng.uniform(-self.hue_delta, self.hue_delta), 360)
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        if not contrast_first:
            image = self._contrast(image, rng)
        return {**sample, "image": image}


class Expand:
    """Zoom out: place the image on a canvas up to ``max_ratio`` times larger.

    With probability ``p`` a ratio r ~ U(1, max_ratio) is drawn; the canvas is
    int(H r) x int(W r), filled with ``mean``, and the image goes at a random
    integer offset (left, top). Masks are padded with zeros the same way and
    boxes shifted by (left, top).
    """

    def __init__(
        self,
        mean: Sequence[float] = PIXEL_MEAN_BGR,
        max_ratio: float = 4.0,
        p: float = 0.5,
    ) -> None:
        self.mean = tuple(float(m) for m in mean)
        self.max_ratio = max_ratio
        self.p = p

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        image = sample["image"]
        H, W = image.shape[:2]
        ratio = rng.uniform(1.0, self.max_ratio)
        left = int(rng.uniform(0.0, W * ratio - W))
        top = int(rng.uniform(0.0, H * ratio - H))
        out_h, out_w = max(int(H * ratio), top + H), max(int(W * ratio), left + W)

        border = (top, out_h - H - top, left, out_w - W - left)
        canvas = cv2.copyMakeBorder(image, *border, cv2.BORDER_CONSTANT, value=self.mean)
        shift = np.array([left, top, left, top], np.float32)

        def pad(masks: np.ndarray) -> np.ndarray:
            out = np.zeros((masks.shape[0], out_h, out_w), masks.dtype)
            out[:, top : top + H, left : left + W] = masks
            return out

        crowd_boxes, crowd_masks = _crowds(sample)
        return {
            **sample,
            "image": canvas,
            "boxes": sample["boxes"] + shift,
            "masks": pad(sample["masks"]),
            "crowd_boxes": crowd_boxes + shift,
            "crowd_masks": pad(crowd_masks),
        }


class RandomSampleCrop:
    """SSD's random crop, as the original YOLACT runs it.

    Repeatedly pick a mode from ``options``: ``None`` returns the sample as is;
    a ``(min_iou, max_iou)`` pair gets up to ``max_trials`` attempts, each
    drawing w ~ U(0.3 W, W), h ~ U(0.3 H, H) with h / w in [0.5, 2] and a
    random position, rounded down to an integer rectangle. An attempt is kept
    when at least one instance box has its centre strictly inside; instances
    and crowds whose centres lie inside are kept, their boxes clipped to the
    crop and masks cropped. A crop that would keep only crowds is rejected.

    IoU constraints: the original's test (``iou.min() < min_iou and max_iou <
    iou.max()``) never rejects with its modes (max_iou is infinite), and its
    author kept it that way because the working test halved mAP. That is the
    default; ``strict_iou=True`` applies SSD's intended rule instead: some
    instance box must have an IoU with the crop in [min_iou, max_iou].

    A sample without instances is returned unchanged (the original's loop
    could then only end by picking the ``None`` mode). With no ``None`` among
    ``options``, a mode whose trials all fail also returns the sample unchanged
    rather than looping forever.
    """

    def __init__(
        self,
        options: Sequence[tuple[float | None, float | None] | None] = CROP_OPTIONS,
        max_trials: int = 50,
        min_scale: float = 0.3,
        strict_iou: bool = False,
    ) -> None:
        self.options = list(options)
        self.max_trials = max_trials
        self.min_scale = min_scale
        self.strict_iou = strict_iou

    def _iou_ok(self, boxes: np.ndarray, rect: np.ndarray, lo: float, hi: float) -> bool:
        iou = box_rect_iou(boxes, rect)
        if self.strict_iou:
            return bool(((iou >= lo) & (iou <= hi)).any())
        return not (iou.min() < lo and hi < iou.max())

    def _sample_rect(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray | None:
        """One candidate integer rectangle [4] x1, y1, x2, y2, or None (bad aspect)."""
        w = rng.uniform(self.min_scale * width, width)
        h = rng.uniform(self.min_scale * height, height)
        if h / w < 0.5 or h / w > 2:
            return None
        left = rng.uniform(0.0, width - w)
        top = rng.uniform(0.0, height - h)
        return np.array([int(left), int(top), int(left + w), int(top + h)])

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        boxes = sample["boxes"]
        if len(boxes) == 0 or not self.options:
            return sample
        H, W = sample["image"].shape[:2]
        crowd_boxes, crowd_masks = _crowds(sample)
        can_skip = None in self.options
        while True:
            mode = self.options[rng.integers(len(self.options))]
            if mode is None:
                return sample
            lo = -np.inf if mode[0] is None else mode[0]
            hi = np.inf if mode[1] is None else mode[1]
            for _ in range(self.max_trials):
                rect = self._sample_rect(rng, H, W)
                if rect is None or not self._iou_ok(boxes, rect, lo, hi):
                    continue
                keep = _centres_inside(boxes, rect)
                if not keep.any():
                    continue
                keep_crowd = _centres_inside(crowd_boxes, rect)
                x1, y1, x2, y2 = (int(v) for v in rect)
                return {
                    **sample,
                    "image": sample["image"][y1:y2, x1:x2].copy(),
                    "boxes": _clip_to_rect(boxes[keep], rect),
                    "labels": sample["labels"][keep],
                    "masks": sample["masks"][keep, y1:y2, x1:x2],
                    "crowd_boxes": _clip_to_rect(crowd_boxes[keep_crowd], rect),
                    "crowd_masks": crowd_masks[keep_crowd, y1:y2, x1:x2],
                }
            if not can_skip:
                return sample


def _centres_inside(boxes: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """[N] bool: box centre strictly inside rect (x1, y1, x2, y2)."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    return (centres > rect[:2]).all(axis=1) & (centres < rect[2:]).all(axis=1)


def _clip_to_rect(boxes: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """Clip [N, 4] boxes to rect and express them in its frame."""
    out = boxes.copy()
    out[:, :2] = np.maximum(out[:, :2], rect[:2]) - rect[:2]
    out[:, 2:] = np.minimum(out[:, 2:], rect[2:]) - rect[:2]
    return out


def _flip_masks(masks: np.ndarray) -> np.ndarray:
    """Flip [N, H, W] masks left-right with one OpenCV call on their [N * H, W] view."""
    N, H, W = masks.shape
    if N * H * W == 0:
        return masks[:, :, ::-1].copy()
    flat = np.ascontiguousarray(masks).reshape(N * H, W)
    return cv2.flip(flat, 1).reshape(N, H, W)


class RandomMirror:
    """With probability ``p`` flip image, masks and boxes left-right (x1' = W - x2)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        W = sample["image"].shape[1]
        crowd_boxes, crowd_masks = _crowds(sample)

        def flip_boxes(boxes: np.ndarray) -> np.ndarray:
            return np.stack(
                [W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], axis=1
            ).astype(boxes.dtype)

        return {
            **sample,
            "image": cv2.flip(sample["image"], 1),
            "boxes": flip_boxes(sample["boxes"]),
            "masks": _flip_masks(sample["masks"]),
            "crowd_boxes": flip_boxes(crowd_boxes),
            "crowd_masks": _flip_masks(crowd_masks),
        }


def _resize_sample(
    sample: Sample, height: int, width: int, resize_gt: bool, discard_size: float | None
) -> Sample:
    """Resize a sample's image bilinearly to ``height`` x ``width``.

    Instances and crowds whose box, measured at the new scale, is not wider and
    taller than ``discard_size`` pixels are dropped with their masks and labels
    (``None`` keeps all). With ``resize_gt`` the masks follow (see
    :func:`resize_masks`) and boxes are scaled; without it annotations stay in the
    input frame.
    """
    image = sample["image"]
    H, W = image.shape[:2]
    scale = np.array([width / W, height / H, width / W, height / H], np.float32)
    out = {**sample, "image": cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)}
    crowd_boxes, crowd_masks = _crowds(sample)
    groups = (
        ("boxes", "masks", sample["boxes"], sample["masks"]),
        ("crowd_boxes", "crowd_masks", crowd_boxes, crowd_masks),
    )
    for box_key, mask_key, boxes, masks in groups:
        if discard_size is not None:
            scaled = boxes * scale
            w, h = scaled[:, 2] - scaled[:, 0], scaled[:, 3] - scaled[:, 1]
            keep = (w > discard_size) & (h > discard_size)
            boxes, masks = boxes[keep], masks[keep]
            if box_key == "boxes":
                out["labels"] = sample["labels"][keep]
        if resize_gt:
            boxes = (boxes * scale).astype(np.float32)
            masks = resize_masks(masks, height, width)
        out[box_key], out[mask_key] = boxes, masks
    return out


class Resize:
    """Resize to a ``size`` x ``size`` square (aspect ratio not kept).

    The image is resized bilinearly. With ``resize_gt`` the masks follow (see
    :func:`resize_masks`) and boxes are scaled; without it (the original's
    evaluation) annotations stay in the input frame. Then instances and
    crowds whose box, measured at the ``size`` x ``size`` scale, is not wider
    and taller than ``discard_size`` pixels are dropped with their masks and
    labels (``None`` keeps all).
    """

    def __init__(self, size: int, resize_gt: bool = True, discard_size: float | None = 4.0) -> None:
        self.size = size
        self.resize_gt = resize_gt
        self.discard_size = discard_size

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        S = self.size
        return _resize_sample(sample, S, S, self.resize_gt, self.discard_size)


def keep_aspect_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """The (height, width) torchvision's detection transform resizes an image to.

    The shorter side becomes ``min_size`` unless the longer would then exceed
    ``max_size``, in which case the longer side becomes ``max_size``; sides are
    rounded to whole pixels, so the model's own resize of the result is the identity.
    """
    scale = min(min_size / min(height, width), max_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


class ResizeKeepAspect:
    """Resize keeping the aspect ratio, to the scale a Mask R-CNN predicts at.

    The output size is :func:`keep_aspect_size`; masks follow and boxes are
    scaled; instances and crowds whose box at the new scale is not wider and
    taller than ``discard_size`` pixels are dropped (``None`` keeps all).
    """

    def __init__(self, min_size: int, max_size: int, discard_size: float | None = 4.0) -> None:
        self.min_size = min_size
        self.max_size = max_size
        self.discard_size = discard_size

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        H, W = sample["image"].shape[:2]
        height, width = keep_aspect_size(H, W, self.min_size, self.max_size)
        return _resize_sample(sample, height, width, True, self.discard_size)


class ToPercentCoords:
    """Boxes from pixels to fractions of their frame, the masks' [H, W]."""

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        H, W = sample["masks"].shape[1:]
        scale = np.array([W, H, W, H], np.float32)
        crowd_boxes, crowd_masks = _crowds(sample)
        return {
            **sample,
            "boxes": sample["boxes"] / scale,
            "crowd_boxes": crowd_boxes / scale,
            "crowd_masks": crowd_masks,
        }


class Normalize:
    """Normalise the image for the network and turn the sample into tensors.

    image: float BGR [H, W, 3] -> (image - mean) / std, reordered to RGB ->
    torch.float32 [3, H, W]. boxes / crowd_boxes -> float32 tensors, labels ->
    int64, masks / crowd_masks -> uint8 tensors.
    """

    def __init__(
        self, mean: Sequence[float] = PIXEL_MEAN_BGR, std: Sequence[float] = PIXEL_STD_BGR
    ) -> None:
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        image = (sample["image"].astype(np.float32) - self.mean) / self.std
        chw = np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1))  # [3, H, W] RGB
        crowd_boxes, crowd_masks = _crowds(sample)
        return {
            **sample,
            "image": torch.from_numpy(chw),
            "boxes": torch.from_numpy(np.ascontiguousarray(sample["boxes"], np.float32)),
            "labels": torch.from_numpy(np.ascontiguousarray(sample["labels"], np.int64)),
            "masks": torch.from_numpy(np.ascontiguousarray(sample["masks"], np.uint8)),
            "crowd_boxes": torch.from_numpy(np.ascontiguousarray(crowd_boxes, np.float32)),
            "crowd_masks": torch.from_numpy(np.ascontiguousarray(crowd_masks, np.uint8)),
        }


def _augmentation(augment: Augmentation, mean: Sequence[float]) -> list[Transform]:
    """The augmentation steps of ``augment`` (see :func:`train_transform`), after
    :class:`ConvertToFloat` and before the resize."""
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation '{augment}'; use one of {', '.join(AUGMENTATIONS)}")
    if augment == "none":
        return []
    if augment == "light":
        return [PhotometricDistort(), RandomMirror()]
    return [PhotometricDistort(), Expand(mean), RandomSampleCrop(), RandomMirror()]


def train_transform(
    max_size: int,
    mean: Sequence[float] = PIXEL_MEAN_BGR,
    std: Sequence[float] = PIXEL_STD_BGR,
    discard_size: float = 4.0,
    augment: Augmentation = "ssd",
) -> Compose:
    """The training transform; ``augment`` picks how much augmentation.

    - ``"ssd"``: the original YOLACT pipeline (``SSDAugmentation``): photometric
      distortion, expand, random sample crop, mirror, resize.
    - ``"light"``: photometric distortion and mirror only, for short schedules and
      models trained from scratch, where expand and crop slow convergence.
    - ``"none"``: resize only.

    Output: image float32 [3, S, S] RGB normalised; boxes [N, 4] and
    crowd_boxes [M, 4] relative to the image; masks [N, S, S], crowd_masks
    [M, S, S] uint8; labels int64 [N]. N may be 0 (e.g. every box was cropped
    away or was too small); the caller decides whether to resample.
    """
    return Compose(
        [
            ConvertToFloat(),
            *_augmentation(augment, mean),
            Resize(max_size, discard_size=discard_size),
            ToPercentCoords(),
            Normalize(mean, std),
        ]
    )


def val_transform(
    max_size: int,
    mean: Sequence[float] = PIXEL_MEAN_BGR,
    std: Sequence[float] = PIXEL_STD_BGR,
    discard_size: float | None = 4.0,
) -> Compose:
    """The original evaluation transform (``BaseTransform``).

    Only the image is resized to S x S; masks stay at the original [H, W] and
    boxes come out relative to the image (the same numbers at either size).
    As the original, ground truth whose box is not wider and taller than 4 px
    at the S x S scale is dropped (``discard_size=None`` keeps it all).
    """
    return Compose(
        [
            ConvertToFloat(),
            Resize(max_size, resize_gt=False, discard_size=discard_size),
            ToPercentCoords(),
            Normalize(mean, std),
        ]
    )


def keep_aspect_train_transform(
    min_size: int, max_size: int, discard_size: float = 4.0, augment: Augmentation = "ssd"
) -> Compose:
    """The training transform of models that keep the aspect ratio (the Mask R-CNN
    reference): the same augmentation
    (see :func:`train_transform`), then a resize that keeps the aspect ratio, to the
    size the model's own transform predicts at (:func:`keep_aspect_size`).

    Output: image float32 [3, H', W'] RGB in [0, 1] (the model normalises it); boxes
    [N, 4] and crowd_boxes [M, 4] xyxy in pixels of the output; masks [N, H', W'],
    crowd_masks [M, H', W'] uint8; labels int64 [N]. Sizes differ between images.
    """
    return Compose(
        [
            ConvertToFloat(),
            *_augmentation(augment, PIXEL_MEAN_BGR),
            ResizeKeepAspect(min_size, max_size, discard_size),
            Normalize((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
        ]
    )
