"""The block read path gives the same tiles as single reads, also through DataLoader workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from liposcope.wsi import Slide, TileBlockDataset, TileDataset, TileReader, TileSpec, build_grid, detect_tissue


@pytest.fixture(scope="module")
def grid_and_path(he_slides: dict[str, Path]):  # type: ignore[no-untyped-def]
    path = he_slides["DDLPS"]
    with Slide(path) as slide:
        return build_grid(slide, detect_tissue(slide)[0], TileSpec(0.5, 96, 16, 0.5)), path


def test_blocks_cover_every_tile_once(grid_and_path) -> None:  # type: ignore[no-untyped-def]
    grid, path = grid_and_path
    with Slide(path) as slide:
        reader = TileReader(slide, grid, block_tiles=3)
        seen = np.concatenate([indices for indices, _ in reader])
    assert sorted(seen.tolist()) == list(range(len(grid)))


def test_block_reads_equal_single_reads(grid_and_path) -> None:  # type: ignore[no-untyped-def]
    grid, path = grid_and_path
    with Slide(path) as slide:
        reader = TileReader(slide, grid, block_tiles=4)
        indices, tiles = max(reader, key=lambda block: len(block[0]))
        assert len(indices) > 1
        for k, index in enumerate(indices):
            single = slide.read_region_at_mpp(tuple(grid.coords_level0[index]), (96, 96), 0.5)
            np.testing.assert_array_equal(tiles[k], single)


def test_dataset_with_workers_matches_direct_reads(grid_and_path) -> None:  # type: ignore[no-untyped-def]
    grid, path = grid_and_path
    with Slide(path) as slide:
        reader = TileReader(slide, grid)
        expected = {int(i): t for idx, tiles in reader for i, t in zip(idx, tiles, strict=True)}
    loader = DataLoader(TileDataset(str(path), grid), batch_size=8, num_workers=2)
    count = 0
    for tiles, xy in loader:
        assert tiles.dtype == torch.uint8
        assert tiles.shape[1:] == (3, 96, 96)
        for tile, (x, y) in zip(tiles, xy.tolist(), strict=True):
            index = int(np.flatnonzero((grid.coords_level0 == (x, y)).all(axis=1))[0])
            np.testing.assert_array_equal(tile.permute(1, 2, 0).numpy(), expected[index])
            count += 1
    assert count == len(grid)
    blocks = DataLoader(TileBlockDataset(str(path), grid), batch_size=None, num_workers=2)
    got = {int(i): t.permute(1, 2, 0).numpy() for idx, ts in blocks for i, t in zip(idx, ts, strict=True)}
    assert got.keys() == expected.keys()
    assert all(np.array_equal(got[i], expected[i]) for i in expected)
