"""Small synthetic H&E slides at 0.25 µm/px with planted mitotic figures (written once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from liposcope.synth.mitoses import TRAIN_SHAPES, write_mitosis_slide


@pytest.fixture(scope="session")
def mitosis_slides(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three 2048² slides (fixed seeds), dense in figures so that tiny training runs have examples."""
    folder = tmp_path_factory.mktemp("mitosis")
    paths = []
    for k, label in enumerate(("PLPS", "MLPS", "WDLPS")):
        path = folder / f"mit-{k}.tiff"
        write_mitosis_slide(
            path, label=label, seed=700 + k, width_px=2048, height_px=2048, per_10hpf=800.0, shapes=TRAIN_SHAPES
        )
        paths.append(path)
    return paths
