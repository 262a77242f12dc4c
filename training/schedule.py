"""The optimisation recipe shared by ``train`` and ``train-tiles``: warm-up, schedule, clipping, a stopping guard.

The learning rate rises linearly from ``lr / warmup_steps`` to ``lr`` over the warm-up, then follows
a half cosine down to ``FINAL_LR_FRACTION x lr`` at the last step (``constant`` keeps ``lr``).
Early stopping may only fire once the model has *left chance* on its own training data: its
balanced accuracy there is at least ``chance + margin x (1 - chance)``. A model still at chance
after some epochs has not started learning (a scale it has not adapted to, a warm-up still
running), and stopping it then keeps a useless model whose early validation loss happened to be lowest.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

FINAL_LR_FRACTION = 0.05


def warmup_schedule(
    optimiser: torch.optim.Optimizer, warmup_steps: int, total_steps: int, schedule: str
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler: linear warm-up over ``warmup_steps``, then ``schedule`` until ``total_steps``.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = warmup_schedule(opt, 2, 10, "cosine")
        >>> opt.param_groups[0]["lr"]
        0.5
    """

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)


def clipped_step(module: nn.Module, optimiser: torch.optim.Optimizer, loss: torch.Tensor, max_norm: float) -> None:
    """Backpropagate ``loss`` and step, clipping the gradient norm to ``max_norm`` (0 = no clipping)."""
    optimiser.zero_grad()
    loss.backward()  # type: ignore[no-untyped-call]
    if max_norm > 0:
        nn.utils.clip_grad_norm_(module.parameters(), max_norm)
    optimiser.step()


def left_chance(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, margin: float) -> bool:
    """Whether the balanced accuracy of ``y_pred`` is at least ``chance + margin x (1 - chance)``.

    Chance is ``1 / k`` for the ``k`` classes present in ``y_true`` (``n_classes`` bounds them).

    Example:
        >>> left_chance(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 0]), 4, 0.5)
        True
    """
    present = np.unique(y_true)
    if len(present) < 2:
        return True
    recall = [float(np.mean(y_pred[y_true == c] == c)) for c in present if c < n_classes]
    chance = 1.0 / len(present)
    return float(np.mean(recall)) >= chance + margin * (1.0 - chance)
