"""Training state helpers: the optimiser, frozen BatchNorm, the random generators."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import nn

from yolact.core.config import TrainConfig


def build_optimizer(model: nn.Module, tc: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """The optimiser of ``tc.optimizer`` over the trainable parameters.

    SGD is the original's (momentum, L2 weight decay on every parameter). AdamW
    uses ``tc.momentum`` as beta1 and applies its decoupled weight decay to
    weights only, not to biases and normalisation parameters (1-D tensors).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if tc.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": tc.weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(tc.momentum, 0.999))


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep BatchNorm layers in eval mode with fixed affine parameters."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)


def rng_state() -> dict[str, Any]:
    """The random generators' states (torch, NumPy's legacy MT19937, Python's, CUDA's)."""
    mt19937 = np.random.get_state(legacy=False)["state"]  # {"key": [624] uint32, "pos": int}
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": mt19937["key"].astype(np.int64).tolist(),
        "numpy_pos": int(mt19937["pos"]),
        "python": list(random.getstate()[1]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(
        ("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"], 0, 0.0)
    )
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
