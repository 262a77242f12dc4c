"""Flat-memory writer of tiled, JPEG-compressed pyramidal TIFFs readable by openslide (generic-tiff).

Level 0 is rendered strip by strip (one tile row at a time, in column chunks) straight into
the TIFF writer; every reduced level is accumulated in a temporary raw file on disk, accessed
through short-lived ``np.memmap`` windows, and written from there. Peak memory is a few tile
rows, independent of the slide size.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import tifffile
from numpy.typing import NDArray

log = logging.getLogger(__name__)

RenderFn = Callable[[int, int, int, int], NDArray[np.uint8]]
Strip = NDArray[np.uint8]
_CHUNK_PX = 2048


def level_dims(width: int, height: int, level_factor: int, min_level_px: int) -> list[tuple[int, int]]:
    """(width, height) per level: downsample 1, f, f², ... until a level is smaller than ``min_level_px``."""
    dims = [(width, height)]
    while max(dims[-1]) >= min_level_px and min(dims[-1]) > 1:
        w, h = dims[-1]
        dims.append((-(-w // level_factor), -(-h // level_factor)))
    return dims


class _Scratch:
    """A raw (h, w, 3) uint8 image on disk, read and written through short-lived memmaps."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        self.path, self.width, self.height = path, width, height
        with open(path, "wb") as f:
            f.truncate(width * height * 3)

    def _map(self, y0: int, y1: int, mode: Literal["r", "r+"]) -> np.memmap[Any, np.dtype[np.uint8]]:
        offset = y0 * self.width * 3
        return np.memmap(self.path, dtype=np.uint8, mode=mode, offset=offset, shape=(y1 - y0, self.width, 3))

    def write_rows(self, y0: int, rows: Strip) -> None:
        mm = self._map(y0, y0 + rows.shape[0], "r+")
        mm[:] = rows
        mm.flush()
        del mm

    def strips(self, rows: int) -> Iterator[Strip]:
        for y0 in range(0, self.height, rows):
            mm = self._map(y0, min(y0 + rows, self.height), "r")
            strip = np.array(mm)
            del mm
            yield strip


def _rendered_strips(render: RenderFn, width: int, height: int, rows: int) -> Iterator[Strip]:
    for y0 in range(0, height, rows):
        sh = min(rows, height - y0)
        strip = np.empty((sh, width, 3), np.uint8)
        for x0 in range(0, width, _CHUNK_PX):
            sw = min(_CHUNK_PX, width - x0)
            part = render(x0, y0, sw, sh)
            if part.shape != (sh, sw, 3) or part.dtype != np.uint8:
                msg = f"render({x0}, {y0}, {sw}, {sh}) returned {part.dtype} {part.shape}, expected uint8 {(sh, sw, 3)}"
                raise ValueError(msg)
            strip[:, x0 : x0 + sw] = part
        yield strip


def _downsample(strip: Strip, factor: int) -> Strip:
    """Exact ``factor``x area average; edges are padded by replication to a multiple of ``factor``."""
    h, w = strip.shape[:2]
    ph, pw = -h % factor, -w % factor
    if ph or pw:
        strip = np.asarray(cv2.copyMakeBorder(strip, 0, ph, 0, pw, cv2.BORDER_REPLICATE), np.uint8)
    size = ((w + pw) // factor, (h + ph) // factor)
    return np.asarray(cv2.resize(strip, size, interpolation=cv2.INTER_AREA), np.uint8)


def _tiles(strips: Iterator[Strip], tile: int, sink: _Scratch | None, factor: int) -> Iterator[Strip]:
    y = 0
    for strip in strips:
        if sink is not None:
            sink.write_rows(y // factor, _downsample(strip, factor))
        for x0 in range(0, strip.shape[1], tile):
            yield strip[:, x0 : x0 + tile]
        y += strip.shape[0]


def write_pyramid(
    path: str | os.PathLike[str],
    render: RenderFn,
    width: int,
    height: int,
    mpp: float,
    *,
    tile_px: int = 256,
    level_factor: int = 4,
    min_level_px: int = 512,
    quality: int = 90,
    description: str = "",
) -> None:
    """Write a tiled JPEG pyramidal TIFF whose level-0 pixels come from ``render``.

    Args:
        path: Output file; written to a temporary sibling and renamed atomically.
        render: ``render(x0, y0, w, h)`` -> (h, w, 3) uint8 level-0 pixels.
        width: Level-0 width (px).
        height: Level-0 height (px).
        mpp: Level-0 µm per pixel, stored in the resolution tags (openslide ``mpp-x``/``mpp-y``).
        tile_px: Tile size, a multiple of 16 and of ``level_factor``.
        level_factor: Downsample between consecutive levels.
        min_level_px: Levels are added until one is smaller than this (longest side).
        quality: JPEG quality 1-100.
        description: ImageDescription of level 0.
    """
    _check_args(width, height, mpp, tile_px, level_factor, quality)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    dims = level_dims(width, height, level_factor, min_level_px)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    scratch_paths = [tmp.with_name(f"{tmp.name}.L{k}.raw") for k in range(1, len(dims))]
    log.debug("writing %s: %dx%d px, %d levels", out, width, height, len(dims))
    try:
        big = width * height * 3 > 2**31
        with tifffile.TiffWriter(tmp, bigtiff=big) as tif:
            strips: Iterator[Strip] = _rendered_strips(render, width, height, tile_px)
            for k, (w, h) in enumerate(dims):
                sink = _Scratch(scratch_paths[k], *dims[k + 1]) if k + 1 < len(dims) else None
                tif.write(
                    _tiles(strips, tile_px, sink, level_factor),
                    shape=(h, w, 3),
                    dtype=np.uint8,
                    tile=(tile_px, tile_px),
                    photometric="rgb",
                    compression="jpeg",
                    compressionargs={"level": quality},
                    resolution=(1e4 / mpp, 1e4 / mpp),
                    resolutionunit="CENTIMETER",
                    subfiletype=0 if k == 0 else 1,
                    description=description if (k == 0 and description) else None,
                    metadata=None,
                )
                if sink is not None:
                    strips = sink.strips(tile_px)
        os.replace(tmp, out)
    finally:
        for p in [tmp, *scratch_paths]:
            p.unlink(missing_ok=True)


def _check_args(width: int, height: int, mpp: float, tile_px: int, level_factor: int, quality: int) -> None:
    if width < 1 or height < 1:
        msg = f"slide size must be positive, got {width}x{height}"
        raise ValueError(msg)
    if not mpp > 0:
        msg = f"mpp must be > 0, got {mpp}"
        raise ValueError(msg)
    if level_factor < 2 or tile_px < 16 or tile_px % 16 or tile_px % level_factor:
        msg = f"tile_px ({tile_px}) must be a multiple of 16 and of level_factor ({level_factor} >= 2)"
        raise ValueError(msg)
    if not 1 <= quality <= 100:
        msg = f"JPEG quality must be in 1..100, got {quality}"
        raise ValueError(msg)
