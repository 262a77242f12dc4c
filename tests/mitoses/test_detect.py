"""Stage 1 candidates, patches, non-maximum suppression and MIDOG-style matching."""

from __future__ import annotations

import cv2
import numpy as np

from liposcope.mitoses.detect import cut_patches, find_candidates, suppress
from liposcope.mitoses.settings import load_settings


def test_candidates_are_dark_compact_objects() -> None:
    rgb = np.full((200, 200, 3), (235, 200, 225), np.uint8)  # pale eosin background
    cv2.circle(rgb, (60, 60), 10, (60, 40, 110), -1)  # a dark haematoxylin blob, 5 µm across at 0.25 µm/px
    cv2.circle(rgb, (150, 140), 10, (200, 170, 210), -1)  # a pale nucleus: not a candidate
    xy, od = find_candidates(rgb, 0.25, load_settings().candidates, (240.0, 240.0, 240.0))
    assert len(xy) == 1
    np.testing.assert_allclose(xy[0], [60, 60], atol=1.5)
    assert od[0] > load_settings().candidates.min_od


def test_patches_are_centred_and_mirrored_at_the_border() -> None:
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[50, 50] = 255
    patches = cut_patches(rgb, np.array([[50.0, 50.0], [2.0, 3.0]]), 32)
    assert patches.shape == (2, 3, 32, 32)
    assert patches[0, :, 16, 16].tolist() == [255, 255, 255]
    assert patches[0].sum() == 3 * 255


def test_suppression_keeps_one_per_figure() -> None:
    xy = np.array([[0.0, 0.0], [6.0, 0.0], [12.0, 0.0], [40.0, 0.0]])
    keep = suppress(xy, np.array([0.5, 0.9, 0.6, 0.7]), 10.0)
    assert keep.tolist() == [1, 3]  # the best wins; 0 and 2 lie within 10 µm of it
    assert suppress(np.zeros((0, 2)), np.zeros(0), 10.0).tolist() == []
