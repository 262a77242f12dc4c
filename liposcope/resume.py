"""The resume rule, for every command: when an output is done, and one writer per output at a time.

An output is done when the manifest it records (``"resume"`` in its JSON, or the ``resume`` attribute of its HDF5
file) holds the same slide fingerprint (resolved path, size, mtime and a hash of the first bytes), the same resolved
settings and the same model hash as this run would. Anything else (a replaced slide, an edited model card, another
``--slide-mpp``, other tissue settings) recomputes it. The manifest is written with the output, in the same atomic
rename, so a half-written output is never taken for a finished one.

Example:
    >>> key = resume_key("case.svs", {"marker": "ki67"})  # doctest: +SKIP
    >>> with output_lock(out / "case"):  # doctest: +SKIP
    ...     if not is_done(out / "case" / "ihc.json", key):
    ...         write_outputs(..., resume=key)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from liposcope.errors import printable

log = logging.getLogger(__name__)

RESUME_KEY = "resume"
HEADER_BYTES = 1 << 16  # hashed from the start of the slide file: its header and first directory


def slide_fingerprint(path: str | Path) -> dict[str, Any]:
    """Resolved path, size, mtime and the SHA-256 of the first bytes: a replaced file at the same path differs.

    A file that cannot be read gets no fingerprint (``None`` fields), so nothing counts as done for it and opening
    the slide reports the problem.
    """
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
        with open(resolved, "rb") as fh:
            header = hashlib.sha256(fh.read(HEADER_BYTES)).hexdigest()
    except OSError:
        return {"path": str(resolved), "size": None, "mtime_ns": None, "header_sha256": None}
    return {"path": str(resolved), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "header_sha256": header}


def resume_key(slide: str | Path, settings: Mapping[str, Any], model_sha256: str | None = None) -> dict[str, Any]:
    """What an output must record to count as done for this slide, these resolved settings and this model."""
    key = {"slide": slide_fingerprint(slide), "settings": dict(settings), "model_sha256": model_sha256}
    return json.loads(json.dumps(key, default=str))  # type: ignore[no-any-return]


def recorded_key(output: str | Path) -> dict[str, Any] | None:
    """The manifest an output file records (JSON key or HDF5 attribute), or ``None`` when absent or unreadable."""
    path = Path(output)
    try:
        if path.suffix == ".h5":
            import h5py

            with h5py.File(path, "r") as h5:
                text = h5.attrs.get(RESUME_KEY)
            return json.loads(text) if isinstance(text, str | bytes) else None
        value = json.loads(path.read_text(encoding="utf-8")).get(RESUME_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, dict) else None


def is_done(output: str | Path, key: Mapping[str, Any]) -> bool:
    """Whether ``output`` exists and records exactly ``key``."""
    return recorded_key(output) == dict(key)


@contextlib.contextmanager
def output_lock(target: str | Path) -> Iterator[None]:
    """Hold the lock of one slide's output (``.<name>.lock`` beside ``target``) for the block.

    A second run on the same output waits here until the first one finishes, then finds the output done and skips
    it. The lock is the kernel's (``flock``), so a killed run's lock is released with its process; the file it
    leaves names that process, and the next run takes it over. The file is removed when the block ends.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.parent / f".{target.name}.lock"
    fh = _acquire(lock, target)
    try:
        previous = fh.read().strip()
        if previous:
            log.info("%s: taking over the lock a stopped run left (%s)", printable(target), previous)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
        fh.flush()
        yield
    finally:
        lock.unlink(missing_ok=True)  # while still holding it: a waiter then finds its file gone and retries
        fh.close()


def _acquire(lock: Path, target: Path) -> IO[str]:
    """The open lock file, locked; retried when the file was removed by the run that held it."""
    while True:
        fh = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 (closed by output_lock)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            log.info("%s: another run (%s) is writing it; waiting", printable(target), fh.read().strip() or "?")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            current = os.stat(lock).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if current:
            fh.seek(0)
            return fh
        fh.close()
