"""The distribution: import names come from liposcope, imports stay cheap."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ("liposcope", "wsi", "training", "inference", "ihc", "mitoses", "configs")


@pytest.mark.parametrize("name", PACKAGES)
def test_package_comes_from_this_distribution(name: str) -> None:
    files = importlib.metadata.files("liposcope") or []
    module = importlib.import_module(name)
    origin = Path(module.__file__ or "").resolve()
    installed = {Path(f.locate()).resolve() for f in files if f.name == "__init__.py"}
    editable = any("__editable__" in str(f) or f.name.endswith(".pth") for f in files)
    assert origin in installed or editable, f"{name} imported from {origin}, not from the liposcope distribution"
    root = Path(__file__).resolve().parents[1]
    assert origin.is_relative_to(root) or origin in installed


def test_import_wsi_does_not_import_torch() -> None:
    code = "import sys, wsi, wsi.synth, liposcope.cli; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
