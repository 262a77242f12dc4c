"""Deep Zoom tiles of registered slides from ``openslide.deepzoom``, encoded once and kept in a bounded cache."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path

import openslide
from openslide.deepzoom import DeepZoomGenerator

#: Deep Zoom geometry: 254 px + 1 px overlap each side makes 256-px tiles; level-0 pixels map 1:1 to the image
#: (no bounds cropping), so layer coordinates in level-0 px need no offset.
TILE_SIZE = 254
OVERLAP = 1
LIMIT_BOUNDS = False
#: JPEG at quality 95 without chroma subsampling: a local viewer has bandwidth to spare, so tiles stay close to the
#: slide (mean error ~1 grey level on full tiles, a few on the 2-10 px tiles of the top levels); PNG is exact.
JPEG_QUALITY = 95
FORMATS = {"jpeg": "image/jpeg", "png": "image/png"}


def deep_zoom(slide: openslide.AbstractSlide) -> DeepZoomGenerator:
    """The generator the viewer serves (tests build the same one to compare pixels)."""
    return DeepZoomGenerator(slide, tile_size=TILE_SIZE, overlap=OVERLAP, limit_bounds=LIMIT_BOUNDS)


class TileSource:
    """Deep Zoom descriptors and encoded tiles for a set of slide files, with an LRU cache of ``max_bytes``.

    Example:
        >>> tiles = TileSource({"case": Path("case.svs")})  # doctest: +SKIP
        >>> tiles.tile("case", 12, 0, 0, "jpeg")[:2]  # doctest: +SKIP
        b'\\xff\\xd8'
    """

    def __init__(self, slides: dict[str, Path], max_bytes: int = 64 * 2**20) -> None:
        self._paths = dict(slides)
        self._generators: dict[str, DeepZoomGenerator] = {}
        self._handles: list[openslide.AbstractSlide] = []
        self._cache: OrderedDict[tuple[str, int, int, int, str], bytes] = OrderedDict()
        self._cached_bytes = 0
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._read_locks = {slide_id: threading.Lock() for slide_id in slides}

    def dzi(self, slide_id: str, fmt: str = "jpeg") -> str | None:
        """The ``.dzi`` XML of a registered slide, or ``None``."""
        dz = self._generator(slide_id)
        return None if dz is None else str(dz.get_dzi(fmt))

    def tile(self, slide_id: str, level: int, col: int, row: int, fmt: str) -> bytes | None:
        """The encoded tile, or ``None`` for an unknown slide, format, level or address."""
        dz = self._generator(slide_id)
        if dz is None or fmt not in FORMATS or not 0 <= level < dz.level_count:
            return None
        cols, rows = dz.level_tiles[level]
        if not (0 <= col < cols and 0 <= row < rows):
            return None
        key = (slide_id, level, col, row, fmt)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        with self._read_locks[slide_id]:  # one read at a time per slide handle; slides read in parallel
            image = dz.get_tile(level, (col, row))
        buffer = io.BytesIO()
        if fmt == "jpeg":
            image.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0)
        else:
            image.save(buffer, "PNG", compress_level=1)
        data = buffer.getvalue()
        self._store(key, data)
        return data

    def close(self) -> None:
        """Close every slide handle opened so far."""
        with self._lock:
            for handle in self._handles:
                handle.close()
            self._handles.clear()
            self._generators.clear()
            self._cache.clear()
            self._cached_bytes = 0

    def _store(self, key: tuple[str, int, int, int, str], data: bytes) -> None:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = data
                self._cached_bytes += len(data)
            while self._cached_bytes > self.max_bytes and self._cache:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= len(old)

    def _generator(self, slide_id: str) -> DeepZoomGenerator | None:
        if slide_id not in self._paths:
            return None
        with self._lock:
            if slide_id not in self._generators:
                handle = openslide.open_slide(str(self._paths[slide_id]))
                self._handles.append(handle)
                self._generators[slide_id] = deep_zoom(handle)
            return self._generators[slide_id]
