"""Progress bars on stderr that stay quiet under ``CI=true``, when stderr is not a terminal, or when switched off."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

_enabled = True


def set_enabled(enabled: bool) -> None:
    """Switch progress bars on or off for this process (the CLI's ``-q`` switches them off)."""
    global _enabled
    _enabled = enabled


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it") -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar unless disabled, running under CI, or writing to a file or pipe (where bars
    would interleave with log lines).

    Example:
        >>> sum(progress(range(3), desc="demo"))
        3
    """
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    quiet = not _enabled or ci or not sys.stderr.isatty()
    yield from tqdm(items, total=total, desc=desc, unit=unit, disable=quiet, leave=False, dynamic_ncols=True)
