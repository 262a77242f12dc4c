"""Shared fixtures: synthetic slides written once per session, and the real files in ../shared/data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("LIPOSCOPE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SUBTYPES = ("WDLPS", "DDLPS", "MLPS", "PLPS")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real test files (see ../shared/data/SOURCES.md); tests skip when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not found")
    return SHARED_DATA


@pytest.fixture(scope="session")
def unseen_seed() -> int:
    """A seed drawn fresh each session (printed on failure), never used to tune anything."""
    return int(os.environ.get("LIPOSCOPE_UNSEEN_SEED", random.SystemRandom().randrange(10_000, 1_000_000)))


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="session")
def he_slides(synth_dir: Path) -> dict[str, Path]:
    """One small synthetic H&E slide per subtype at 0.5 µm/px (fixed seeds)."""
    from liposcope.synth import write_slide

    paths = {}
    for k, label in enumerate(SUBTYPES):
        path = synth_dir / f"{label.lower()}.tiff"
        write_slide(path, label=label, seed=100 + k, width_px=4000, height_px=3200, mpp=0.5)
        paths[label] = path
    return paths
