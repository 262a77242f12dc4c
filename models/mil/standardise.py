"""Per-dimension robust standardisation of tile features, the first step of every MIL head's forward pass.

Features from different encoders differ in scale by orders of magnitude (LayerNorm outputs near 1,
post-ReLU pools with a spread of 0.01, a few dimensions in the hundreds). Each dimension is centred
on its median and divided by a robust spread (interquartile range / 1.349, the standard deviation
of a normal distribution with that IQR; the standard deviation where the IQR is zero, as in sparse
post-ReLU dimensions), then clipped, so no single dimension or outlier tile dominates. Every
statistic is scale-equivariant: multiplying all features by a constant leaves the output unchanged.
The location and scale are buffers, saved in ``model.safetensors`` with the head's weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

CLIP = 10.0  # standardised values beyond ±CLIP robust spreads are clipped
MAX_TILES_PER_BAG = 512  # tiles per bag used to estimate the statistics (evenly spaced, deterministic)
FLOOR = 1e-3  # a dimension's scale is at least FLOOR x the median scale over dimensions
METHOD = f"per-dimension median and IQR/1.349 (std where the IQR is 0) over training tiles, clipped at ±{CLIP:g}"


class InputStandardiser(nn.Module):
    """``x → clamp((x - loc) / scale, ±CLIP)`` per feature dimension; the identity until :meth:`fit`.

    Example:
        >>> s = InputStandardiser(3)
        >>> s.fit([torch.randn(50, 3) * 1000.0])
        >>> bool(s(torch.randn(1, 4, 3) * 1000.0).abs().max() < 10.0)
        True
    """

    loc: torch.Tensor
    scale: torch.Tensor

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.register_buffer("loc", torch.zeros(in_dim))
        self.register_buffer("scale", torch.ones(in_dim))
        self.clip = CLIP

    def fit(self, bags: Sequence[torch.Tensor]) -> None:
        """Learn the location and scale from training bags (each n_i x d); never from test slides."""
        loc, scale = robust_stats(bags)
        self.loc.copy_(loc)
        self.scale.copy_(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.loc) / self.scale).clamp(-self.clip, self.clip)


def fit_standardiser(module: nn.Module, bags: Sequence[torch.Tensor]) -> None:
    """Fit ``module.standardise`` on ``bags`` (a registered head without one sees raw features).

    Example:
        >>> fit_standardiser(create_mil("abmil", 384, 4), [torch.randn(10, 384)])  # doctest: +SKIP
    """
    standardise = getattr(module, "standardise", None)
    if isinstance(standardise, InputStandardiser):
        standardise.fit(bags)
        bag_linear = getattr(module, "bag_linear", None)
        if bag_linear is not None:  # its slide-level statistics are of the standardised tiles
            with torch.no_grad():
                bag_linear.fit([standardise(b) for b in bags])


def robust_stats(bags: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension median and robust scale (float32, d each) of the tiles of ``bags``.

    Example:
        >>> loc, scale = robust_stats([torch.arange(10.0)[:, None]])
        >>> float(loc[0]), round(float(scale[0]), 2)
        (4.5, 3.34)
    """
    tiles = torch.cat([_spaced(b, MAX_TILES_PER_BAG) for b in bags]).double()  # n x d
    probs = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    step = max(1, 2**23 // len(tiles))  # torch.quantile takes at most 2^24 values at a time
    q25, q50, q75 = torch.cat(
        [torch.quantile(tiles[:, i : i + step], probs, dim=0) for i in range(0, tiles.shape[1], step)], 1
    )
    spread = (q75 - q25) / 1.349
    spread = torch.where(spread > 0, spread, tiles.std(dim=0, correction=0))
    positive = spread[spread > 0]
    floor = float(positive.median()) * FLOOR if len(positive) else 1.0
    return q50.float(), spread.clamp_min(floor).float()


def _spaced(features: torch.Tensor, k: int) -> torch.Tensor:
    """At most ``k`` evenly spaced rows of ``features`` (all of them when there are fewer)."""
    if len(features) <= k:
        return features
    return features[torch.linspace(0, len(features) - 1, k).long()]
