"""Stream a slide region as analysis tiles with a margin, so that objects on tile borders are seen whole.

Each :class:`CoreTile` is read at the analysis mpp with ``margin`` extra pixels each side; an object
belongs to the tile whose core holds its centre, so every object is counted exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from liposcope.errors import ConfigError, where
from liposcope.progress import progress
from liposcope.wsi.slide import Slide
from liposcope.wsi.tissue import TissueMask

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class CoreTile:
    """Pixels ``rgb`` at ``mpp`` whose pixel (0, 0) is level-0 ``origin``; the core starts at ``margin``."""

    rgb: np.ndarray
    origin: tuple[int, int]
    scale: float
    margin: int
    core: int
    mpp: float

    def in_core(self, xy: np.ndarray) -> np.ndarray:
        """Which tile-pixel points (N × 2) lie in the core."""
        out: np.ndarray = np.all((xy >= self.margin) & (xy < self.margin + self.core), axis=1)
        return out

    def beyond(self, width: int, height: int) -> np.ndarray:
        """Tile pixels (h × w bool) whose centres lie outside a ``width`` × ``height`` level-0 slide."""
        rows, cols = self.rgb.shape[:2]
        xs = self.origin[0] + (np.arange(cols) + 0.5) * self.scale
        ys = self.origin[1] + (np.arange(rows) + 0.5) * self.scale
        out: np.ndarray = ((ys < 0) | (ys >= height))[:, None] | ((xs < 0) | (xs >= width))[None, :]
        return out

    def to_level0(self, xy: np.ndarray) -> np.ndarray:
        """Tile pixels → level-0 pixels."""
        out: np.ndarray = np.asarray(self.origin, np.float64) + np.asarray(xy, np.float64) * self.scale
        return out


def core_tiles(
    slide: Slide, mask: TissueMask, box: Box, mpp: float, core_px: int, margin_px: int, *, desc: str = ""
) -> Iterator[CoreTile]:
    """Tiles of ``core_px`` (+ ``margin_px`` each side) at ``mpp`` covering the tissue in level-0 ``box``."""
    scale = mpp / slide.mpp
    step = core_px * scale
    x0, y0, w, h = box
    corners = np.array([(x, y) for y in np.arange(y0, y0 + h, step) for x in np.arange(x0, x0 + w, step)], np.float64)
    corners = corners[mask.fraction_in_boxes(corners, math.ceil(step)) > 0]
    side = core_px + 2 * margin_px
    for cx, cy in progress(corners, desc=desc, unit="tile"):
        origin = (round(cx - margin_px * scale), round(cy - margin_px * scale))
        rgb = slide.read_region_at_mpp(origin, (side, side), mpp)
        yield CoreTile(rgb, origin, scale, margin_px, core_px, mpp)


def in_box(xy: np.ndarray, box: Box) -> np.ndarray:
    """Which level-0 points (N × 2) lie in ``box`` (x, y, w, h)."""
    x, y, w, h = box
    out: np.ndarray = (xy[:, 0] >= x) & (xy[:, 0] < x + w) & (xy[:, 1] >= y) & (xy[:, 1] < y + h)
    return out


def check_region(slide: Slide, region: Box | None) -> Box:
    """``region`` (level-0 x, y, w, h) checked against the slide; the whole slide when ``None``."""
    width, height = slide.dimensions
    if region is None:
        return (0.0, 0.0, float(width), float(height))
    x, y, w, h = region
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        msg = where(
            slide.path,
            f"--region {x:g},{y:g},{w:g},{h:g} is not inside the slide ({width} × {height} level-0 px)",
            "give x,y,w,h in level-0 pixels within the slide",
        )
        raise ConfigError(msg)
    return (float(x), float(y), float(w), float(h))


def tissue_mm2(mask: TissueMask, box: Box) -> float:
    """Tissue area inside the level-0 ``box``."""
    d = mask.downsample
    x0, y0 = math.floor(box[0] / d), math.floor(box[1] / d)
    x1, y1 = math.ceil((box[0] + box[2]) / d), math.ceil((box[1] + box[3]) / d)
    return float(mask.mask[y0:y1, x0:x1].sum()) * (mask.mpp / 1000.0) ** 2
