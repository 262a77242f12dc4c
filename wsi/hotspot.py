"""Sliding square windows over point detections (nuclei, mitoses): per-window sums of point weights.

Points are binned into cells of ``side / steps``; a window is ``steps × steps`` cells, so windows
slide by a quarter of their side (default) and every sum is read from a 2-D cumulative table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Windows:
    """Window sums: ``sums[i, j, k]`` is the total of weight column ``k`` in the window with
    top-left corner ``(x[j], y[i])`` (level-0 px); all windows are ``width × height`` px."""

    x: np.ndarray
    y: np.ndarray
    width: float
    height: float
    sums: np.ndarray

    def box(self, i: int, j: int) -> tuple[float, float, float, float]:
        """(x, y, width, height) of window (i, j) in level-0 px."""
        return (float(self.x[j]), float(self.y[i]), self.width, self.height)


def square_windows(
    xy: np.ndarray,
    weights: np.ndarray,
    bounds: tuple[float, float, float, float],
    side: float,
    steps: int = 4,
) -> Windows:
    """Sums of ``weights`` (N × K) of the points ``xy`` (N × 2) in square windows of ``side`` px.

    Windows lie inside ``bounds`` = (x, y, width, height); where the region is narrower than
    ``side`` the window shrinks to the region's extent in that direction.

    Example:
        >>> w = square_windows(np.array([[5.0, 5.0], [95.0, 95.0]]), np.ones((2, 1)), (0, 0, 100, 100), 40)
        >>> float(w.sums.max()), w.sums.shape
        (1.0, (7, 7, 1))
    """
    x0, y0, width, height = bounds
    cell = side / steps
    nx, ny = max(1, math.ceil(width / cell - 1e-9)), max(1, math.ceil(height / cell - 1e-9))
    sx, sy = min(steps, nx), min(steps, ny)
    weights = np.asarray(weights, np.float64)
    weights = weights.reshape(len(xy), -1 if weights.size else (weights.shape[-1] if weights.ndim == 2 else 1))
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    ix = np.clip(((xy[:, 0] - x0) // cell).astype(np.int64), 0, nx - 1)
    iy = np.clip(((xy[:, 1] - y0) // cell).astype(np.int64), 0, ny - 1)
    cells = np.stack(
        [np.bincount(iy * nx + ix, weights[:, k], minlength=nx * ny).reshape(ny, nx) for k in range(weights.shape[1])],
        axis=-1,
    )
    table = np.zeros((ny + 1, nx + 1, cells.shape[-1]))
    table[1:, 1:] = cells.cumsum(0).cumsum(1)
    sums = table[sy:, sx:] - table[:-sy, sx:] - table[sy:, :-sx] + table[:-sy, :-sx]
    return Windows(
        x0 + cell * np.arange(nx - sx + 1),
        y0 + cell * np.arange(ny - sy + 1),
        min(side, sx * cell, width),
        min(side, sy * cell, height),
        sums,
    )
