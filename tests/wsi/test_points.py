"""Point matching shared by nucleus and mitosis evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from liposcope.wsi.points import f1_score, match_points, pair_points


def test_matching_is_one_to_one_within_radius() -> None:
    truth = np.array([[0.0, 0.0], [100.0, 0.0]])
    pred = np.array([[1.0, 0.0], [2.0, 0.0], [107.0, 0.0], [108.0, 0.0]])
    assert match_points(pred, truth, 7.5) == (2, 2, 0)
    assert match_points(pred[:1], truth, 0.5) == (0, 1, 2)
    assert f1_score(2, 2, 0) == pytest.approx(2 / 3)
    assert f1_score(0, 0, 0) == 1.0


def test_pairs_prefer_more_matches_over_closer_ones() -> None:
    # the closest pair (pred 0 with truth 1) would leave truth 0 unmatched; the matching takes two pairs instead
    truth = np.array([[0.0, 0.0], [6.0, 0.0]])
    pred = np.array([[5.0, 0.0], [12.0, 0.0]])
    assert sorted(pair_points(pred, truth, 6.5).tolist()) == [[0, 0], [1, 1]]
    assert pair_points(pred, truth[:0], 6.5).shape == (0, 2)
