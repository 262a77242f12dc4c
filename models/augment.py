"""Tile augmentations on uint8 batches (b × 3 × h × w): HED stain jitter, flips and 90° rotations, and scale,
optical blur and sensor noise matching the synthetic randomisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from liposcope.wsi.stain import EOSIN, HEMATOXYLIN_HE, stain_matrix

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


def scale_blur_noise(
    tiles: torch.Tensor,
    *,
    scale: float = 0.2,
    blur_px: float = 1.2,
    noise: float = 6.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """uint8 patches (N × 3 × P × P) zoomed about their centre by a factor in [1 - scale, 1 + scale], blurred
    by a Gaussian of sigma in [0, blur_px] px and given Gaussian noise of sigma in [0, noise] grey levels.

    Example:
        >>> scale_blur_noise(torch.zeros(2, 3, 64, 64, dtype=torch.uint8)).shape
        torch.Size([2, 3, 64, 64])
    """
    n = len(tiles)
    x = tiles.float()
    zoom = 1.0 + scale * (2 * torch.rand(n, generator=generator) - 1)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / zoom
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    sigma = blur_px * torch.rand(n, generator=generator)
    radius = max(1, round(2 * blur_px))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets[None, :] ** 2) / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # N × K; sigma → 0 gives the identity
    c, p = x.shape[1], x.shape[-1]
    flat = x.reshape(1, n * c, p, p)
    k = kernel.repeat_interleave(c, dim=0)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), k[:, None, None, :], groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), k[:, None, :, None], groups=n * c)
    x = flat.reshape(n, c, p, p)
    x = x + torch.randn(x.shape, generator=generator) * (noise * torch.rand(n, 1, 1, 1, generator=generator))
    return x.round().clamp(0, 255).to(torch.uint8)
