"""Atomic writes, JSON, hashes and provenance shared by every output."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import platform
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
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
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n", encoding="utf-8")


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


def finished_with(result_json: str | Path, slide_path: str | Path, parameters: Any) -> bool:
    """Whether ``result_json`` (written last by a command) exists for this slide and these parameters,
    so that a rerun can skip the slide."""
    try:
        saved = json.loads(Path(result_json).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    same_slide = saved.get("provenance", {}).get("slide", {}).get("slide_path") == str(Path(slide_path).resolve())
    return bool(same_slide and saved.get("parameters") == json.loads(json.dumps(parameters)))
