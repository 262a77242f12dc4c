"""Patch augmentation matching the synthetic randomisation: scale, optical blur and sensor noise.

Stain (HED) jitter and flips/rotations come from :mod:`training.augment`; these are applied after them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
