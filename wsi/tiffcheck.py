"""Is a TIFF (SVS, generic tiled TIFF, ...) cut short? Checked before openslide or PIL see the file.

A copy that stopped early keeps a valid header, so openslide may call the file "unsupported", PIL may
open the first page as a flat image, or the last tiles read as garbage. Walking the directory chain and
the tile table against the file's size names the problem instead.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile

#: Byte order, then the magic number of classic TIFF (42) or BigTIFF (43).
_MAGIC = {b"II*\x00": ("<", False), b"MM\x00*": (">", False), b"II+\x00": ("<", True), b"MM\x00+": (">", True)}
#: More directories than any slide has: a loop in a corrupt chain stops here.
_MAX_PAGES = 10_000


def truncation(path: str | Path) -> str | None:
    """Why the TIFF at ``path`` is truncated, or ``None`` if it is complete or not a TIFF.

    Example:
        >>> truncation("cut.svs")  # doctest: +SKIP
        'file is truncated: 1919565 bytes, but its TIFF directory 4 starts at byte 1938212'
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(16)
        if head[:4] not in _MAGIC:
            return None
        order, big = _MAGIC[head[:4]]
        problem = _directory_chain(fh, size, order, big, head)
    return problem or _data_end(path, size)


def _directory_chain(fh: BinaryIO, size: int, order: str, big: bool, head: bytes) -> str | None:
    """The first directory that lies (partly) beyond the end of the file, as a problem, else ``None``."""
    read, seek = fh.read, fh.seek
    count_fmt, entry_len, offset_fmt = ("Q", 20, "Q") if big else ("H", 12, "I")
    if len(head) < (16 if big else 8):
        return f"file is truncated: {size} bytes, shorter than a TIFF header"
    offset = struct.unpack(order + offset_fmt, head[8:16] if big else head[4:8])[0]
    for page in range(_MAX_PAGES):
        if offset == 0:
            return None
        count_len = struct.calcsize(count_fmt)
        if offset + count_len > size:
            return f"file is truncated: {size} bytes, but its TIFF directory {page} starts at byte {offset}"
        seek(offset)
        (entries,) = struct.unpack(order + count_fmt, read(count_len))
        next_at = offset + count_len + entries * entry_len
        offset_len = struct.calcsize(offset_fmt)
        if next_at + offset_len > size:
            return f"file is truncated: {size} bytes, but its TIFF directory {page} ends at byte {next_at + offset_len}"
        seek(next_at)
        (offset,) = struct.unpack(order + offset_fmt, read(offset_len))
    return None


def _data_end(path: Path, size: int) -> str | None:
    """The problem if some tile or strip extends past the end of the file, else ``None``."""
    quiet = logging.getLogger("tifffile")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        with tifffile.TiffFile(path) as tif:
            ends = [np.add(page.dataoffsets, page.databytecounts, dtype=np.int64).max(initial=0) for page in tif.pages]
            end = int(max(ends, default=0))
    except (tifffile.TiffFileError, OSError, ValueError, struct.error, IndexError, KeyError):
        return None  # not truncated in a way this can tell; openslide and PIL judge the rest
    finally:
        quiet.setLevel(level)
    if end > size:
        return f"file is truncated: {size} bytes, but its image data runs to byte {end}"
    return None
