"""MIL heads: a bag of tile features (b x n x d) in, slide logits and per-tile attention out.

Every head takes ``(in_dim, n_classes, **hyperparameters)`` (keyword-only, with defaults) and its
``forward(x, mask)`` returns :class:`MILOutput`. ``mask`` marks real tiles (``True``) in padded
batches; attention is zero on padding and sums to 1 over the real tiles of each bag. Every head
first standardises its input (``head.standardise``, fitted on the training tiles; identity until then).

``pool_std=True`` makes a head classify the attention-weighted standard deviation of its tile
embeddings beside their weighted mean (or class token): on random-weight and other generic encoders
much of the class signal lies in how tiles vary within a slide, which a mean alone hides. The
default ``False`` is the original pooling, so model cards written without the option rebuild exactly.
``pooled_linear=True`` adds a linear classifier of the bag's mean and std tile, standardised over the
training slides, to the logits (:mod:`models.mil.bag_linear`); off by default for the same reason.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from liposcope.models.mil._registry import register_mil
from liposcope.models.mil.bag_linear import BagLinear
from liposcope.models.mil.pooling import uniform_attention, weighted_moments
from liposcope.models.mil.standardise import InputStandardiser


class MILOutput(NamedTuple):
    """Slide ``logits`` (b x c) and tile ``attention`` (b x n, sums to 1 over valid tiles)."""

    logits: torch.Tensor
    attention: torch.Tensor


def check_bag(x: torch.Tensor, mask: torch.Tensor | None, in_dim: int) -> torch.Tensor:
    """Validate a bag batch and return its mask (all ``True`` when ``mask`` is None).

    Raises:
        ValueError: ``x`` is not b x n x in_dim, the mask is not b x n, or a bag has no valid tile.

    Example:
        >>> check_bag(torch.zeros(2, 5, 8), None, 8).shape
        torch.Size([2, 5])
    """
    if x.ndim != 3 or x.shape[2] != in_dim or x.shape[1] == 0:
        msg = f"expected features of shape b x n x {in_dim} with n >= 1, got {tuple(x.shape)}"
        raise ValueError(msg)
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
        msg = f"expected a bool mask of shape {tuple(x.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}"
        raise ValueError(msg)
    if not bool(mask.any(dim=1).all()):
        msg = "every bag needs at least one valid tile; the mask has an all-False row"
        raise ValueError(msg)
    return mask


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim (b x n) with invalid positions set to exactly zero."""
    scores = scores.masked_fill(~mask, float("-inf"))  # b x n
    return torch.softmax(scores, dim=-1)


def _pool(attention: torch.Tensor, h: torch.Tensor, with_std: bool) -> torch.Tensor:
    """Weighted mean of tiles ``h`` (b x n x h) under each attention row (b x k x n): b x k x h, x 2 with the std."""
    if not with_std:
        return torch.einsum("bkn,bnh->bkh", attention, h)
    mean, var = weighted_moments(attention, h)
    return torch.cat([mean, (var + 1e-6).sqrt()], dim=-1)  # the offset keeps the gradient finite where tiles are alike


def _linear_read(read: BagLinear | None, logits: torch.Tensor, z: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``logits`` plus the linear read of the pooled tiles ``z`` where the head has one (``pooled_linear``)."""
    return logits if read is None else logits + read(z, valid)


def _mlp(in_dim: int, hidden_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout))


@register_mil("meanpool")
class MeanPool(nn.Module):
    """Baseline: project tiles, average them, classify. Attention is uniform over valid tiles."""

    def __init__(
        self,
        in_dim: int,
        n_classes: int,
        *,
        hidden_dim: int = 256,
        dropout: float = 0.1,
        pool_std: bool = False,
        pooled_linear: bool = False,
    ) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.pool_std = pool_std
        self.standardise = InputStandardiser(in_dim)
        self.bag_linear = BagLinear(in_dim, n_classes) if pooled_linear else None
        self.project = _mlp(in_dim, hidden_dim, dropout)
        self.classifier = nn.Linear(hidden_dim * (1 + pool_std), n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> MILOutput:
        valid = check_bag(x, mask, self.in_dim)  # b x n
        attention = uniform_attention(valid)  # b x n
        z = self.standardise(x)  # b x n x d
        h = self.project(z)  # b x n x h
        pooled = _pool(attention.unsqueeze(1), h, self.pool_std)[:, 0]  # b x h (x 2 with the std)
        return MILOutput(_linear_read(self.bag_linear, self.classifier(pooled), z, valid), attention)


@register_mil("abmil")
class GatedABMIL(nn.Module):
    """Gated attention MIL (Ilse et al. 2018): a_i ∝ exp(w·(tanh(V h_i) ⊙ sigmoid(U h_i))).

    ``branches`` > 1 learns that many attention distributions and classifies their concatenated
    poolings, so one branch can look at, say, the fat while another finds a dedifferentiated
    nodule. The returned attention is that of the branch contributing most to the predicted
    class's logit. ``branches=1`` is the original model.
    """

    def __init__(
        self,
        in_dim: int,
        n_classes: int,
        *,
        hidden_dim: int = 256,
        attn_dim: int = 128,
        dropout: float = 0.25,
        branches: int = 1,
        pool_std: bool = False,
        pooled_linear: bool = False,
    ) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.pool_std = pool_std
        self.standardise = InputStandardiser(in_dim)
        self.bag_linear = BagLinear(in_dim, n_classes) if pooled_linear else None
        self.project = _mlp(in_dim, hidden_dim, dropout)
        self.attn_tanh = nn.Sequential(nn.Linear(hidden_dim, attn_dim), nn.Tanh(), nn.Dropout(dropout))
        self.attn_gate = nn.Sequential(nn.Linear(hidden_dim, attn_dim), nn.Sigmoid(), nn.Dropout(dropout))
        self.attn_score = nn.Linear(attn_dim, branches)
        self.classifier = nn.Linear(hidden_dim * branches * (1 + pool_std), n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> MILOutput:
        valid = check_bag(x, mask, self.in_dim)  # b x n
        z = self.standardise(x)  # b x n x d
        h = self.project(z)  # b x n x h
        gated = self.attn_tanh(h) * self.attn_gate(h)  # b x n x a
        scores = self.attn_score(gated).transpose(1, 2)  # b x k x n
        attention = _masked_softmax(scores, valid.unsqueeze(1).expand_as(scores))  # b x k x n
        pooled = _pool(attention, h, self.pool_std)  # b x k x h (x 2 with the std)
        logits = _linear_read(self.bag_linear, self.classifier(pooled.flatten(1)), z, valid)  # b x c
        # report the branch that adds most to the predicted class's logit: where the answer came from
        weight = self.classifier.weight.view(len(logits[0]), len(pooled[0]), -1)  # c x k x h
        contribution = torch.einsum("ckh,bkh->bck", weight, pooled)  # b x c x k
        top = contribution[torch.arange(len(logits)), logits.argmax(dim=1)].argmax(dim=1)  # b
        return MILOutput(logits, attention[torch.arange(len(logits)), top])


class _Block(nn.Module):
    """Pre-norm transformer layer that also returns its head-averaged attention (b x t x t)."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, n_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))

    def forward(self, t: torch.Tensor, pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.norm1(t)  # b x t x h
        out, weights = self.attn(q, q, q, key_padding_mask=pad, need_weights=True, average_attn_weights=True)
        t = t + out
        return t + self.mlp(self.norm2(t)), weights  # b x t x h, b x t x t


@register_mil("transmil")
class TransMIL(nn.Module):
    """TransMIL-style head: a class token and transformer layers over the projected tiles (no PPEG).

    Tile attention is the class token's attention over the tiles in the last layer (averaged over
    heads), renormalised over the valid tiles.
    """

    def __init__(
        self,
        in_dim: int,
        n_classes: int,
        *,
        hidden_dim: int = 256,
        n_layers: int = 2,
        n_heads: int = 4,
        dropout: float = 0.1,
        pool_std: bool = False,
        pooled_linear: bool = False,
    ) -> None:
        super().__init__()
        if hidden_dim % n_heads:
            msg = f"hidden_dim {hidden_dim} must be divisible by n_heads {n_heads}"
            raise ValueError(msg)
        self.in_dim = in_dim
        self.pool_std = pool_std
        self.standardise = InputStandardiser(in_dim)
        self.bag_linear = BagLinear(in_dim, n_classes) if pooled_linear else None
        self.project = _mlp(in_dim, hidden_dim, dropout)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        nn.init.normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList(_Block(hidden_dim, n_heads, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(hidden_dim)
        self.classifier = nn.Linear(hidden_dim * (1 + pool_std), n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> MILOutput:
        valid = check_bag(x, mask, self.in_dim)  # b x n
        z = self.standardise(x)  # b x n x d
        h = self.project(z)  # b x n x h
        t = torch.cat([self.cls_token.expand(len(h), -1, -1), h], dim=1)  # b x (1 + n) x h
        pad = torch.cat([torch.zeros_like(valid[:, :1]), ~valid], dim=1)  # b x (1 + n), True = ignore
        weights = torch.zeros(0)
        for block in self.blocks:
            t, weights = block(t, pad)
        cls_to_tiles = weights[:, 0, 1:].masked_fill(~valid, 0.0)  # b x n
        attention = cls_to_tiles / cls_to_tiles.sum(dim=1, keepdim=True).clamp_min(1e-12)  # b x n
        cls = self.norm(t[:, 0])  # b x h
        if self.pool_std:  # the class token beside the spread of the tile tokens under its attention
            spread = _pool(attention.unsqueeze(1), self.norm(t[:, 1:]), with_std=True)[:, 0, cls.shape[1] :]  # b x h
            cls = torch.cat([cls, spread], dim=1)
        return MILOutput(_linear_read(self.bag_linear, self.classifier(cls), z, valid), attention)
