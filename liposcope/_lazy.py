"""Lazy package exports (PEP 562), so that importing a package costs nothing until a name is used.

A package lists its public names as imports inside ``if TYPE_CHECKING:`` (what type checkers and readers see) and
sets ``__getattr__, __dir__ = lazy_exports(__name__, __file__)``: each name is imported from its module on first use.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def lazy_exports(package: str, init_file: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, serving the names its ``TYPE_CHECKING`` block imports."""
    sources: dict[str, tuple[str, str]] = {}
    for node in ast.parse(Path(init_file).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    for alias in stmt.names:
                        sources[alias.asname or alias.name] = (stmt.module, alias.name)

    def __getattr__(name: str) -> Any:
        if name not in sources:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        module, attribute = sources[name]
        value = getattr(importlib.import_module(module), attribute)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(sources))

    return __getattr__, __dir__
