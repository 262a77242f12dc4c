"""A linear read of a bag's pooled tiles, added to a MIL head's logits (head option ``pooled_linear``).

The bag becomes the per-dimension mean and standard deviation of its (standardised) tiles, those
2d numbers are standardised over the training *slides* and classified linearly: the model of the
logistic-regression baseline, inside the head and trained with it. Between-slide differences of a
tile average are a small fraction of the tile-level spread the input standardiser scales to one, so
without this slide-level rescaling a head reads them through weights that weight decay keeps small;
with it, the head starts from what a linear model sees and its attention path adds what a mean hides.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from liposcope.models.mil.pooling import uniform_attention, weighted_moments
from liposcope.models.mil.standardise import InputStandardiser


def bag_moments(z: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-dimension mean and standard deviation of each bag's valid tiles: b x n x d in, b x 2d out.

    Example:
        >>> bag_moments(torch.ones(1, 3, 2), torch.ones(1, 3, dtype=torch.bool)).tolist()
        [[1.0, 1.0, 0.0, 0.0]]
    """
    mean, var = weighted_moments(uniform_attention(valid).unsqueeze(1), z)  # b x 1 x d each
    return torch.cat([mean, var.sqrt()], dim=-1)[:, 0]


class BagLinear(nn.Module):
    """``logits = W · standardise_slides(bag_moments(z)) + b``; the slide standardiser is fitted by :meth:`fit`."""

    def __init__(self, in_dim: int, n_classes: int) -> None:
        super().__init__()
        self.standardise = InputStandardiser(2 * in_dim)
        self.linear = nn.Linear(2 * in_dim, n_classes)
        nn.init.zeros_(self.linear.weight)  # gradient steps from zero stay in the span of the training slides:
        nn.init.zeros_(self.linear.bias)  # no random direction of a 2d-dimensional init is left to read test slides

    def fit(self, bags: Sequence[torch.Tensor]) -> None:
        """Learn the slide-level location and scale from training bags (each n_i x d, already standardised)."""
        with torch.no_grad():  # one row per slide, so no slide is subsampled away
            self.standardise.fit([bag_moments(b[None], torch.ones(1, len(b), dtype=torch.bool)) for b in bags])

    def forward(self, z: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.linear(self.standardise(bag_moments(z, valid)))
        return logits
