"""YAML configuration → frozen dataclasses.

Defaults live in the packaged ``configs/<name>.yaml``; a user file holds only the keys it changes,
CLI flags override both, and the resolved values are written into every output.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from liposcope.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

T = TypeVar("T")


def packaged_configs() -> Traversable:
    """The folder of packaged YAML defaults: ``liposcope/configs/`` when installed from a wheel.

    ``configs/`` holds data, not code, so it has no ``__init__.py``; an editable install cannot map such a folder
    into the namespace, and there it is found beside ``liposcope/`` in the checkout.
    """
    try:
        return resources.files("liposcope.configs")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "configs"


def load_yaml(source: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from a file path or a packaged config name (``"tiling"``).

    Raises:
        ConfigError: the file is missing, unparsable or not a mapping.
    """
    path = Path(source)
    if not path.suffix:
        packaged = packaged_configs() / f"{source}.yaml"
        if not packaged.is_file():
            msg = f"{source}: no such packaged config; pass a path to a .yaml file"
            raise ConfigError(msg)
        text = packaged.read_text(encoding="utf-8")
    elif path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        msg = f"{path}: config file not found; check the path"
        raise ConfigError(msg)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        msg = f"{source}: invalid YAML ({exc}); fix the syntax"
        raise ConfigError(msg) from exc
    if not isinstance(data, dict):
        msg = f"{source}: expected a mapping of keys to values at the top level"
        raise ConfigError(msg)
    return data


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base``; ``None`` values in ``update`` are ignored."""
    out = dict(base)
    for key, value in update.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown and missing keys.

    Raises:
        ConfigError: naming the source, the key and (for typos) the closest valid key.

    Example:
        >>> from liposcope.wsi.tissue import TissueParams
        >>> from_dict(TissueParams, load_yaml("tiling")["tissue"]).mask_mpp
        4.0
    """
    if not dataclasses.is_dataclass(cls):
        msg = f"{cls!r} is not a dataclass"
        raise TypeError(msg)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            hint = did_you_mean(str(key), names) or f"; valid keys: {', '.join(names)}"
            msg = f"{source}: unknown key '{key}'{hint}"
            raise ConfigError(msg)
    values = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                msg = f"{source}: missing key '{field.name}'"
                raise ConfigError(msg)
            continue
        values[field.name] = _coerce(hints[field.name], data[field.name], f"{source}: '{field.name}'")
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check ``value`` against a simple type hint, converting int→float and list→tuple."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, Mapping):
            msg = f"{where} must be a mapping"
            raise ConfigError(msg)
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            msg = f"{where} must be a list"
            raise ConfigError(msg)
        item = typing.get_args(hint)[0]
        return tuple(_coerce(item, v, where) for v in value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _is_number(value):  # YAML 1.1 reads 1e-3 as a string
        return float(value)
    if hint in (int, str, bool) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        msg = f"{where} must be {hint.__name__}, got {value!r}"
        raise ConfigError(msg)
    if hint is float:
        msg = f"{where} must be a number, got {value!r}"
        raise ConfigError(msg)
    return value


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def to_dict(obj: Any) -> dict[str, Any]:
    """The resolved config as plain data, for provenance."""
    return dataclasses.asdict(obj)
