"""Atomic writes, JSON, hashes and provenance shared by every output."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import platform
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np

from liposcope import __version__


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` only if the block succeeds.

    Works for files and directories. On error the temporary is removed, so a reader never
    sees a half-written output and a rerun starts clean.

    Example:
        >>> with atomic_path(tmp / "a.txt") as t:  # doctest: +SKIP
        ...     t.write_text("done")
    """
    final = Path(path)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if final.is_dir() and tmp.is_dir():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as exc:  # name the output the user asked for, not its temporary
        if exc.filename is not None and Path(os.fsdecode(exc.filename)).name == tmp.name:
            exc.filename = str(final)
        raise
    finally:
        _remove(tmp)


@contextlib.contextmanager
def h5_output(path: str | Path) -> Iterator[h5py.File]:
    """An HDF5 file built in memory, written to ``path`` atomically when the block succeeds.

    HDF5's own writes can crash the process on a full disk; plain writes of the finished bytes fail
    with an ordinary ``OSError`` instead, and nothing that looks complete is left behind.
    """
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        yield h5
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


#: ``.NAME.tmp-PID``: the temporaries of :func:`atomic_path`.
_TEMP = re.compile(r"^\..+\.tmp-(\d+)$")


def clean_stale_temps(folder: str | Path) -> list[Path]:
    """Remove the temporaries that killed runs left in ``folder`` and its subfolders (their process is gone).

    Returns:
        What was removed.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    removed = []
    for candidate in [*root.iterdir(), *(p for d in root.iterdir() if d.is_dir() for p in _entries(d))]:
        match = _TEMP.match(candidate.name)
        if match and not _running(int(match.group(1))):
            _remove(candidate)
            removed.append(candidate)
    return removed


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented, strictly valid JSON (NaN and infinities become ``null``), atomically."""
    text = json.dumps(_finite(data), indent=2, default=_jsonable, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB (or grey) uint8 image."""
    image = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        msg = f"PNG encoding failed for an image of shape {rgb.shape}"
        raise OSError(msg)
    return data.tobytes()


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB (or grey) uint8 image as PNG, atomically."""
    data = encode_png(rgb)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (also inside numpy arrays) replaced by ``None``."""
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "f":
        return _finite(obj.tolist())
    return obj


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    msg = f"cannot serialise {type(obj).__name__} to JSON"
    raise TypeError(msg)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def provenance(**inputs: Any) -> dict[str, Any]:
    """What produced an output: liposcope version, time, command line and the given inputs.

    Example:
        >>> provenance(slide="a.svs")["liposcope_version"]  # doctest: +SKIP
        '0.1.0'
    """
    return {
        "liposcope_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "python": platform.python_version(),
        **inputs,
    }


@contextlib.contextmanager
def output_dir(path: str | Path) -> Iterator[Path]:
    """Create a per-slide output folder; remove it again if it was new and the block failed empty."""
    folder = Path(path)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise
