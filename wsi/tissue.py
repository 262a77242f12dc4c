"""Tissue detection on a low-resolution overview of the slide.

Optical density against the slide's own background, an Otsu threshold kept inside a band that
keeps pale fat and myxoid stroma, closing to join fat septa, filling adipocyte-sized holes and
dropping specks. Parameters live in ``configs/tiling.yaml`` (section ``tissue``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from liposcope.config import from_dict, load_yaml
from liposcope.errors import NoTissueError, where
from wsi.slide import Slide


@dataclass(frozen=True)
class TissueParams:
    """Tissue-detector settings (see ``configs/tiling.yaml``)."""

    mask_mpp: float
    median_px: int
    min_od: float
    max_od: float
    close_um: float
    max_hole_mm2: float
    min_object_mm2: float

    @classmethod
    def default(cls) -> TissueParams:
        """The packaged defaults from ``configs/tiling.yaml``."""
        return from_dict(cls, load_yaml("tiling")["tissue"], "configs/tiling.yaml: tissue")


@dataclass(frozen=True)
class TissueMask:
    """Boolean tissue mask at ``mpp`` µm/px; mask pixel (i, j) covers level-0 pixels × ``downsample``."""

    mask: np.ndarray
    mpp: float
    downsample: float
    threshold_od: float

    @property
    def area_mm2(self) -> float:
        """Tissue area in mm²."""
        return float(self.mask.sum()) * (self.mpp / 1000.0) ** 2

    def fraction_in_boxes(self, xy_level0: np.ndarray, size_level0: int) -> np.ndarray:
        """Tissue fraction of each square level-0 box (N × 2 top-left corners, common side)."""
        integral = cv2.integral(self.mask.astype(np.uint8)).astype(np.float64)
        h, w = self.mask.shape
        lo = np.rint(np.asarray(xy_level0, np.float64) / self.downsample).astype(np.int64)
        hi = np.rint((np.asarray(xy_level0, np.float64) + size_level0) / self.downsample).astype(np.int64)
        x0, x1 = np.clip(lo[:, 0], 0, w), np.clip(hi[:, 0], 0, w)
        y0, y1 = np.clip(lo[:, 1], 0, h), np.clip(hi[:, 1], 0, h)
        inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        area = np.maximum((x1 - x0) * (y1 - y0), 1)
        return (inside / area).astype(np.float32)


def detect_tissue(slide: Slide, params: TissueParams | None = None) -> tuple[TissueMask, np.ndarray]:
    """Find tissue on an overview read at ``params.mask_mpp``.

    Returns:
        The mask and the RGB overview it was computed from (for drawing).

    Raises:
        MissingMPPError: the slide's mpp is unknown.
        NoTissueError: nothing that looks like tissue was found.

    Example:
        >>> mask, overview = detect_tissue(open_slide("case.svs"))  # doctest: +SKIP
        >>> round(mask.area_mm2, 1)  # doctest: +SKIP
        41.3
    """
    params = params or TissueParams.default()
    mask_mpp = max(params.mask_mpp, slide.mpp)
    overview = slide.read_overview(mask_mpp)
    mask, threshold = tissue_from_rgb(overview, mask_mpp, params)
    if not mask.any():
        msg = where(
            slide.path, "no tissue found", "check the slide, or lower tissue.min_od / min_object_mm2 with --config"
        )
        raise NoTissueError(msg)
    return TissueMask(mask, mask_mpp, mask_mpp / slide.mpp, threshold), overview


def tissue_from_rgb(rgb: np.ndarray, mpp: float, params: TissueParams) -> tuple[np.ndarray, float]:
    """Tissue mask of an RGB image at ``mpp`` µm/px, and the OD threshold used."""
    od = optical_density(rgb)
    od8: np.ndarray = np.clip(od * 255.0 / 3.0, 0, 255).astype(np.uint8)  # OD 0..3 → 0..255
    if params.median_px > 1:
        od8 = cv2.medianBlur(od8, params.median_px | 1)
    otsu, _ = cv2.threshold(od8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = float(np.clip(otsu * 3.0 / 255.0, params.min_od, params.max_od))
    mask = od8 > threshold * 255.0 / 3.0
    radius = round(params.close_um / mpp)
    if radius > 0:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        padded = np.pad(mask.astype(np.uint8), radius)  # glass beyond the edge, so closing stops there
        mask = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, disk)[radius:-radius, radius:-radius].astype(bool)
    px_per_mm2 = (1000.0 / mpp) ** 2
    mask = _fill_holes(mask, params.max_hole_mm2 * px_per_mm2)
    return _drop_small(mask, params.min_object_mm2 * px_per_mm2), threshold


def optical_density(rgb: np.ndarray) -> np.ndarray:
    """Summed RGB optical density against the image's own background.

    The background is the median colour of the brightest 10% of pixels: glass on most slides,
    fat or lumina on slides without glass; robust to sensor noise, unlike a maximum.
    """
    pixels = rgb.reshape(-1, 3)
    sample = pixels[:: max(1, len(pixels) // 200_000)].astype(np.float32)
    brightness = sample.sum(axis=1)
    brightest = sample[brightness >= np.percentile(brightness, 90)]
    background = np.clip(np.median(brightest, axis=0), 160.0, 255.0)
    ratio = np.clip(rgb.astype(np.float32) + 1.0, 1.0, None) / (background + 1.0)
    od: np.ndarray = np.clip(-np.log10(ratio), 0.0, None).sum(axis=2)
    return od


def _fill_holes(mask: np.ndarray, max_area_px: float) -> np.ndarray:
    """Fill background components enclosed by tissue and smaller than ``max_area_px``."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    h, w = mask.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    touches_edge = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
    fill = (~touches_edge) & (area < max_area_px)
    fill[0] = False
    return mask | fill[labels] if n > 1 else mask


def _drop_small(mask: np.ndarray, min_area_px: float) -> np.ndarray:
    """Remove tissue components smaller than ``min_area_px``."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area_px
    keep[0] = False
    return keep[labels] if n > 1 else mask
