"""The distribution: one import package, imports that stay cheap, and the direction of imports between packages."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Import package -> source folder (pyproject's package-dir).
FOLDERS = {
    "liposcope": "liposcope",
    "liposcope.wsi": "wsi",
    "liposcope.synth": "synth",
    "liposcope.models": "models",
    "liposcope.training": "training",
    "liposcope.inference": "inference",
    "liposcope.ihc": "ihc",
    "liposcope.mitoses": "mitoses",
}
HEAVY = ("torch", "timm", "sklearn")


@pytest.mark.parametrize("name", FOLDERS)
def test_package_comes_from_its_folder(name: str) -> None:
    module = importlib.import_module(name)
    origin = Path(module.__file__ or "").resolve()
    files = importlib.metadata.files("liposcope") or []
    installed = {Path(f.locate()).resolve() for f in files if f.name == "__init__.py"}
    assert origin == ROOT / FOLDERS[name] / "__init__.py" or origin in installed, f"{name} imported from {origin}"


def test_packaged_configs_are_found() -> None:
    from liposcope.config import load_yaml

    assert {"target_mpp", "tile_px", "tissue"} <= set(load_yaml("tiling"))


def test_old_top_level_names_are_gone(tmp_path: Path) -> None:
    """A folder named like a package in the working directory (``--out ihc``) cannot shadow liposcope's."""
    (tmp_path / "ihc").mkdir()
    code = "from liposcope.ihc import load_marker; print(load_marker('ki67').compartment)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "nuclear"


def _loaded_after(code: str) -> set[str]:
    """The heavy libraries in ``sys.modules`` after ``code`` runs in a fresh interpreter (its own output muted)."""
    probe = (
        "import contextlib, io, sys\nwith contextlib.redirect_stdout(io.StringIO()):\n"
        + "".join(f"    {line}\n" for line in code.strip().splitlines())
        + f"print(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_parser_and_every_help_load_no_heavy_library() -> None:
    code = """
import argparse
from liposcope.cli import build_parser, main
parser = build_parser()
commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
assert len(commands) >= 10, sorted(commands)
for argv in [["--help"], *([name, "--help"] for name in commands)]:
    with contextlib.suppress(SystemExit):
        main(argv)
"""
    assert _loaded_after(code) == set()


@pytest.mark.parametrize("command", [["--help"], ["tile", "--help"]])
def test_command_line_help_loads_no_heavy_library(command: list[str]) -> None:
    code = f"""
sys.argv = ['liposcope', *{command!r}]
from liposcope.cli import main
with contextlib.suppress(SystemExit):
    main()
"""
    assert _loaded_after(code) == set()


def test_pure_numpy_modules_load_no_heavy_library() -> None:
    modules = "liposcope.ihc.score, liposcope.mitoses.fnclcc, liposcope.wsi, liposcope.synth"
    assert _loaded_after(f"import {modules}") == set()


#: What each package may import from the others ("core" = liposcope's own modules except cli and viewer).
ALLOWED = {
    "core": set(),
    "wsi": {"core"},
    "synth": {"core", "wsi"},
    "models": {"core", "wsi"},
    "training": {"core", "wsi", "models"},
    "inference": {"core", "wsi", "models", "synth"},
    "ihc": {"core", "wsi"},
    "mitoses": {"core", "wsi", "models"},
    "viewer": {"core", "wsi"},
}


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "liposcope":
        return None
    second = parts[1] if len(parts) > 1 else ""
    if second in FOLDERS.values() or second in ("viewer", "cli"):
        return second
    return "core"


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def test_import_direction() -> None:
    """Analysis packages never import each other; the shared parts (core, wsi, models) import no analysis."""
    violations = []
    for name, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            own = _package_of(name + "." + ".".join(path.relative_to(ROOT / folder).with_suffix("").parts))
            if own == "cli" or path.name == "__main__.py":
                continue
            for module in _imports(path):
                other = _package_of(module)
                if other is not None and other != own and other not in ALLOWED[own or "core"]:
                    violations.append(f"{path.relative_to(ROOT)} imports {module}")
    assert violations == []


def test_wheel_holds_one_top_level_package(tmp_path: Path) -> None:
    """Built from a copy of the sources with the environment's setuptools: nothing downloads, nothing lands here."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in [*FOLDERS.values(), "configs"]:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-qw", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("liposcope-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"liposcope"}
    assert "liposcope/configs/tiling.yaml" in names
    assert "liposcope/inference/demo_model/model.json" in names
    assert not any(n.startswith("liposcope/configs/") and n.endswith(".py") for n in names)
