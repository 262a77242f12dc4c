"""Exceptions a user can act on.

Every message names the file (or setting), what is wrong and what to do. The CLI prints
``LiposcopeError`` as one line on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import difflib
import errno
import os
from collections.abc import Iterable
from pathlib import Path


class LiposcopeError(Exception):
    """Base class for errors caused by input the user can fix."""


class SlideError(LiposcopeError):
    """A slide is missing, unreadable, corrupt or unsuitable."""


class MissingMPPError(SlideError):
    """The slide's microns per pixel are unknown and the task needs them."""


class NoTissueError(SlideError):
    """Tissue detection found nothing to analyse."""


class ConfigError(LiposcopeError):
    """A configuration file or value is invalid."""


class ModelCardError(LiposcopeError):
    """A model directory or its card is missing or invalid."""


class AnnotationError(LiposcopeError):
    """An annotation or label file is malformed."""


class OutputError(LiposcopeError):
    """An output cannot be written: disk full, no permission, read-only file system, file size limit."""


#: What the user can do about each operating-system error that is not a bug.
_OS_FIXES = {
    errno.ENOSPC: "free disk space or choose another --out",
    errno.EDQUOT: "free space within your disk quota or choose another --out",
    errno.EFBIG: "the file size limit (ulimit -f) was reached; raise it or choose another --out",
    errno.EACCES: "check the permissions of the file and its folder",
    errno.EPERM: "check the permissions of the file and its folder",
    errno.EROFS: "the file system is read-only; choose another --out",
    errno.ENAMETOOLONG: "use a shorter file or folder name",
    errno.EIO: "the disk reported an input/output error; check it and re-copy the file",
    errno.EEXIST: "a file of that name is in the way; move it or choose another --out",
    errno.ENOTDIR: "a file stands where a folder is needed; move it or choose another --out",
    errno.EISDIR: "a folder stands where a file is needed; move it or choose another --out",
}


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The choice ``value`` most likely meant: equal but for case and punctuation, else the nearest spelling.

    Example:
        >>> closest("Ki-67", ["ki67", "mdm2"])
        'ki67'
    """
    options = list(choices)
    folded = {_fold(c): c for c in options}
    if _fold(value) in folded:
        return folded[_fold(value)]
    near = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
    return near[0] if near else None


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or an empty string."""
    match = closest(value, choices)
    return f" (did you mean '{match}'?)" if match is not None else ""


def _fold(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def where(path: str | Path, problem: str, fix: str) -> str:
    """Format ``"<path>: <problem>; <fix>"``, the shape of every message.

    Example:
        >>> where("a.svs", "slide has no mpp", "pass --slide-mpp")
        'a.svs: slide has no mpp; pass --slide-mpp'
    """
    return f"{printable(path)}: {problem}; {fix}"


def printable(text: str | Path) -> str:
    """``text`` as one printable UTF-8 line: undecodable bytes of a file name as ``\\xNN``, control
    characters (newlines, tabs, escapes) as ``\\n``-style escapes.

    Example:
        >>> printable("a\\nb\\udcff.svs")
        'a\\\\nb\\\\xff.svs'
    """
    raw = os.fsencode(text) if isinstance(text, Path) else _encode(text)
    decoded = raw.decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in decoded)


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def one_line(message: str) -> str:
    """``message`` as a single printable line (what the CLI prints for every error)."""
    return printable(" ".join(message.split("\n")))


def from_os_error(exc: OSError) -> OutputError | None:
    """The one-line user error for disk full, permission denied, read-only or size-limit failures, else ``None``.

    Example:
        >>> str(from_os_error(OSError(errno.ENOSPC, "No space left on device", "out/a.h5")))
        'out/a.h5: no space left on device; free disk space or choose another --out'
    """
    fix = _OS_FIXES.get(exc.errno or 0)
    if fix is None:
        return None
    problem = (exc.strerror or os.strerror(exc.errno or 0)).lower()
    return OutputError(where(os.fsdecode(exc.filename) if exc.filename is not None else "output", problem, fix))
