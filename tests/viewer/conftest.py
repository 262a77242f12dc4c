"""Outputs of the real commands on small synthetic slides, and a viewer serving them (stopped after the tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from liposcope.cli import main
from liposcope.viewer import ViewerServer, build_registry, start

HE_ID, IHC_ID = "synth-ddlps-11", "synth-ihc-3"


@pytest.fixture(scope="session")
def view_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT of predict, mitoses and tile on an H&E slide (0.25 µm/px, planted figures) and of ihc on an IHC slide."""
    from liposcope.inference.demo import demo_model_dir

    slides = tmp_path_factory.mktemp("view-slides")
    out = tmp_path_factory.mktemp("view-out")
    geometry = ["--mpp", "0.25", "--width", "2048", "--height", "1536"]
    he, ihc = slides / f"{HE_ID}.tiff", slides / f"{IHC_ID}.tiff"
    commands = [
        ["synth", str(slides), "--subtype", "DDLPS", "--seed", "11", "--mitoses", "60", *geometry],
        ["synth", str(slides), "--ihc", "0.3", "--seed", "3", "--mpp", "0.25", "--width", "2048", "--height", "2048"],
        ["predict", str(he), "--model", str(demo_model_dir()), "--out", str(out)],
        ["mitoses", str(he), "--out", str(out)],
        ["tile", str(he), "--out", str(out), "--mpp", "1.0", "--tile-size", "128"],
        ["ihc", str(ihc), "--marker", "ki67", "--out", str(out)],
    ]
    for args in commands:
        assert main([*args, "-q"]) == 0, args
    return out


@pytest.fixture(scope="module")
def server(view_out: Path) -> Iterator[ViewerServer]:
    """A viewer on a free 127.0.0.1 port, closed (thread joined, socket released) after the module."""
    viewer = start(build_registry([view_out]), port=0)
    yield viewer
    viewer.close()
