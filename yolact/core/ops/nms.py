"""The NMS variants' names, shared by every family's options, and a ``topk`` with a
fixed order for equal values (the variants are the YOLACT family's,
:mod:`yolact.models.yolact.fast_nms`)."""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

# The NMS variants by name (YOLACT's Fast NMS, its cross-class form, standard NMS).
NMSMethod = Literal["fast", "cross_class", "standard"]
NMS_METHODS: tuple[NMSMethod, ...] = get_args(NMSMethod)


def parse_nms_method(value: str) -> NMSMethod:
    """``value`` as an :data:`NMSMethod`.

    Raises:
        ValueError: not one of :data:`NMS_METHODS`.
    """
    for method in NMS_METHODS:
        if value == method:
            return method
    raise ValueError(f"unknown NMS method '{value}'; use one of {', '.join(NMS_METHODS)}")


# Below half a float32 step for indices < 2**17: a key that breaks ties only.
_TIE_STEP = 2.0**-42


def ordered_topk(values: Tensor, k: int, index: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``topk`` along the last dimension with equal values in ascending index order.

    ``torch.topk`` does not promise an order for equal values (ONNX TopK does);
    a float64 key ``v * (1 - index * 2**-42)`` keeps every float32 order and
    breaks ties by index (values >= 0; equal negative values stay unordered).

    Args:
        values: [..., M] float32.
        k: how many (at most M).
        index: [..., M] the index each entry is ranked by (default its position).

    Returns:
        (values [..., k], positions [..., k] along the last dimension).
    """
    if values.device.type == "mps":  # no float64
        return values.topk(k, dim=-1)
    if index is None:
        index = torch.arange(values.shape[-1], device=values.device)
    key = values.double() * (1 - index.double() * _TIE_STEP)
    order = key.topk(k, dim=-1).indices
    return values.gather(-1, order), order
