"""Deterministic, tile-continuous random fields in physical units.

Everything here is a pure function of global coordinates (µm) and a seed, so a region
rendered in one call or in pieces gives the same values. Randomness comes from a
vectorised integer hash (splitmix64 finaliser) instead of per-cell generators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Splitmix64 finaliser (wrapping uint64 arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def hash64(seed: int, *keys: NDArray[np.integer] | int) -> NDArray[np.uint64]:
    """Hash a seed and broadcastable integer keys to uint64."""
    h = _mix64(np.atleast_1d(np.uint64(seed & 0xFFFFFFFFFFFFFFFF)) + _GOLDEN)
    for key in keys:
        k = np.asarray(key).astype(np.int64).astype(np.uint64)
        h = _mix64((h ^ k) + _GOLDEN)
    return h


def hash_uniform(seed: int, *keys: NDArray[np.integer] | int) -> NDArray[np.float64]:
    """Uniform [0, 1) floats from a seed and broadcastable integer keys."""
    return (hash64(seed, *keys) >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0**53)


def bilerp(lattice: NDArray[np.floating], cx: NDArray[np.float64], cy: NDArray[np.float64]) -> FloatArray:
    """Separable bilinear interpolation of ``lattice`` at column coords ``cx`` and row coords ``cy``.

    Coordinates are in lattice index units and are clamped to the lattice.
    """
    lh, lw = lattice.shape
    cx = np.clip(cx, 0.0, lw - 1.0)
    cy = np.clip(cy, 0.0, lh - 1.0)
    ix = np.minimum(cx.astype(np.int64), max(lw - 2, 0))
    iy = np.minimum(cy.astype(np.int64), max(lh - 2, 0))
    tx = (cx - ix).astype(np.float32)
    ty = (cy - iy).astype(np.float32)[:, None]
    lat = np.vstack([lattice, lattice[-1:]]).astype(np.float32)
    rows = lat[:, ix]
    step = lat[:, np.minimum(ix + 1, lw - 1)]
    step -= rows
    step *= tx
    rows += step
    drow = rows[1:] - rows[:-1]
    out: FloatArray = rows[iy]
    tmp = drow[iy]
    tmp *= ty
    out += tmp
    return out


def value_noise(seed: int, xs_um: NDArray[np.float64], ys_um: NDArray[np.float64], scale_um: float) -> FloatArray:
    """Smooth value noise in [0, 1] on the grid ``ys_um x xs_um`` with feature size ``scale_um``."""
    gx = xs_um / scale_um
    gy = ys_um / scale_um
    x0 = int(np.floor(gx.min()))
    y0 = int(np.floor(gy.min()))
    nx = int(np.floor(gx.max())) - x0 + 2
    ny = int(np.floor(gy.max())) - y0 + 2
    lattice = hash_uniform(seed, np.arange(y0, y0 + ny)[:, None], np.arange(x0, x0 + nx)[None, :])
    fx = gx - x0
    fy = gy - y0
    # Smoothstep inside each lattice cell hides the grid.
    fx = np.floor(fx) + _smooth(fx - np.floor(fx))
    fy = np.floor(fy) + _smooth(fy - np.floor(fy))
    return bilerp(lattice, fx, fy)


def value_noise_at(
    seed: int, x_um: NDArray[np.float64], y_um: NDArray[np.float64], scale_um: float
) -> NDArray[np.float64]:
    """Pointwise version of :func:`value_noise` (same field) at scattered positions."""
    gx = x_um / scale_um
    gy = y_um / scale_um
    ix = np.floor(gx)
    iy = np.floor(gy)
    tx = _smooth(gx - ix)
    ty = _smooth(gy - iy)
    ix_i = ix.astype(np.int64)
    iy_i = iy.astype(np.int64)
    top = hash_uniform(seed, iy_i, ix_i) * (1 - tx) + hash_uniform(seed, iy_i, ix_i + 1) * tx
    bot = hash_uniform(seed, iy_i + 1, ix_i) * (1 - tx) + hash_uniform(seed, iy_i + 1, ix_i + 1) * tx
    return top * (1 - ty) + bot * ty


def fbm_at(
    seed: int, x_um: NDArray[np.float64], y_um: NDArray[np.float64], scale_um: float, octaves: int = 3
) -> NDArray[np.float64]:
    """Pointwise version of :func:`fbm`."""
    total = np.zeros(np.shape(x_um))
    weight = 0.0
    amp = 1.0
    for k in range(octaves):
        total += amp * value_noise_at(seed + 7919 * k, x_um, y_um, scale_um / 2.0**k)
        weight += amp
        amp *= 0.5
    return total / weight


def _smooth(t: NDArray[np.float64]) -> NDArray[np.float64]:
    return t * t * (3.0 - 2.0 * t)


def fbm(
    seed: int, xs_um: NDArray[np.float64], ys_um: NDArray[np.float64], scale_um: float, octaves: int = 3
) -> FloatArray:
    """Fractal sum of value-noise octaves, normalised to [0, 1]."""
    total = np.zeros((ys_um.size, xs_um.size), np.float32)
    weight = 0.0
    amp = 1.0
    for k in range(octaves):
        octave = value_noise(seed + 7919 * k, xs_um, ys_um, scale_um / 2.0**k)
        octave *= np.float32(amp)
        total += octave
        weight += amp
        amp *= 0.5
    total *= 1.0 / weight
    return total


def smoothstep(edge0: float, edge1: float, x: FloatArray) -> FloatArray:
    """Hermite step from 0 at ``edge0`` to 1 at ``edge1``."""
    t = np.clip((x - edge0) * (1.0 / (edge1 - edge0)), 0.0, 1.0)
    out: FloatArray = (t * t * (3.0 - 2.0 * t)).astype(np.float32, copy=False)
    return out


@dataclass(frozen=True)
class Points:
    """Points of a jittered grid: positions (µm) and stable per-point ids."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    uid: NDArray[np.uint64]
    seed: int

    def uniform(self, attr: int) -> NDArray[np.float64]:
        """Per-point uniform [0, 1) variate number ``attr`` (stable across regions)."""
        return hash_uniform(self.seed, self.uid.astype(np.int64), attr)

    def normal(self, attr: int) -> NDArray[np.float64]:
        """Per-point standard normal variate (Box-Muller on two hashed uniforms)."""
        u1 = np.maximum(self.uniform(attr), 1e-12)
        u2 = self.uniform(attr + 1000)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)

    def select(self, keep: NDArray[np.bool_]) -> Points:
        """Subset of the points."""
        return Points(self.x[keep], self.y[keep], self.uid[keep], self.seed)

    def __len__(self) -> int:
        return int(self.x.size)


def jittered_points(
    seed: int, bounds_um: tuple[float, float, float, float], cell_um: float, per_cell: int = 1
) -> Points:
    """All points of the global jittered grid whose cells overlap ``bounds_um`` (x0, y0, x1, y1).

    Each grid cell (i, j) holds ``per_cell`` points placed uniformly inside it; positions and
    ids depend only on (seed, i, j, slot), so neighbouring regions agree.
    """
    x0, y0, x1, y1 = bounds_um
    i = np.arange(int(np.floor(x0 / cell_um)), int(np.floor(x1 / cell_um)) + 1)
    j = np.arange(int(np.floor(y0 / cell_um)), int(np.floor(y1 / cell_um)) + 1)
    jj, ii, ss = np.meshgrid(j, i, np.arange(per_cell), indexing="ij")
    uid = hash64(seed, jj.ravel(), ii.ravel(), ss.ravel())
    ux = hash_uniform(seed, uid.astype(np.int64), 1)
    uy = hash_uniform(seed, uid.astype(np.int64), 2)
    x = (ii.ravel() + ux) * cell_um
    y = (jj.ravel() + uy) * cell_um
    return Points(x, y, uid, seed)


def wrapped_crop(tile: FloatArray, x0: int, y0: int, w: int, h: int) -> FloatArray:
    """The (h × w) window of ``tile`` at (x0, y0), ``tile`` repeated periodically (per-slide sensor noise)."""
    rows = np.take(tile, np.arange(y0, y0 + h), axis=0, mode="wrap")
    out: FloatArray = np.take(rows, np.arange(x0, x0 + w), axis=1, mode="wrap")
    return out


def smoothed_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> FloatArray:
    """Gaussian-smoothed white noise with unit standard deviation (for whole-slide low-res fields)."""
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.standard_normal(shape), sigma_px, mode="reflect")
    field -= field.mean()
    std = float(field.std())
    out: FloatArray = (field / (std if std > 0 else 1.0)).astype(np.float32)
    return out
