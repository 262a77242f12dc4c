"""Direct JPEG decoding of tiled TIFF pyramids (generic tiled TIFF, Aperio SVS), bypassing openslide.

openslide decodes JPEG tiles several times slower than libjpeg-turbo through imagecodecs. Where an
openslide level is one TIFF page of JPEG tiles, ``JpegTiff`` reads the tile bytes itself and decodes
them with tifffile's page decoder (which handles JPEG tables and the RGB/YCbCr quirks). Opening
checks one tile per level against openslide, so a format quirk falls back to openslide instead of
silently changing pixels.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openslide
import tifffile

from liposcope.errors import SlideError, where

#: openslide vendors whose levels are plain TIFF pages (no tile overlaps, offsets or sparse canvases).
VENDORS = frozenset({"aperio", "generic-tiff"})
#: Largest mean absolute difference (0-255) from openslide's pixels accepted when opening.
MAX_MEAN_ABS_DIFF = 3.0
_JPEG, _RGB, _YCBCR = 7, 2, 6


@dataclass(frozen=True)
class _Level:
    """One TIFF page serving one openslide level."""

    width: int
    height: int
    tile_w: int
    tile_h: int
    across: int
    offsets: np.ndarray
    counts: np.ndarray
    decode: Callable[..., Any]
    jpegtables: bytes | None


class JpegTiff:
    """Tile-level JPEG reader for the pyramid levels of a tiled TIFF that it can serve.

    Use :meth:`open`; it returns ``None`` for files this fast path does not handle.

    Example:
        >>> fast = JpegTiff.open("case.svs", openslide.OpenSlide("case.svs"))  # doctest: +SKIP
        >>> fast.read_region(0, 1000, 2000, 448, 448).shape  # doctest: +SKIP
        (448, 448, 3)
    """

    def __init__(self, path: str | Path, levels: dict[int, _Level]) -> None:
        self.path = Path(path)
        self._levels = levels
        self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close() or on garbage collection)

    @classmethod
    def open(cls, path: str | Path, osr: openslide.AbstractSlide) -> JpegTiff | None:
        """The fast reader for ``path``, or ``None`` when it cannot serve any level exactly.

        Args:
            path: the slide file.
            osr: the same file opened by openslide; gives the levels and the reference pixels.
        """
        if osr.properties.get(openslide.PROPERTY_NAME_VENDOR) not in VENDORS:
            return None
        try:
            with tifffile.TiffFile(path) as tif:
                pages = [p for p in tif.pages if isinstance(p, tifffile.TiffPage)]
                levels = _match_levels(pages, [(int(w), int(h)) for w, h in osr.level_dimensions])
        except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError):
            return None
        if not levels:
            return None
        fast = cls(path, levels)
        if not all(fast._agrees(osr, level) for level in levels):
            fast.close()
            return None
        return fast

    def serves(self, level: int) -> bool:
        """True if ``level`` is decoded here (else read it with openslide)."""
        return level in self._levels

    def read_region(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        """RGB uint8 (h × w × 3) of level pixels from (``x``, ``y``); pixels outside the image are white.

        Raises:
            SlideError: a tile cannot be read or decoded (corrupt or truncated file).
        """
        lv = self._levels[level]
        out = np.full((h, w, 3), 255, np.uint8)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, lv.width), min(y + h, lv.height)
        for ty in range(y0 // lv.tile_h, (y1 - 1) // lv.tile_h + 1 if y1 > y0 else 0):
            for tx in range(x0 // lv.tile_w, (x1 - 1) // lv.tile_w + 1 if x1 > x0 else 0):
                tile = self._tile(lv, ty * lv.across + tx)
                if tile is None:
                    continue
                left, top = tx * lv.tile_w, ty * lv.tile_h
                ax0, ay0 = max(x0, left), max(y0, top)
                ax1, ay1 = min(x1, left + tile.shape[1]), min(y1, top + tile.shape[0])
                if ax1 > ax0 and ay1 > ay0:
                    out[ay0 - y : ay1 - y, ax0 - x : ax1 - x] = tile[ay0 - top : ay1 - top, ax0 - left : ax1 - left]
        return out

    def _tile(self, lv: _Level, index: int) -> np.ndarray | None:
        """Decoded tile ``index`` (h × w × 3), or ``None`` for a tile missing from the file."""
        count = int(lv.counts[index])
        if count == 0:
            return None
        try:
            data = os.pread(self._file.fileno(), count, int(lv.offsets[index]))
            if len(data) != count:
                msg = f"tile {index}: {len(data)} of {count} bytes"
                raise ValueError(msg)
            tile, _, _ = lv.decode(data, index, jpegtables=lv.jpegtables)
        except (OSError, ValueError, RuntimeError) as exc:  # imagecodecs' JPEG errors are RuntimeErrors
            msg = where(self.path, f"pixel data cannot be read ({exc})", "the file is corrupt or truncated; re-copy it")
            raise SlideError(msg) from exc
        return np.asarray(tile).reshape(tile.shape[-3:])

    def _agrees(self, osr: openslide.AbstractSlide, level: int) -> bool:
        """True if one tile of ``level`` decodes to openslide's pixels (mean difference ≤ the limit)."""
        lv = self._levels[level]
        present = np.flatnonzero(lv.counts)
        if len(present) == 0:
            return True
        ty, tx = divmod(int(present[len(present) // 2]), lv.across)
        x, y = tx * lv.tile_w, ty * lv.tile_h
        w, h = min(lv.tile_w, lv.width - x), min(lv.tile_h, lv.height - y)
        ds = float(osr.level_downsamples[level])
        try:
            rgba = np.asarray(osr.read_region((round(x * ds), round(y * ds)), level, (w, h)))
            ours = self.read_region(level, x, y, w, h)
        except (openslide.OpenSlideError, SlideError):
            return False
        ref = np.where(rgba[..., 3:] == 0, 255, rgba[..., :3])
        return float(np.abs(ref.astype(np.int16) - ours).mean()) <= MAX_MEAN_ABS_DIFF

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _match_levels(pages: list[tifffile.TiffPage], dims: list[tuple[int, int]]) -> dict[int, _Level]:
    """openslide level → the first tiled, 8-bit RGB/YCbCr JPEG page of the same size."""
    levels: dict[int, _Level] = {}
    for level, (width, height) in enumerate(dims):
        for page in pages:
            usable = (
                page.is_tiled
                and page.compression == _JPEG
                and page.photometric in (_RGB, _YCBCR)
                and page.bitspersample == 8
                and page.samplesperpixel == 3
                and page.planarconfig == 1
                and not page.extrasamples
                and page.imagedepth == 1
            )
            if usable and (page.imagewidth, page.imagelength) == (width, height):
                levels[level] = _Level(
                    width=width,
                    height=height,
                    tile_w=int(page.tilewidth),
                    tile_h=int(page.tilelength),
                    across=-(-width // int(page.tilewidth)),
                    offsets=np.asarray(page.dataoffsets, np.int64),
                    counts=np.asarray(page.databytecounts, np.int64),
                    decode=page.decode,
                    jpegtables=page.jpegtables,
                )
                break
    return levels
