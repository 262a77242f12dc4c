"""Nucleus annotations to score IHC detections against: DeepLIIF-style colour masks.

A DeepLIIF segmentation mask paints each Ki-67-positive nucleus red and each negative one blue (outlines green,
background black); every red or blue connected region of at least ``min_px`` pixels is one nucleus.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi

from liposcope.errors import AnnotationError, where


def read_deepliif_mask(path: str | Path, min_px: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Nucleus centres (N × 2, x y in pixels, pixel-centre convention) and positivity (N bool) of a mask.

    Raises:
        AnnotationError: the file is not a readable colour image.

    Example:
        >>> xy, positive = read_deepliif_mask("ki67_6_2_seg.png")  # doctest: +SKIP
        >>> round(100 * positive.mean(), 1)  # doctest: +SKIP
        47.8
    """
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise AnnotationError(where(path, "not a readable image", "give the DeepLIIF *_seg.png mask"))
    b, g, r = (bgr[..., i].astype(int) for i in range(3))
    centres, positive = [], []
    for mask, is_positive in (((r > 100) & (g < 100) & (b < 100), True), ((b > 100) & (r < 100) & (g < 100), False)):
        labels, n = ndi.label(mask)
        index = np.arange(1, n + 1)
        big = index[np.asarray(ndi.sum(mask, labels, index)) >= min_px]
        centres += [np.asarray(c)[::-1] + 0.5 for c in ndi.center_of_mass(mask, labels, big)]
        positive += [is_positive] * len(big)
    return np.array(centres).reshape(-1, 2), np.array(positive, bool)
