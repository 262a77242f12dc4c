"""Progress bars on stderr that stay quiet under ``CI=true`` or when switched off."""

from __future__ import annotations

import os
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
    """Wrap ``items`` in a tqdm bar unless disabled or running under CI.

    Example:
        >>> sum(progress(range(3), desc="demo"))
        3
    """
    quiet = not _enabled or os.environ.get("CI", "").lower() in ("1", "true", "yes")
    yield from tqdm(items, total=total, desc=desc, unit=unit, disable=quiet, leave=False, dynamic_ncols=True)
