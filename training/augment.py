"""Tile augmentations on uint8 batches (b × 3 × h × w): HED stain jitter, flips and 90° rotations."""

from __future__ import annotations

import torch

from wsi.stain import EOSIN, HEMATOXYLIN_HE, stain_matrix

_LN10 = 2.302585092994046
_HED = torch.tensor(stain_matrix(HEMATOXYLIN_HE, EOSIN), dtype=torch.float32)  # rows: H, E, residual
_HED_INV = torch.linalg.inv(_HED)


def hed_jitter(
    tiles: torch.Tensor,
    *,
    sigma: float = 0.05,
    bias: float = 0.05,
    vector_sigma: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Scale and shift each tile's H, E and residual amounts (Tellez et al. 2018), optionally re-rendering
    them with randomly tilted stain vectors (hue changes between labs, which scaling alone cannot mimic).

    Args:
        tiles: b × 3 × h × w uint8.
        sigma: std of the multiplicative factor (around 1) per stain.
        bias: std of the additive OD shift per stain.
        vector_sigma: std of the per-component noise added to each stain vector before renormalising.
    """
    b = tiles.shape[0]
    od = -torch.log10(tiles.float().clamp(min=1.0) / 255.0)  # b x 3 x h x w
    amounts = torch.einsum("bchw,cs->bshw", od, _HED_INV.to(tiles.device))  # b x 3(stains) x h x w
    alpha = 1.0 + sigma * torch.randn(b, 3, 1, 1, generator=generator).to(tiles.device)
    beta = bias * torch.randn(b, 3, 1, 1, generator=generator).to(tiles.device)
    vectors = _HED + vector_sigma * torch.randn(b, 3, 3, generator=generator)  # b x stains x rgb
    vectors = (vectors.clamp(min=0.02) / vectors.clamp(min=0.02).norm(dim=2, keepdim=True)).to(tiles.device)
    od = torch.einsum("bshw,bsc->bchw", amounts * alpha + beta, vectors)
    return (255.0 * torch.exp(-_LN10 * od.clamp(min=0.0))).round().clamp(0, 255).to(torch.uint8)


def flip_rotate(tiles: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random horizontal flip and rotation by a multiple of 90° for each tile (lossless)."""
    turns = torch.randint(0, 4, (len(tiles),), generator=generator).tolist()
    flips = (torch.rand(len(tiles), generator=generator) < 0.5).tolist()
    out = [torch.rot90(t.flip(-1) if f else t, k, dims=(-2, -1)) for t, k, f in zip(tiles, turns, flips, strict=True)]
    return torch.stack(out)
