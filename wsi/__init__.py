"""Slides in, tiles out: slide access, tissue detection, tile grids and tile datasets.

``import wsi`` does not import torch; ``TileDataset`` and ``TileBlockDataset`` load it on first use.
"""

from __future__ import annotations

from typing import Any

from wsi.grid import TileGrid, TileSpec, build_grid
from wsi.reader import TileReader
from wsi.slide import MPP, Slide, open_slide, slide_id_from_path
from wsi.tiling import tile_slide, tiling_config
from wsi.tissue import TissueMask, TissueParams, detect_tissue

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


def __getattr__(name: str) -> Any:
    if name in ("TileDataset", "TileBlockDataset"):
        from wsi import dataset

        return getattr(dataset, name)
    msg = f"module 'wsi' has no attribute {name!r}"
    raise AttributeError(msg)
