"""Name → MIL head class, so configs and model cards refer to heads by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from liposcope.errors import ConfigError

M = TypeVar("M", bound=nn.Module)

_HEADS: dict[str, type[nn.Module]] = {}


def register_mil(name: str) -> Callable[[type[M]], type[M]]:
    """Class decorator that makes a head available to :func:`create_mil` as ``name``.

    The class takes ``(in_dim, n_classes, *, **hyperparameters)`` with defaults for every
    hyperparameter, and its ``forward(x, mask)`` returns ``MILOutput``.

    Example:
        >>> @register_mil("maxpool")  # doctest: +SKIP
        ... class MaxPool(nn.Module): ...
    """

    def add(cls: type[M]) -> type[M]:
        _HEADS[name] = cls
        return cls

    return add


def list_mil() -> list[str]:
    """Names of the registered heads, sorted.

    Example:
        >>> from liposcope.models.mil import list_mil
        >>> list_mil()
        ['abmil', 'meanpool', 'transmil']
    """
    return sorted(_HEADS)


def mil_config(name: str, **cfg: Any) -> dict[str, Any]:
    """The head's full hyperparameters: its defaults updated with ``cfg``.

    Raises:
        ConfigError: unknown head name or hyperparameter, listing the valid ones.

    Example:
        >>> mil_config("abmil", dropout=0.1)["dropout"]
        0.1
    """
    if name not in _HEADS:
        msg = f"head: unknown MIL head '{name}'; valid heads: {', '.join(list_mil())}"
        raise ConfigError(msg)
    params = list(inspect.signature(_HEADS[name]).parameters.values())[2:]
    defaults = {p.name: p.default for p in params}
    unknown = sorted(set(cfg) - set(defaults))
    if unknown:
        msg = f"head: unknown option '{unknown[0]}' for '{name}'; valid options: {', '.join(defaults)}"
        raise ConfigError(msg)
    return {**defaults, **cfg}


def create_mil(name: str, in_dim: int, n_classes: int, **cfg: Any) -> nn.Module:
    """Build the head ``name`` for ``in_dim``-dimensional tile features and ``n_classes`` classes.

    Raises:
        ConfigError: unknown head name or hyperparameter, listing the valid ones.

    Example:
        >>> head = create_mil("abmil", in_dim=384, n_classes=4, dropout=0.25)
    """
    config = mil_config(name, **cfg)
    return _HEADS[name](in_dim, n_classes, **config)
