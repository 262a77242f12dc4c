"""Torch datasets over a tile grid (the only torch import in ``wsi``).

Each DataLoader worker opens its own slide handle on first use: openslide handles are not
shared across processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from liposcope.errors import LiposcopeError
from liposcope.wsi.grid import TileGrid
from liposcope.wsi.reader import TileReader, group_blocks
from liposcope.wsi.slide import Slide

Transform = Callable[[torch.Tensor], torch.Tensor]
T = TypeVar("T")


def worker_errors(batches: Iterable[T]) -> Iterator[T]:
    """Iterate a DataLoader so that a ``LiposcopeError`` raised in a worker process comes out with its own
    one-line message, as in the main process (torch re-raises it with the worker's traceback as the text).

    Example:
        >>> for batch in worker_errors(DataLoader(ds, num_workers=2)):  # doctest: +SKIP
        ...     ...
    """
    try:
        yield from batches
    except LiposcopeError as exc:
        text = str(exc)
        if not (text.startswith("Caught ") and "Original Traceback" in text):
            raise
        prefix = f"{type(exc).__module__}.{type(exc).__qualname__}: "
        original = next((line for line in reversed(text.splitlines()) if line.startswith(prefix)), prefix + text)
        raise type(exc)(original.removeprefix(prefix)) from None


class _PerProcessReader:
    """Opens the slide lazily, once per process."""

    def __init__(self, slide_path: str, grid: TileGrid, block_tiles: int) -> None:
        self.slide_path, self.grid, self.block_tiles = slide_path, grid, block_tiles
        self._pid = -1
        self._reader: TileReader | None = None

    def reader(self) -> TileReader:
        if self._reader is None or self._pid != os.getpid():
            slide = Slide(self.slide_path, mpp=self.grid.slide_mpp)
            self._reader, self._pid = TileReader(slide, self.grid, block_tiles=self.block_tiles), os.getpid()
        return self._reader

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_reader": None, "_pid": -1}


def _to_chw(tiles: np.ndarray) -> torch.Tensor:
    """n × h × w × 3 uint8 array → n × 3 × h × w uint8 tensor."""
    return torch.from_numpy(np.ascontiguousarray(tiles)).permute(0, 3, 1, 2)


class TileDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Tiles by index: ``(tile, xy_level0)`` with ``tile`` a 3 × H × W uint8 tensor (or ``transform``'s output).

    Example:
        >>> ds = TileDataset("case.svs", TileGrid.load("out/case/tiles.h5"))  # doctest: +SKIP
        >>> loader = DataLoader(ds, batch_size=64, num_workers=4)  # doctest: +SKIP
    """

    def __init__(self, slide_path: str, grid: TileGrid, *, transform: Transform | None = None) -> None:
        self._access = _PerProcessReader(slide_path, grid, block_tiles=1)
        self.grid, self.transform = grid, transform

    def __len__(self) -> int:
        return len(self.grid)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        tile = _to_chw(self._access.reader().read_tile(index)[None])[0]
        xy = torch.from_numpy(self.grid.coords_level0[index])
        return (self.transform(tile) if self.transform else tile), xy


class TileBlockDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Blocks of neighbouring tiles, each read in one call: ``(indices, tiles n × 3 × H × W uint8)``.

    The fast path for feature extraction: use ``DataLoader(ds, batch_size=None, num_workers=k)``.
    """

    def __init__(self, slide_path: str, grid: TileGrid, *, block_tiles: int = 4) -> None:
        self._access = _PerProcessReader(slide_path, grid, block_tiles)
        self.blocks = group_blocks(grid, block_tiles)

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        indices = self.blocks[index]
        tiles = self._access.reader().read_block(indices)
        return torch.from_numpy(indices), _to_chw(tiles)
