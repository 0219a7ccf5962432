"""Dynamic R-CNN (Zhang et al., 2020): training-time schedule for the second stage.

Two hyper-parameters of the box head follow the statistics of the proposals as
training goes on:

- the IoU threshold of the proposal-to-GT matcher (``iou_thresh``) rises with the
  quality of the proposals (Dynamic Label Assignment);
- the ``beta`` of the box head's smooth-L1 loss falls as the regression labels
  shrink (Dynamic SmoothL1 Loss).

:class:`DynamicRCNN` only keeps the statistics and the two current values; the
model reads ``iou_thresh`` and ``beta`` and calls :meth:`DynamicRCNN.record` after
each training step. Which regression "error" is recorded follows the paper's
reference setting: per positive proposal, the mean absolute value of its
normalised centre-offset regression labels ``(|t_x| + |t_y|) / 2`` (the labels as
given to the box loss, i.e. after the box coder's weights), which is what
:func:`regression_label_errors` computes. These labels are the L1 error a zero
prediction would make; they measure how far the positives are from their GT.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Literal

import torch
from torch import Tensor


def regression_label_errors(box_targets: Tensor) -> Tensor:
    """Per-positive quantity Dynamic R-CNN records: ``(|t_x| + |t_y|) / 2``.

    Args:
        box_targets: [P, 4] encoded regression targets (t_x, t_y, t_w, t_h) of the
            positive proposals, after the box coder's weights (e.g. torchvision's
            ``BoxCoder((10, 10, 5, 5))``).

    Returns:
        [P] errors.
    """
    return box_targets[:, :2].abs().mean(dim=1)


def smooth_l1(
    input: Tensor, target: Tensor, beta: float, reduction: Literal["none", "sum", "mean"] = "none"
) -> Tensor:
    """Smooth L1: ``0.5 * d**2 / beta`` where ``d = |input - target| < beta``, else
    ``d - 0.5 * beta``. ``beta == 0`` is plain L1.

    Written as ``0.5 * m**2 / beta + (d - m)`` with ``m = min(d, beta)``, so no
    intermediate exceeds ``d`` and gradients stay finite for any tiny ``beta``.

    Args:
        input: [...] predictions.
        target: [...] targets, broadcastable with ``input``.
        beta: transition point, >= 0.
        reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
        The element-wise loss (``"none"``) or its sum or mean.
    """
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    diff = (input - target).abs()
    if beta == 0:
        loss = diff
    else:
        m = diff.clamp(max=beta)
        loss = 0.5 * m * m / beta + (diff - m)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"unknown reduction {reduction!r}")


def _as_floats(chunks: list[Tensor]) -> list[float]:
    """Concatenate 1-D tensors (any devices) into a list of Python floats."""
    if not chunks:
        return []
    return torch.cat([chunk.double().cpu() for chunk in chunks]).tolist()


class DynamicRCNN:
    """Keeps Dynamic R-CNN's IoU threshold and smooth-L1 beta up to date.

    After every ``interval`` calls of :meth:`record`:

    - ``iou_thresh = max(start_iou, mean(K_iou-th largest IoU of each recorded image))``
    - ``beta = min(start_beta, median(K_beta-th smallest error of each recorded step))``

    and the stored statistics are cleared. With fewer than K values the rank is
    clamped: an image with M < K_iou proposals records its M-th largest (its smallest)
    IoU, a step with P < K_beta positives its P-th smallest (its largest) error, as
    the paper's reference setting does. A value with nothing recorded for it in
    the interval (no proposals / no positives) stays as it was. The median of an
    even count is the mean of the two middle values.

    Attributes:
        iou_thresh: current matcher IoU threshold (``start_iou`` until the first update).
        beta: current smooth-L1 beta (``start_beta`` until the first update).
        num_records: calls of :meth:`record` so far.
    """

    def __init__(
        self,
        k_iou: int = 75,
        k_beta: int = 10,
        interval: int = 100,
        start_iou: float = 0.4,
        start_beta: float = 1.0,
    ) -> None:
        """
        Args:
            k_iou: per image, the K-th largest proposal IoU is recorded (K_I).
            k_beta: per step, the K-th smallest regression error is recorded (K_beta).
            interval: calls of :meth:`record` between updates (C).
            start_iou: initial IoU threshold and its floor.
            start_beta: initial beta and its ceiling.
        """
        if k_iou < 1 or k_beta < 1 or interval < 1:
            raise ValueError("k_iou, k_beta and interval must be >= 1")
        if start_beta < 0:
            raise ValueError(f"start_beta must be >= 0, got {start_beta}")
        self.k_iou = k_iou
        self.k_beta = k_beta
        self.interval = interval
        self.start_iou = start_iou
        self.start_beta = start_beta
        self.iou_thresh = start_iou
        self.beta = start_beta
        self.num_records = 0
        # Kept as tensors on the model's device until an update (no host sync per step).
        self._iou_values: list[Tensor] = []  # each [B'] K-th IoU of the non-empty images
        self._beta_values: list[Tensor] = []  # each [1] K-th smallest error of a step

    def record(self, ious_per_image: list[Tensor], regression_errors: Tensor) -> None:
        """Record one training step's statistics; updates every ``interval`` calls.

        Args:
            ious_per_image: per image, [M_i] IoU of each of its proposals (all of
                them, before sampling) with the GT box it is matched to (its
                highest-IoU GT). Images with no proposals or no GT (empty) are skipped.
            regression_errors: [P] per positive proposal of the whole batch (see
                :func:`regression_label_errors`), or [P, D] reduced by the mean over
                D. Empty (no positives) records nothing for beta.
        """
        values = [ious.detach().reshape(-1) for ious in ious_per_image if ious.numel() > 0]
        if values:
            lengths = torch.tensor([len(v) for v in values], device=values[0].device)
            padded = torch.nn.utils.rnn.pad_sequence(
                values, batch_first=True, padding_value=float("-inf")
            )  # [B', M_max]
            ranked = padded.sort(dim=1, descending=True).values  # [B', M_max]
            kth = (lengths.clamp(max=self.k_iou) - 1)[:, None]  # [B', 1]
            self._iou_values.append(ranked.gather(1, kth)[:, 0])  # [B']
        errors = regression_errors.detach()
        if errors.dim() > 1:
            errors = errors.mean(dim=-1)
        errors = errors.reshape(-1)
        if errors.numel() > 0:
            k = min(self.k_beta, errors.numel())
            self._beta_values.append(errors.kthvalue(k).values.reshape(1))
        self.num_records += 1
        if self.num_records % self.interval == 0:
            self._update()

    def _update(self) -> None:
        """Set ``iou_thresh`` and ``beta`` from the stored statistics and clear them."""
        ious, errors = self._stored()
        if ious:
            self.iou_thresh = max(self.start_iou, math.fsum(ious) / len(ious))
        if errors:
            self.beta = min(self.start_beta, statistics.median(errors))
        self._iou_values.clear()
        self._beta_values.clear()

    def _stored(self) -> tuple[list[float], list[float]]:
        """The stored K-th IoUs and K-th errors as Python floats (one host sync each)."""
        return _as_floats(self._iou_values), _as_floats(self._beta_values)

    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state (values and the statistics of the unfinished interval)."""
        ious, errors = self._stored()
        return {
            "k_iou": self.k_iou,
            "k_beta": self.k_beta,
            "interval": self.interval,
            "start_iou": self.start_iou,
            "start_beta": self.start_beta,
            "iou_thresh": self.iou_thresh,
            "beta": self.beta,
            "num_records": self.num_records,
            "iou_values": ious,
            "beta_values": errors,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state written by :meth:`state_dict`, so training resumes exactly."""
        self.k_iou = int(state["k_iou"])
        self.k_beta = int(state["k_beta"])
        self.interval = int(state["interval"])
        self.start_iou = float(state["start_iou"])
        self.start_beta = float(state["start_beta"])
        self.iou_thresh = float(state["iou_thresh"])
        self.beta = float(state["beta"])
        self.num_records = int(state["num_records"])
        ious = torch.tensor(state["iou_values"], dtype=torch.float64)
        errors = torch.tensor(state["beta_values"], dtype=torch.float64)
        self._iou_values = [ious] if ious.numel() else []
        self._beta_values = [errors] if errors.numel() else []

    def __repr__(self) -> str:
        return (
            f"DynamicRCNN(iou_thresh={self.iou_thresh:.4f}, beta={self.beta:.4f}, "
            f"num_records={self.num_records}, interval={self.interval})"
        )
