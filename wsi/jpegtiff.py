"""Direct JPEG decoding of tiled TIFF pyramids (generic tiled TIFF, Aperio SVS), bypassing openslide.

openslide decodes JPEG tiles several times slower than libjpeg-turbo called directly. Where an
openslide level is one TIFF page of JPEG tiles, ``JpegTiff`` reads the tile bytes itself, joins them
with the page's JPEG tables and decodes them with libjpeg-turbo (simplejpeg) in strict mode: like
openslide, every decoder warning ("Corrupt JPEG data", "Premature end of JPEG file") is a read error
of that tile, never grey or striped pixels. Opening compares several tiles per level with
openslide, so a format quirk falls back to openslide instead of silently changing pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openslide
import simplejpeg
import tifffile

from liposcope.errors import SlideError, where

#: openslide vendors whose levels are plain TIFF pages (no tile overlaps, offsets or sparse canvases).
VENDORS = frozenset({"aperio", "generic-tiff"})
#: Largest mean absolute difference (0-255) from openslide's pixels accepted when opening.
MAX_MEAN_ABS_DIFF = 3.0
#: Tiles per level compared with openslide when opening (spread over the level).
CHECKED_TILES = 4
_JPEG, _RGB, _YCBCR = 7, 2, 6
#: An Adobe APP14 segment with transform 0: tells libjpeg the components are RGB, not YCbCr.
_ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"
_SOI = b"\xff\xd8"


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
    header: bytes
    """What goes before a tile's bytes (after its SOI): the RGB marker and the page's JPEG tables."""


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
                tile = self._tile(level, tx, ty)
                if tile is None:
                    continue
                left, top = tx * lv.tile_w, ty * lv.tile_h
                ax0, ay0 = max(x0, left), max(y0, top)
                ax1, ay1 = min(x1, left + tile.shape[1]), min(y1, top + tile.shape[0])
                if ax1 > ax0 and ay1 > ay0:
                    out[ay0 - y : ay1 - y, ax0 - x : ax1 - x] = tile[ay0 - top : ay1 - top, ax0 - left : ax1 - left]
        return out

    def _tile(self, level: int, tx: int, ty: int) -> np.ndarray | None:
        """Decoded tile (``tx``, ``ty``) of ``level`` (h × w × 3), or ``None`` for a tile missing from the file.

        Raises:
            SlideError: the tile's bytes are cut short or libjpeg reports any error or warning.
        """
        lv = self._levels[level]
        index = ty * lv.across + tx
        count = int(lv.counts[index])
        if count == 0:
            return None
        try:
            data = os.pread(self._file.fileno(), count, int(lv.offsets[index]))
            if len(data) != count:
                msg = f"the file ends {count - len(data)} bytes into the tile: it is truncated"
                raise ValueError(msg)
            if not data.startswith(_SOI):
                msg = "the tile does not start with a JPEG start-of-image marker"
                raise ValueError(msg)
            tile = simplejpeg.decode_jpeg(_SOI + lv.header + data[2:], "rgb", strict=True)
        except (OSError, ValueError, RuntimeError) as exc:
            problem = f"corrupt JPEG data in tile ({tx}, {ty}) of level {level}"
            raise SlideError(where(self.path, problem, f"re-copy or re-export the slide ({exc})")) from exc
        if tile.shape[:2] != (lv.tile_h, lv.tile_w):
            problem = f"corrupt JPEG data in tile ({tx}, {ty}) of level {level}"
            fix = (
                f"re-copy or re-export the slide (tile is {tile.shape[1]}x{tile.shape[0]}, not {lv.tile_w}x{lv.tile_h})"
            )
            raise SlideError(where(self.path, problem, fix))
        out: np.ndarray = tile
        return out

    def _agrees(self, osr: openslide.AbstractSlide, level: int) -> bool:
        """True if up to :data:`CHECKED_TILES` tiles spread over ``level`` (first, last and between) decode to
        openslide's pixels (mean difference ≤ the limit each)."""
        lv = self._levels[level]
        present = np.flatnonzero(lv.counts)
        if len(present) == 0:
            return True
        spread = np.unique(present[np.linspace(0, len(present) - 1, CHECKED_TILES).round().astype(int)])
        return all(self._tile_agrees(osr, level, int(index)) for index in spread)

    def _tile_agrees(self, osr: openslide.AbstractSlide, level: int, index: int) -> bool:
        lv = self._levels[level]
        ty, tx = divmod(index, lv.across)
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
                    header=(_ADOBE_RGB if page.photometric == _RGB else b"") + _tables(page.jpegtables),
                )
                break
    return levels


def _tables(jpegtables: bytes | None) -> bytes:
    """The segments of a TIFF JPEGTables stream (between its SOI and EOI), to put before a tile's own."""
    if not jpegtables:
        return b""
    if not jpegtables.startswith(_SOI):
        msg = "JPEGTables without a start-of-image marker"
        raise ValueError(msg)
    return jpegtables[2:-2] if jpegtables.endswith(b"\xff\xd9") else jpegtables[2:]
