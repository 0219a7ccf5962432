"""Drawing detections on an image: blended masks, boxes, labels and an FPS overlay."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from yolact.core.structures import Detections

# Nineteen well-separated colours, BGR order (OpenCV's), 0-255.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (60, 20, 220),  # crimson
    (40, 160, 250),  # amber
    (80, 175, 75),  # green
    (230, 130, 40),  # azure
    (180, 50, 155),  # purple
    (200, 200, 30),  # teal
    (30, 90, 245),  # vermilion
    (40, 220, 205),  # yellow
    (145, 30, 30),  # navy
    (150, 80, 235),  # pink
    (35, 115, 35),  # forest green
    (250, 225, 130),  # sky
    (70, 70, 160),  # brick
    (200, 110, 120),  # slate blue
    (150, 230, 150),  # mint
    (15, 130, 200),  # ochre
    (230, 70, 200),  # violet
    (160, 160, 160),  # grey
    (110, 60, 130),  # plum
)

# Consecutive indices step through the palette 5 entries at a time so that
# neighbouring detections get clearly different colours; 5 and 19 are coprime,
# so all 19 colours are still used before one repeats.
_PALETTE_STEP = 5

_FONT = cv2.FONT_HERSHEY_DUPLEX
_FONT_SCALE = 0.6
_FONT_THICKNESS = 1
_TEXT_COLOR = (255, 255, 255)


def color_for(index: int, label: int, class_color: bool) -> tuple[int, int, int]:
    """The BGR colour of one detection.

    Args:
        index: position of the detection in score order (0 = best).
        label: its 0-based class index.
        class_color: colour by class (every instance of a class alike) instead
            of by detection.

    Returns:
        (b, g, r), each in 0..255.
    """
    key = label if class_color else index
    return PALETTE[(key * _PALETTE_STEP) % len(PALETTE)]


def track_color(track_id: int) -> tuple[int, int, int]:
    """The BGR colour of a track: the same in every frame, whatever the detection's rank."""
    return PALETTE[(track_id * _PALETTE_STEP) % len(PALETTE)]


def blend_masks(image: Tensor, masks: Tensor, colors: Tensor, alpha: float) -> Tensor:
    """Alpha-blend coloured masks over an image, the first mask on top.

    For a pixel covered by masks m_1..m_n (in order), with a = ``alpha``:
    out = img * prod_j (1 - a m_j) + sum_j colour_j * a m_j * prod_{i<j} (1 - a m_i).

    Args:
        image: [H, W, 3] float image.
        masks: [N, H, W] bool or float in [0, 1], on the image's device.
        colors: [N, 3] float colours in the image's channel order.
        alpha: opacity of one mask, in [0, 1].

    Returns:
        [H, W, 3] float blended image (not rounded).
    """
    coverage = masks.to(image.dtype) * alpha  # [N, H, W]
    transmit = torch.cumprod(1.0 - coverage, dim=0)  # [N, H, W], through masks 1..j
    ones = torch.ones_like(transmit[:1])
    before = torch.cat([ones, transmit[:-1]], dim=0)  # [N, H, W], through masks 1..j-1
    weights = coverage * before  # [N, H, W]
    paint = torch.einsum("nhw,nc->hwc", weights, colors)  # [H, W, 3]
    return image * transmit[-1].unsqueeze(-1) + paint


def _covered_region(masks: Tensor) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1): the smallest rectangle holding every nonzero mask pixel of
    ``masks`` [N, H, W], end-exclusive; None when every mask is empty. Blending
    leaves the pixels outside it unchanged, so only this rectangle is blended."""
    covered = (masks != 0).any(dim=0)  # [H, W]
    rows = torch.nonzero(covered.any(dim=1)).flatten().tolist()
    if not rows:
        return None
    cols = torch.nonzero(covered.any(dim=0)).flatten().tolist()
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _line_metrics(scale: float = _FONT_SCALE) -> tuple[int, int]:
    """(ascent, descent) in pixels of one text line, descenders included
    (``cv2.getTextSize`` reports the descent only for text that has one)."""
    (_, ascent), descent = cv2.getTextSize("Hgy", _FONT, scale, _FONT_THICKNESS)
    return ascent, descent


def _draw_fps(image: np.ndarray, fps: float) -> None:
    """White "FPS: 23.4" on a black box in the top-left corner (in place)."""
    text = f"FPS: {fps:.1f}"
    (tw, _), _ = cv2.getTextSize(text, _FONT, _FONT_SCALE, _FONT_THICKNESS)
    ascent, descent = _line_metrics()
    cv2.rectangle(image, (0, 0), (tw + 6, ascent + descent + 2), (0, 0, 0), -1)
    cv2.putText(
        image, text, (3, ascent + 1), _FONT, _FONT_SCALE, _TEXT_COLOR, _FONT_THICKNESS, cv2.LINE_AA
    )


_MIN_FONT_SCALE = 0.1


def _label_size(text: str, width: int, height: int) -> tuple[float, int, int, int]:
    """(font scale, ascent, box width, box height) of a label that fits a
    ``width`` x ``height`` frame: the usual scale, smaller where the frame is
    too small for it (down to ``_MIN_FONT_SCALE``)."""
    scale = _FONT_SCALE
    while True:
        (tw, _), _ = cv2.getTextSize(text, _FONT, scale, _FONT_THICKNESS)
        ascent, descent = _line_metrics(scale)
        box_w, box_h = tw + 5, ascent + descent + 1  # 2 pixels each side of the text
        fit = min(width / box_w, height / box_h)
        if fit >= 1.0 or scale <= _MIN_FONT_SCALE:
            return scale, ascent, box_w, box_h
        scale = max(_MIN_FONT_SCALE, scale * min(fit, 0.95))


def _draw_label(image: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int]) -> None:
    """A filled label in ``color`` with white text just above (x, y), or just
    below it when there is no room above (in place).

    The label stays inside the frame: moved left from the right edge, up from
    the bottom, and drawn smaller where the frame is narrower or lower than it.
    """
    H, W = image.shape[:2]
    scale, ascent, box_w, box_h = _label_size(text, W, H)
    top = y - box_h if y - box_h >= 0 else y
    x = min(max(x, 0), max(W - box_w, 0))
    top = min(max(top, 0), max(H - box_h, 0))
    cv2.rectangle(image, (x, top), (x + box_w - 1, top + box_h - 1), color, -1)
    cv2.putText(
        image,
        text,
        (x + 2, top + ascent),
        _FONT,
        scale,
        _TEXT_COLOR,
        _FONT_THICKNESS,
        cv2.LINE_AA,
    )


def draw_detections(
    image: np.ndarray,
    det: Detections,
    *,
    masks: bool = True,
    boxes: bool = True,
    text: bool = True,
    scores: bool = True,
    class_color: bool = False,
    mask_alpha: float = 0.45,
    fps: float | None = None,
) -> np.ndarray:
    """Draw detections the way the original YOLACT display does.

    Masks are blended on the detections' device in one vectorised step with the
    best-scored detection on top, over the rectangle that the masks cover; boxes
    and labels are then drawn with OpenCV, the worst first, so that the best
    label is the one on top where labels overlap. Labels stay inside the frame.

    Args:
        image: [H, W, 3] uint8 BGR; not modified.
        det: detections of this image (masks, when drawn, must be [N, H, W]).
        masks: blend the instance masks (skipped when ``det.masks`` is None).
        boxes: draw each box outline in its detection colour.
        text: draw "name: score" on a filled label at each box's top-left.
        scores: include the score in the label text.
        class_color: colour by class instead of by detection.
            When ``det.track_ids`` is set, tracked detections are coloured by
            track id instead (stable over frames) and labelled "id N name: score".
        mask_alpha: opacity of one mask, in [0, 1].
        fps: when given, "FPS: 23.4" is drawn in the top-left corner.

    Returns:
        A new [H, W, 3] uint8 BGR image.

    Raises:
        ValueError: the image is not [H, W, 3] uint8 or the masks are not its size.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] image, got {getattr(image, 'shape', None)}")
    if image.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] image, got {image.shape}")
    H, W = image.shape[:2]
    n = len(det)
    labels = det.labels.tolist()
    colors = [color_for(i, labels[i], class_color) for i in range(n)]
    track_ids = [-1] * n if det.track_ids is None else det.track_ids.tolist()
    for i, track_id in enumerate(track_ids):
        if track_id >= 0:
            colors[i] = track_color(track_id)

    if masks and det.masks is not None and n > 0:
        if tuple(det.masks.shape[1:]) != (H, W):
            raise ValueError(f"masks are {tuple(det.masks.shape[1:])}, image is {(H, W)}")
        out: np.ndarray = image.copy()
        region = _covered_region(det.masks)
        if region is not None:
            y0, y1, x0, x1 = region
            device = det.masks.device
            crop = torch.from_numpy(image[y0:y1, x0:x1]).to(device=device, dtype=torch.float32)
            col = torch.tensor(colors, dtype=torch.float32, device=device)  # [N, 3]
            blended = blend_masks(crop, det.masks[:, y0:y1, x0:x1], col, mask_alpha)
            out[y0:y1, x0:x1] = blended.round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()
    else:
        out = image.copy()

    if (boxes or text) and n > 0:
        box_list = det.boxes.round().to(torch.int64).tolist()
        score_list = det.scores.tolist()
        for i in reversed(range(n)):  # the best-scored box and label end on top
            x1, y1, x2, y2 = box_list[i]
            x1, x2 = min(max(x1, 0), W - 1), min(max(x2, 0), W - 1)
            y1, y2 = min(max(y1, 0), H - 1), min(max(y2, 0), H - 1)
            if boxes:
                cv2.rectangle(out, (x1, y1), (x2, y2), colors[i], 1)
            if text:
                name = det.class_names[labels[i]]
                if track_ids[i] >= 0:
                    name = f"id {track_ids[i]} {name}"
                label = f"{name}: {score_list[i]:.2f}" if scores else name
                _draw_label(out, label, x1, y1, colors[i])

    if fps is not None:
        _draw_fps(out, fps)
    return out
