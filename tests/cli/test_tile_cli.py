"""`liposcope tile` end to end: outputs, resume, and every bad input (message, exit 2, nothing written)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from liposcope.cli import main


def test_tile_writes_grid_and_tissue_png(he_slides: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["tile", str(he_slides["WDLPS"]), "--out", str(out), "--tile-size", "128", "--save-images"]) == 0
    folder = out / "wdlps"
    with h5py.File(folder / "tiles.h5") as h5:
        coords = h5["coords"][:]
        attrs = dict(h5.attrs)
    assert coords.ndim == 2
    assert coords.shape[1] == 2
    assert len(coords) > 20
    assert coords.dtype.kind == "i"
    assert attrs["target_mpp"] == 0.5
    assert attrs["tile_size"] == 128
    assert attrs["tile_size_level0"] == 128
    assert attrs["slide_mpp"] == pytest.approx(0.5)
    assert attrs["slide_id"] == "wdlps"
    assert attrs["slide_path"] == str(he_slides["WDLPS"].resolve())
    assert attrs["mpp_source"] == "openslide"
    assert "version" in attrs
    assert "provenance" in attrs
    png = cv2.imread(str(folder / "tissue.png"))
    assert png is not None
    assert min(png.shape[:2]) > 100
    jpgs = sorted((folder / "tiles").glob("*.jpg"))
    assert len(jpgs) == len(coords)
    x, y = coords[0]
    tile = cv2.imread(str(folder / "tiles" / f"x{x}_y{y}.jpg"))
    assert tile.shape == (128, 128, 3)
    assert not list(folder.rglob(".*"))  # no temporary files left


def test_rerun_skips_finished_slides_and_redoes_changed_settings(
    he_slides: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["tile", str(he_slides["MLPS"]), "--out", str(tmp_path)]
    assert main(args) == 0
    h5 = tmp_path / "mlps" / "tiles.h5"
    stamp = h5.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    assert "skipped" in capsys.readouterr().out
    assert h5.stat().st_mtime_ns == stamp
    assert main([*args, "--tile-size", "64"]) == 0
    with h5py.File(h5) as f:
        assert f.attrs["tile_size"] == 64


def _blank_slide(path: Path) -> None:
    from liposcope.synth import write_pyramid

    write_pyramid(path, lambda x, y, w, h: np.full((h, w, 3), 240, np.uint8), 1024, 1024, 0.5)


def _truncated_slide(path: Path, source: Path) -> None:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 3])


BAD_INPUTS = {
    "missing": (lambda p, s: None, "no such file"),
    "not_a_slide": (lambda p, s: p.write_text("hello"), "not a slide or image"),
    "empty": (lambda p, s: p.write_bytes(b""), "file is empty"),
    "truncated": (_truncated_slide, "file is truncated"),
    "no_tissue": (lambda p, s: _blank_slide(p), "no tissue found"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_cleanly(
    case: str, he_slides: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, message = BAD_INPUTS[case]
    slide = tmp_path / "in" / f"{case}.tiff"
    slide.parent.mkdir()
    make(slide, he_slides["PLPS"])
    out = tmp_path / "out"
    assert main(["tile", str(slide), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert str(slide) in lines[0]
    assert __import__("re").search(message, lines[0])
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_unknown_mpp_and_tile_larger_than_slide(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = shared_data / "he-tiles" / "histolab-tcga-lung-rgb.png"
    assert main(["tile", str(png), "--out", str(tmp_path)]) == 2
    assert "pass --slide-mpp" in capsys.readouterr().err
    assert main(["tile", str(png), "--out", str(tmp_path), "--slide-mpp", "0.25", "--mpp", "1.0"]) == 2
    assert "smaller --tile-size" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    assert main(["tile", str(png), "--out", str(tmp_path), "--slide-mpp", "0.25", "--tile-size", "64"]) == 0


@pytest.mark.realdata
def test_batch_continues_past_bad_slides(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = shared_data / "slides" / "CMU-1-Small-Region.svs"
    bad = [
        shared_data / "slides" / "histolab-broken.svs",
        shared_data / "openslide-fixtures" / "unreadable.svs",
        shared_data / "openslide-fixtures" / "unopenable.tiff",
        shared_data / "slides" / "pathml-small_dicom_TCGA-XK-AAJU.dcm",
    ]
    assert main(["tile", str(bad[0]), str(good), *map(str, bad[1:]), "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "1 done, 0 skipped, 4 failed" in captured.out
    for path in bad:
        assert f"error: {path}:" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CMU-1-Small-Region"]
    assert (tmp_path / "CMU-1-Small-Region" / "tiles.h5").is_file()


def test_interrupted_run_leaves_nothing_and_resumes(he_slides: dict[str, Path], tmp_path: Path) -> None:
    """Kill a tiling run mid-way: no file looks complete; a rerun finishes the job."""
    code = (
        "import sys, wsi.tiling as t\n"
        "def boom(*a, **k): raise SystemExit(9)\n"
        "t.TileGrid.save = boom\n"
        "from liposcope.cli import main\n"
        f"sys.exit(main(['tile', {str(he_slides['DDLPS'])!r}, '--out', {str(tmp_path)!r}, '--save-images']))\n"
    )
    env = {**os.environ, "CI": "true"}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 9
    folder = tmp_path / "ddlps"
    assert not (folder / "tiles.h5").exists()
    assert not [p.name for p in folder.glob(".*")]  # temporaries removed
    assert main(["tile", str(he_slides["DDLPS"]), "--out", str(tmp_path), "--save-images"]) == 0
    assert (folder / "tiles.h5").is_file()
    shutil.rmtree(folder)


def test_help_on_every_command() -> None:
    for command in (["--help"], ["tile", "--help"], ["synth", "--help"]):
        result = subprocess.run(
            [sys.executable, "-m", "liposcope", *command], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0
        assert "usage: liposcope" in result.stdout
