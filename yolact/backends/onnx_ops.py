"""ONNX symbolics the TorchScript exporter lacks: torchvision's deformable convolution."""

from __future__ import annotations

from typing import Any

import torch

# ONNX DeformConv exists from opset 19.
DEFORM_CONV_OPSET = 19


def _deform_conv2d(
    g: Any, x: Any, weight: Any, offset: Any, mask: Any, bias: Any,
    stride_h: Any, stride_w: Any, pad_h: Any, pad_w: Any, dil_h: Any, dil_w: Any,
    n_weight_grps: Any, n_offset_grps: Any, use_mask: Any,
) -> Any:  # fmt: skip
    """``torchvision::deform_conv2d`` as ONNX DeformConv (same offset and mask layout)."""
    from torch.onnx import symbolic_helper as sh

    def const(v: Any) -> int:
        return int(sh._get_const(v, "i", "deform_conv2d argument"))

    inputs = [x, weight, offset, bias]
    if bool(sh._get_const(use_mask, "b", "use_mask")):
        inputs.append(mask)
    return g.op(
        "DeformConv",
        *inputs,
        strides_i=[const(stride_h), const(stride_w)],
        pads_i=[const(pad_h), const(pad_w), const(pad_h), const(pad_w)],
        dilations_i=[const(dil_h), const(dil_w)],
        group_i=const(n_weight_grps),
        offset_group_i=const(n_offset_grps),
    )


def register_deform_conv() -> None:
    """Let ``torch.onnx.export(..., dynamo=False)`` write deformable convs as DeformConv."""
    torch.onnx.register_custom_op_symbolic(
        "torchvision::deform_conv2d", _deform_conv2d, DEFORM_CONV_OPSET
    )
