"""BatchNorm statistics for randomly initialised networks, so benchmarks of random
weights run in a trained network's numeric range."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, images: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``images`` [B, 3, S, S].

    A randomly initialised network keeps mean 0 / variance 1 statistics, so its
    activations grow layer by layer past float16's range; measured statistics
    keep them in a trained network's range. The model is left in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the calibration batch
        m.train()
    model(images)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()
