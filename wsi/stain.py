"""Stain vectors and colour deconvolution (Ruifrok & Johnston 2001), shared by H&E and IHC code.

Optical density ``OD = -log10(I / I0)`` with ``I0`` the background intensity; stain amounts are the
OD projected on the inverse of the stain matrix (rows: normalised RGB OD of one stain).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: RGB optical-density vectors from ../shared/DOMAIN.md (normalised below).
HEMATOXYLIN_HE = (0.644, 0.717, 0.267)
EOSIN = (0.093, 0.954, 0.283)
HEMATOXYLIN_HDAB = (0.650, 0.704, 0.286)
DAB = (0.268, 0.570, 0.776)


def stain_matrix(first: Sequence[float], second: Sequence[float], third: Sequence[float] | None = None) -> np.ndarray:
    """3 × 3 matrix of unit stain vectors (rows); without ``third``, the normalised cross product.

    Example:
        >>> stain_matrix(HEMATOXYLIN_HE, EOSIN).shape
        (3, 3)
    """
    a = np.asarray(first, np.float64) / np.linalg.norm(first)
    b = np.asarray(second, np.float64) / np.linalg.norm(second)
    c = np.cross(a, b) if third is None else np.asarray(third, np.float64)
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


def macenko_vectors(
    rgb: np.ndarray, tissue: np.ndarray, *, min_od: float = 0.15, percentile: float = 1.0
) -> np.ndarray | None:
    """The slide's two dominant stain vectors (Macenko et al. 2009), rows ordered H first, or ``None``.

    OD vectors of tissue pixels (every channel above ``min_od``) are projected on the plane of their
    two main directions; the extreme angles (``percentile`` and 100 - ``percentile``) give the stains.
    The haematoxylin-like vector is the one with the larger red OD.

    Example:
        >>> macenko_vectors(np.full((8, 8, 3), 250, np.uint8), np.ones((8, 8), bool)) is None
        True
    """
    od = optical_density(rgb, estimate_background(rgb))[tissue]  # n x 3
    od = od[(od > min_od).all(axis=1)]
    if len(od) < 50:
        return None
    _, vectors = np.linalg.eigh(np.cov(od.T))
    plane = vectors[:, 1:3]  # 3 x 2, the two largest directions
    projected = od @ plane  # n x 2
    angles = np.arctan2(projected[:, 1], projected[:, 0])
    lo, hi = np.percentile(angles, [percentile, 100 - percentile])
    stains = np.stack([plane @ [np.cos(a), np.sin(a)] for a in (lo, hi)])  # 2 x 3
    stains *= np.sign(stains.sum(axis=1, keepdims=True))  # OD vectors point into the positive octant
    stains /= np.linalg.norm(stains, axis=1, keepdims=True)
    out: np.ndarray = stains[np.argsort(-stains[:, 0])]
    return out


def stain_descriptor(rgb: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    """Six numbers describing a slide's stain colours, not its tissue: the two Macenko stain vectors.

    Used to tell when a slide's staining is far from the slides a model was trained on. Falls back to
    the DOMAIN.md H&E reference vectors when too few stained pixels exist.

    Example:
        >>> stain_descriptor(np.full((4, 4, 3), 200, np.uint8), np.ones((4, 4), bool)).shape
        (6,)
    """
    vectors = macenko_vectors(rgb, tissue)
    if vectors is None:
        vectors = stain_matrix(HEMATOXYLIN_HE, EOSIN)[:2]
    return vectors.reshape(-1).astype(np.float32)
