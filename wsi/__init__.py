"""Slides in, tiles out: slide access, tissue detection, tile grids and tile datasets.

Importing the package loads nothing heavy; each name is imported on first use (``TileDataset`` brings torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from liposcope._lazy import lazy_exports

if TYPE_CHECKING:
    from liposcope.wsi.dataset import TileBlockDataset, TileDataset
    from liposcope.wsi.grid import TileGrid, TileSpec, build_grid
    from liposcope.wsi.reader import TileReader
    from liposcope.wsi.slide import MPP, Slide, open_slide, slide_id_from_path
    from liposcope.wsi.tiling import tile_slide, tiling_config
    from liposcope.wsi.tissue import TissueMask, TissueParams, detect_tissue

__all__ = [
    "MPP",
    "Slide",
    "TileBlockDataset",
    "TileDataset",
    "TileGrid",
    "TileReader",
    "TileSpec",
    "TissueMask",
    "TissueParams",
    "build_grid",
    "detect_tissue",
    "open_slide",
    "slide_id_from_path",
    "tile_slide",
    "tiling_config",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
