"""Point matching shared by nucleus and mitosis evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from wsi.points import f1_score, match_points


def test_matching_is_one_to_one_within_radius() -> None:
    truth = np.array([[0.0, 0.0], [100.0, 0.0]])
    pred = np.array([[1.0, 0.0], [2.0, 0.0], [107.0, 0.0], [108.0, 0.0]])
    assert match_points(pred, truth, 7.5) == (2, 2, 0)
    assert match_points(pred[:1], truth, 0.5) == (0, 1, 2)
    assert f1_score(2, 2, 0) == pytest.approx(2 / 3)
    assert f1_score(0, 0, 0) == 1.0
