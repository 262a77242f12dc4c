"""Slide-level low-resolution fields: tissue pieces, dedifferentiated regions and glass dust.

Fields live on a coarse grid (``FIELD_UM`` µm per cell, cell-centred) covering the whole
slide and are sampled with bilinear interpolation, so region renders and ground-truth masks
(thresholds of the same interpolated field) agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from liposcope.synth.fields import FloatArray, bilerp, smoothed_noise

FIELD_UM = 16.0
EDGE_UM = 2.0  # width of the soft tissue edge


@dataclass(frozen=True)
class Field:
    """A thresholded low-resolution field: inside where ``value > threshold``.

    ``softness`` is the field change over which the rendered alpha goes from 0 to 1.
    """

    grid: FloatArray
    threshold: float
    softness: float

    def sample(self, xs_um: NDArray[np.float64], ys_um: NDArray[np.float64]) -> FloatArray:
        """Interpolated field on the grid ``ys_um x xs_um`` (pixel centres, µm)."""
        return bilerp(self.grid, xs_um / FIELD_UM - 0.5, ys_um / FIELD_UM - 0.5)

    def alpha(self, xs_um: NDArray[np.float64], ys_um: NDArray[np.float64]) -> FloatArray:
        """Soft membership in [0, 1]; 0.5 exactly on the mask boundary."""
        v = self.sample(xs_um, ys_um)
        v -= np.float32(self.threshold)
        v *= np.float32(1.0 / self.softness)
        v += np.float32(0.5)
        out: FloatArray = np.clip(v, 0.0, 1.0, out=v)
        return out

    def mask(self, width: int, height: int, mpp: float, downsample: int) -> NDArray[np.bool_]:
        """Hard mask at level-0 downsample ``downsample`` (value at each mask pixel's centre)."""
        xs = np.asarray((np.arange(-(-width // downsample)) + 0.5) * downsample * mpp, np.float64)
        ys = np.asarray((np.arange(-(-height // downsample)) + 0.5) * downsample * mpp, np.float64)
        out: NDArray[np.bool_] = self.sample(xs, ys) > self.threshold
        return out


def _softness(grid: FloatArray, threshold: float, width_um: float) -> float:
    """Field change across ``width_um`` near the threshold contour (median gradient there)."""
    gy, gx = np.gradient(grid.astype(np.float64))
    mag = np.hypot(gx, gy)
    near = np.abs(grid - threshold) < 0.1 * (float(grid.std()) + 1e-6)
    g = float(np.median(mag[near])) if near.sum() > 4 else float(np.median(mag)) + 1e-6
    return max(g * width_um / FIELD_UM, 1e-4)


def _grid_shape(width_um: float, height_um: float) -> tuple[int, int]:
    return (int(np.ceil(height_um / FIELD_UM)) + 2, int(np.ceil(width_um / FIELD_UM)) + 2)


def tissue_field(rng: np.random.Generator, width_um: float, height_um: float) -> Field:
    """1-3 irregular tissue pieces covering ~30-70 % of the slide, with glass margins."""
    gh, gw = _grid_shape(width_um, height_um)
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float64)
    n_pieces = int(rng.integers(1, 4))
    target = float(rng.uniform(0.3, 0.7))
    long_x = gw >= gh
    field = np.full((gh, gw), -np.inf)
    for k in range(n_pieces):
        along = (k + 0.5) / n_pieces + rng.uniform(-0.08, 0.08) / n_pieces
        across = 0.5 + rng.uniform(-0.12, 0.12)
        cx, cy = (along, across) if long_x else (across, along)
        span = np.array([gw / n_pieces, gh]) if long_x else np.array([gw, gh / n_pieces])
        rx, ry = span * 0.42 * rng.uniform(0.75, 1.1, 2)
        ang = rng.uniform(0, np.pi)
        u = (xx - cx * gw) * np.cos(ang) + (yy - cy * gh) * np.sin(ang)
        v = -(xx - cx * gw) * np.sin(ang) + (yy - cy * gh) * np.cos(ang)
        wobble = smoothed_noise(rng, (gh, gw), max(min(rx, ry) / 3.0, 1.0))
        piece = 1.0 - np.hypot(u / rx, v / ry) + 0.22 * wobble
        field = np.maximum(field, piece)
    margin = np.minimum(np.minimum(xx, gw - 1 - xx), np.minimum(yy, gh - 1 - yy))
    border = max(0.04 * min(gw, gh), 2.5)
    field -= 4.0 * np.clip(1.0 - margin / border, 0.0, 1.0)
    threshold = float(np.quantile(field, 1.0 - target))
    grid = field.astype(np.float32)
    return Field(grid, threshold, _softness(grid, threshold, EDGE_UM))


def region_field(rng: np.random.Generator, tissue: Field, fraction: float, blend_um: float) -> Field:
    """Blobs covering ``fraction`` of the tissue (dedifferentiated areas), edge ``blend_um`` wide."""
    gh, gw = tissue.grid.shape
    inside = tissue.grid > tissue.threshold
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float64)
    cand = np.flatnonzero(inside.ravel())
    if cand.size == 0:
        msg = "no tissue to place a dedifferentiated region in"
        raise ValueError(msg)
    field = np.full((gh, gw), -np.inf)
    scale = np.sqrt(fraction * cand.size / np.pi)
    for _ in range(int(rng.integers(1, 3))):
        c = int(rng.choice(cand))
        cy, cx = divmod(c, gw)
        r = max(scale * rng.uniform(0.6, 1.2), 1.5)
        blob = 1.0 - np.hypot(xx - cx, yy - cy) / r + 0.25 * smoothed_noise(rng, (gh, gw), max(r / 3.0, 1.0))
        field = np.maximum(field, blob)
    threshold = float(np.quantile(field[inside], 1.0 - fraction))
    grid = field.astype(np.float32)
    return Field(grid, threshold, _softness(grid, threshold, blend_um))


@dataclass(frozen=True)
class Dust:
    """Tiny specks on the glass: centres and radii in µm (each well under 0.005 mm²)."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    r: NDArray[np.float64]


def dust_specks(rng: np.random.Generator, tissue: Field, width_um: float, height_um: float) -> Dust:
    """0-5 specks (half of the slides have none), placed on glass away from tissue."""
    n = int(rng.integers(1, 6)) if rng.random() < 0.5 else 0
    x = rng.uniform(0, width_um, n)
    y = rng.uniform(0, height_um, n)
    r = rng.uniform(3.0, 15.0, n)
    level = np.array([float(tissue.sample(np.array([xi]), np.array([yi]))[0, 0]) for xi, yi in zip(x, y, strict=True)])
    ok = level < tissue.threshold - 8.0 * tissue.softness * FIELD_UM / EDGE_UM
    return Dust(x[ok], y[ok], r[ok])
