"""Where to run: the device a flag names, else CUDA when available."""

from __future__ import annotations

import torch


def select_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given ("cpu", "cuda", "cuda:1"), else CUDA when available, else CPU.

    Raises:
        ValueError: CUDA asked for but not available, or an unknown device string.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device '{device}'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' asked for, but CUDA is not available here")
    return dev
