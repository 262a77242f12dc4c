"""Fast tile reads: decode each region of the slide once and cut many tiles from it.

Reading every tile with its own ``read_region`` decodes each JPEG tile of the file up to four
times (tiles straddle file-tile borders) and pays per-call overhead. ``TileReader`` groups
neighbouring tiles into blocks, reads each block's bounding box in one call and slices it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from liposcope.wsi.grid import TileGrid
from liposcope.wsi.slide import Slide, resize


class TileReader:
    """Reads a grid's tiles from a slide at the grid's target mpp.

    Args:
        slide: the open slide.
        grid: tiles to read.
        block_tiles: tiles per block side; a block's region is read in one call.
        level: pyramid level to read from (default: the coarsest not coarser than the target).

    Example:
        >>> reader = TileReader(slide, grid)  # doctest: +SKIP
        >>> for indices, tiles in reader:  # tiles: n × tile_px × tile_px × 3 uint8
        ...     ...
    """

    def __init__(self, slide: Slide, grid: TileGrid, *, block_tiles: int = 4, level: int | None = None) -> None:
        self.slide, self.grid = slide, grid
        self.level = slide.best_level_for_mpp(grid.spec.target_mpp) if level is None else level
        self.downsample = slide.level_downsamples[self.level]
        self.blocks = group_blocks(grid, block_tiles)

    def __len__(self) -> int:
        return len(self.grid)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(indices, tiles)`` block by block; every tile once, blocks in row-major order."""
        for indices in self.blocks:
            yield indices, self.read_block(indices)

    def read_tile(self, index: int) -> np.ndarray:
        """One tile (tile_px × tile_px × 3 uint8)."""
        tile: np.ndarray = self.read_block(np.array([index]))[0]
        return tile

    def read_block(self, indices: np.ndarray) -> np.ndarray:
        """Tiles ``indices`` (n × tile_px × tile_px × 3 uint8), read as one region."""
        coords = self.grid.coords_level0[indices]
        x0, y0 = coords.min(axis=0)
        x1, y1 = coords.max(axis=0) + self.grid.tile_size_level0
        ds = self.downsample
        region = self.slide.read_region(
            (int(x0), int(y0)), self.level, (max(1, round((x1 - x0) / ds)), max(1, round((y1 - y0) / ds)))
        )
        side = max(1, round(self.grid.tile_size_level0 / ds))
        tile_px = self.grid.spec.tile_px
        out = np.empty((len(indices), tile_px, tile_px, 3), np.uint8)
        for k, (x, y) in enumerate(coords):
            ox, oy = round((x - x0) / ds), round((y - y0) / ds)
            crop = region[oy : oy + side, ox : ox + side]
            if crop.shape[:2] != (side, side):  # rounding at the block's far edge
                crop = np.pad(crop, ((0, side - crop.shape[0]), (0, side - crop.shape[1]), (0, 0)), mode="edge")
            out[k] = resize(crop, (tile_px, tile_px))
        return out


def group_blocks(grid: TileGrid, block_tiles: int) -> list[np.ndarray]:
    """Split tile indices into spatial blocks of up to ``block_tiles`` × ``block_tiles`` grid steps."""
    if len(grid) == 0:
        return []
    step0 = grid.spec.step_level0(grid.slide_mpp)
    cells = grid.coords_level0 // (step0 * max(1, block_tiles))
    order = np.lexsort((grid.coords_level0[:, 0], grid.coords_level0[:, 1], cells[:, 0], cells[:, 1]))
    keys = cells[order]
    breaks = np.flatnonzero(np.any(np.diff(keys, axis=0) != 0, axis=1)) + 1
    return np.split(order, breaks)
