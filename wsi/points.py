"""Matching detected points to annotated ones (one-to-one, within a radius), and the F1 of the result.

Used to score nucleus and mitosis detections against annotations (MIDOG: 7.5 µm; nuclei: 4 µm).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def pair_points(pred: np.ndarray, true: np.ndarray, radius: float) -> np.ndarray:
    """Index pairs (K × 2: pred row, true row) of the one-to-one matching (Hungarian) of points (N × 2, any
    unit) that pairs the most within ``radius`` (same unit), closest first.

    Example:
        >>> pair_points(np.array([[0.0, 0], [50, 0]]), np.array([[100.0, 0], [3, 0]]), 7.5).tolist()
        [[0, 1]]
    """
    if len(pred) == 0 or len(true) == 0:
        return np.zeros((0, 2), np.int64)
    dist = np.hypot(*(pred[:, None, :] - true[None, :, :]).transpose(2, 0, 1))
    rows, cols = linear_sum_assignment(np.where(dist <= radius, dist, 1e6))
    within = dist[rows, cols] <= radius
    return np.column_stack([rows[within], cols[within]]).astype(np.int64)


def match_points(pred: np.ndarray, true: np.ndarray, radius: float) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of :func:`pair_points`.

    Example:
        >>> match_points(np.array([[0.0, 0], [50, 0]]), np.array([[3.0, 0], [100, 0]]), 7.5)
        (1, 1, 1)
    """
    tp = len(pair_points(pred, true, radius))
    return tp, len(pred) - tp, len(true) - tp


def f1_score(tp: int, fp: int, fn: int) -> float:
    """F1 of detection counts (1.0 when there is nothing to find and nothing was found).

    Example:
        >>> f1_score(*match_points(np.array([[0.0, 0]]), np.array([[1.0, 0]]), 2.0))
        1.0
    """
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
