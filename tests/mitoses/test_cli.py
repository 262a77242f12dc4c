"""`liposcope mitoses` and `liposcope train-mitosis` end to end: outputs a person and QuPath can open, resume,
and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from liposcope.cli import main
from liposcope.synth import write_slide
from liposcope.synth.mitoses import TRAIN_SHAPES, write_mitosis_slide

CONTRACT = ("count", "tissue_area_mm2", "per_10hpf", "per_mm2", "hotspot_per_10hpf", "mitotic_score", "hpf_area_mm2")


def test_mitoses_command_writes_the_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slide = tmp_path / "plausible.tiff"  # 60 per 10 HPF: a rate that gets a score (the shared slides hold 800)
    write_mitosis_slide(slide, label="PLPS", seed=710, width_px=2048, height_px=2048, per_10hpf=60, shapes=TRAIN_SHAPES)
    out = tmp_path / "out"
    args = ["mitoses", str(slide), "--out", str(out), "--subtype", "PLPS", "--necrosis-pct", "10", "-q"]
    assert main(args) == 0
    folder = out / slide.stem
    data = json.loads((folder / "mitoses.json").read_text())
    for key in CONTRACT:
        assert key in data
    assert data["hpf_area_mm2"] == pytest.approx(0.2376, abs=1e-4)
    assert data["per_mm2"] == pytest.approx(data["count"] / data["tissue_area_mm2"], rel=1e-2)
    assert data["per_10hpf"] == pytest.approx(data["per_mm2"] * 2.376, rel=1e-2)
    assert data["mitotic_score"] in (1, 2, 3)
    assert data["fnclcc"]["note"] == "suggested, to be confirmed by the pathologist"
    assert data["fnclcc"]["differentiation"] == 3
    assert data["provenance"]["liposcope_version"]
    assert data["provenance"]["model"]["backbone"]

    features = json.loads((folder / "mitoses.geojson").read_text())["features"]
    assert len(features) == data["count"] > 0
    width, height = 2048, 2048
    for f in features:
        x, y = f["geometry"]["coordinates"]
        assert f["geometry"]["type"] == "Point"
        assert 0 <= x < width
        assert 0 <= y < height
        assert 0.0 < f["properties"]["measurements"]["probability"] <= 1.0
    hotspot = cv2.imread(str(folder / "hotspot.png"))
    gallery = cv2.imread(str(folder / "mitoses_gallery.png"))
    assert hotspot is not None
    assert hotspot.shape[0] > 100
    assert gallery is not None
    assert gallery.shape[1] >= 128
    html = (folder / "report.html").read_text()
    assert "Mitoses per 10 HPF" in html
    assert "suggested, to be confirmed by the pathologist" in html

    capsys.readouterr()
    assert main(args) == 0
    assert "skipped" in capsys.readouterr().out


def test_implausible_count_gets_a_warning_not_a_score(
    mitosis_slides: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shared slides plant 800 figures per 10 HPF, far above any tumour: no score, no grade, a warning."""
    out = tmp_path / "out"
    slide = mitosis_slides[0]
    assert main(["mitoses", str(slide), "--out", str(out), "--subtype", "PLPS", "--necrosis-pct", "10", "-q"]) == 0
    data = json.loads((out / slide.stem / "mitoses.json").read_text())
    assert data["hotspot_per_10hpf"] > 100
    assert data["mitotic_score"] is None
    assert "implausible" in json.dumps(data)


def test_mitoses_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coarse = tmp_path / "coarse.tiff"
    write_slide(coarse, label="PLPS", seed=3, width_px=512, height_px=512, mpp=0.5)
    out = tmp_path / "out"
    assert main(["mitoses", str(coarse), str(tmp_path / "missing.svs"), "--out", str(out), "-q"]) == 2
    text = capsys.readouterr().out
    assert "too coarse for mitoses" in text
    assert "40x" in text
    assert "missing.svs" in text
    assert not (out / "coarse").exists()


def test_train_mitosis_rejects_malformed_annotations(
    mitosis_slides: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "points.csv"
    bad.write_text("slide_id,x,y,label\nmit-0,10,20,maybe\n")
    args = ["train-mitosis", *map(str, mitosis_slides[:2]), "--annotations", str(bad), "--out", str(tmp_path / "r")]
    assert main([*args, "-q"]) == 2
    err = capsys.readouterr().err
    assert "points.csv:2" in err
    assert "maybe" in err
    assert not (tmp_path / "r" / "model").exists()


def test_synth_mitoses_command(tmp_path: Path) -> None:
    args = ["synth", str(tmp_path), "--subtype", "MLPS", "--seed", "5", "--mpp", "0.25", "--width", "1024"]
    assert main([*args, "--height", "1024", "--mitoses", "400", "--unseen-shapes", "-q"]) == 0
    rows = (tmp_path / "synth-mlps-5.mitoses.csv").read_text().splitlines()
    assert rows[0] == "slide_id,x,y,label,shape"
    labels = {r.split(",")[3] for r in rows[1:]}
    assert labels == {"mitosis", "non-mitosis"}
    assert np.all([float(r.split(",")[1]) < 1024 for r in rows[1:]])
