"""Stain vectors and colour deconvolution (Ruifrok & Johnston 2001), shared by H&E and IHC code.

Optical density ``OD = -log10(I / I0)`` with ``I0`` the background intensity; stain amounts are the
OD projected on the inverse of the stain matrix (rows: normalised RGB OD of one stain).
"""

from __future__ import annotations

import numpy as np

#: RGB optical-density vectors from ../shared/DOMAIN.md (normalised below).
HEMATOXYLIN_HE = (0.644, 0.717, 0.267)
EOSIN = (0.093, 0.954, 0.283)
HEMATOXYLIN_HDAB = (0.650, 0.704, 0.286)
DAB = (0.268, 0.570, 0.776)


def stain_matrix(first: tuple[float, float, float], second: tuple[float, float, float]) -> np.ndarray:
    """3 × 3 matrix of unit stain vectors (rows); the third is their normalised cross product.

    Example:
        >>> stain_matrix(HEMATOXYLIN_HE, EOSIN).shape
        (3, 3)
    """
    a = np.asarray(first, np.float64) / np.linalg.norm(first)
    b = np.asarray(second, np.float64) / np.linalg.norm(second)
    c = np.cross(a, b)
    return np.stack([a, b, c / np.linalg.norm(c)])


def estimate_background(rgb: np.ndarray) -> np.ndarray:
    """The slide's white (``I0``): median colour of its brightest 10% of pixels.

    Glass on most slides, fat or lumina on slides without glass; robust to sensor noise, unlike a
    maximum. Clipped to [160, 255] per channel.
    """
    pixels = rgb.reshape(-1, 3)
    sample = pixels[:: max(1, len(pixels) // 200_000)].astype(np.float32)
    brightness = sample.sum(axis=1)
    brightest = sample[brightness >= np.percentile(brightness, 90)]
    out: np.ndarray = np.clip(np.median(brightest, axis=0), 160.0, 255.0)
    return out


def od_table(background: np.ndarray | tuple[float, float, float] = (255.0, 255.0, 255.0)) -> np.ndarray:
    """3 × 256 lookup table: OD of each uint8 value per channel, ``max(0, -log10(I / I0))``."""
    values = np.clip(np.arange(256, dtype=np.float32), 1.0, None)
    i0 = np.asarray(background, np.float32).reshape(3, 1)
    out: np.ndarray = np.clip(-np.log10(values[None, :] / i0), 0.0, None).astype(np.float32)
    return out


def optical_density(
    rgb: np.ndarray, background: np.ndarray | tuple[float, float, float] = (255.0, 255.0, 255.0)
) -> np.ndarray:
    """Per-channel OD of a uint8 RGB image (h × w × 3 float32) against ``background``."""
    table = od_table(background)
    out: np.ndarray = np.stack([table[c][rgb[..., c]] for c in range(3)], axis=-1)
    return out


def deconvolve(od: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Stain amounts (h × w × 3) from per-channel OD, for the rows of ``matrix``."""
    out: np.ndarray = od @ np.linalg.inv(matrix).astype(np.float32)
    return out


def stain_descriptor(rgb: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    """Six numbers summarising a slide's staining: mean and 90th percentile of per-channel OD over tissue.

    Used to tell when a slide's stain is far from the slides a model was trained on.

    Example:
        >>> stain_descriptor(np.full((4, 4, 3), 200, np.uint8), np.ones((4, 4), bool)).shape
        (6,)
    """
    od = optical_density(rgb, estimate_background(rgb))[tissue]  # n x 3
    if len(od) == 0:
        return np.zeros(6, np.float32)
    return np.concatenate([od.mean(axis=0), np.percentile(od, 90, axis=0)]).astype(np.float32)
