"""Exceptions a user can act on.

Every message names the file (or setting), what is wrong and what to do. The CLI prints
``LiposcopeError`` as one line on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

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


def where(path: str | Path, problem: str, fix: str) -> str:
    """Format ``"<path>: <problem>; <fix>"``, the shape of every message.

    Example:
        >>> where("a.svs", "slide has no mpp", "pass --slide-mpp")
        'a.svs: slide has no mpp; pass --slide-mpp'
    """
    return f"{path}: {problem}; {fix}"
