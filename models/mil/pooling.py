"""Attention-weighted moments of tile embeddings, shared by the heads and their linear read of the bag."""

from __future__ import annotations

import torch


def uniform_attention(valid: torch.Tensor) -> torch.Tensor:
    """Equal weight on each bag's valid tiles (b x n, rows sum to 1).

    Example:
        >>> uniform_attention(torch.tensor([[True, True, False]])).tolist()
        [[0.5, 0.5, 0.0]]
    """
    return valid.float() / valid.sum(dim=1, keepdim=True)


def weighted_moments(attention: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance (b x k x h each) of tiles ``h`` (b x n x h) under each attention row (b x k x n).

    Example:
        >>> mean, var = weighted_moments(torch.full((1, 1, 2), 0.5), torch.tensor([[[0.0], [2.0]]]))
        >>> mean.item(), var.item()
        (1.0, 1.0)
    """
    mean = torch.einsum("bkn,bnh->bkh", attention, h)
    var = (torch.einsum("bkn,bnh->bkh", attention, h.square()) - mean.square()).clamp_min(0.0)  # E[h²] - mean²
    return mean, var
