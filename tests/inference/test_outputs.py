"""Writers of ``liposcope predict``: heatmap PNG, GeoJSON, prediction.json, top tiles and the HTML report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from liposcope import wsi
from liposcope.inference.export import render_top_tiles, subtype_section, write_heatmap_geojson, write_prediction_json
from liposcope.inference.heatmap import attention_rank, overlay_attention, render_heatmap
from liposcope.inference.result import SlidePrediction
from liposcope.io import write_png
from liposcope.report import DISCLAIMER, Section, write_section
from liposcope.wsi.geojson import point_features, polygon_features

CLASSES = ("WDLPS", "DDLPS", "MLPS", "PLPS")
PREDICTION_KEYS = {
    "predicted_class",
    "abstained",
    "abstain_reasons",
    "call",
    "probabilities",
    "tiles_analysed",
    "tissue_area_mm2",
    "top_tiles",
    "warnings",
    "provenance",
    "slide_mpp",
    "mpp_source",
    "target_mpp",
    "tile_px",
}


@pytest.fixture(scope="module")
def slide_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from liposcope.synth import write_slide

    path = tmp_path_factory.mktemp("pred") / "ddlps.tiff"
    write_slide(path, label="DDLPS", seed=3, width_px=3000, height_px=2400, mpp=0.5)
    return path


@pytest.fixture(scope="module")
def pred(slide_path: Path) -> SlidePrediction:
    rng = np.random.default_rng(0)
    with wsi.Slide(slide_path) as slide:
        mask, _ = wsi.detect_tissue(slide)
        grid = wsi.build_grid(slide, mask, wsi.TileSpec(0.5, 128, 0, 0.5))
        thumbnail = slide.thumbnail(1024)
        downsample = slide.dimensions[0] / thumbnail.shape[1]
        n = len(grid)
        attention = rng.random(n) ** 4
        scores = rng.dirichlet(np.ones(len(CLASSES)), size=n)
        return SlidePrediction(
            slide_path=str(slide_path),
            slide_id=slide.slide_id,
            classes=CLASSES,
            probabilities=np.array([0.03, 0.91, 0.04, 0.02]),
            coords_level0=grid.coords_level0,
            tile_size_level0=grid.tile_size_level0,
            tile_px=128,
            target_mpp=0.5,
            attention=attention / attention.sum(),
            tile_scores=scores,
            tissue_area_mm2=mask.area_mm2,
            slide_dimensions=slide.dimensions,
            slide_mpp=slide.mpp,
            mpp_source=slide.mpp_source or "unknown",
            thumbnail=thumbnail,
            thumbnail_downsample=downsample,
            warnings=("Stain differs from the training cohort",),
            model={"name": "demo-abmil", "sha256": "ab" * 32},
            provenance={"liposcope_version": "0.0.test", "config": {"tile_px": 128}},
        )


def test_attention_rank_averages_ties() -> None:
    assert attention_rank(np.full(5, 0.2)).tolist() == [0.5] * 5
    assert attention_rank(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.5]


def test_heatmap_png(pred: SlidePrediction, tmp_path: Path) -> None:
    overlay = overlay_attention(pred)
    assert overlay.shape == pred.thumbnail.shape
    width, height = pred.slide_dimensions
    assert overlay.shape[1] / overlay.shape[0] == pytest.approx(width / height, rel=0.01)
    changed = np.any(overlay != pred.thumbnail, axis=2)
    x, y = (pred.coords_level0[0] + pred.tile_size_level0 // 2) / pred.thumbnail_downsample
    assert changed[int(y), int(x)]  # coloured inside a tile
    assert not changed[:3, :3].any()  # slide corner: no tissue tile there

    write_png(tmp_path / "heatmap.png", render_heatmap(pred))
    image = cv2.imread(str(tmp_path / "heatmap.png"))
    assert image is not None
    assert image.dtype == np.uint8
    assert 1000 <= image.shape[1] <= 1600
    assert image.std() > 20  # not blank
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    assert (hsv[..., 1] > 120).mean() > 0.02  # saturated colour-map pixels are present


def test_heatmap_geojson(pred: SlidePrediction, tmp_path: Path) -> None:
    write_heatmap_geojson(tmp_path / "heatmap.geojson", pred)
    data = json.loads((tmp_path / "heatmap.geojson").read_text())
    assert data["type"] == "FeatureCollection"
    features = data["features"]
    assert len(features) == len(pred.attention)
    width, height = pred.slide_dimensions
    attention = 0.0
    for feature in features:
        assert feature["geometry"]["type"] == "Polygon"
        ring = np.array(feature["geometry"]["coordinates"][0])
        assert ring.shape == (5, 2)
        assert (ring[0] == ring[-1]).all()
        assert (ring >= 0).all()
        assert (ring[:, 0] <= width).all()
        assert (ring[:, 1] <= height).all()
        props = feature["properties"]
        assert props["objectType"] == "detection"
        assert props["classification"]["name"] in CLASSES
        assert len(props["classification"]["color"]) == 3
        measurements = props["measurements"]
        assert set(measurements) == {"attention", *(f"p_{c}" for c in CLASSES)}
        assert all(isinstance(v, float) and np.isfinite(v) for v in measurements.values())
        attention += measurements["attention"]
    assert attention == pytest.approx(1.0, abs=1e-6)
    assert len({f["id"] for f in features}) == len(features)


def test_geojson_points_and_polygons_drop_nan() -> None:
    points = point_features(np.array([[1.0, 2.0], [3.0, 4.0]]), {"od": np.array([0.5, np.nan])}, ["Positive"] * 2)
    assert points[0]["geometry"] == {"type": "Point", "coordinates": [1.0, 2.0]}
    assert points[1]["properties"]["measurements"] == {}
    triangle = polygon_features([np.array([[0, 0], [10, 0], [0, 10]])], object_type="annotation")[0]
    assert triangle["geometry"]["coordinates"][0] == [[0, 0], [10, 0], [0, 10], [0, 0]]
    assert "classification" not in triangle["properties"]
    with pytest.raises(ValueError, match="measurement"):
        polygon_features(np.zeros((2, 4)), {"a": np.zeros(3)})


def test_prediction_json(pred: SlidePrediction, tmp_path: Path) -> None:
    write_prediction_json(tmp_path / "prediction.json", pred, top_k=5)
    data = json.loads((tmp_path / "prediction.json").read_text())
    assert set(data) == PREDICTION_KEYS
    assert data["predicted_class"] == data["call"] == "DDLPS"
    assert data["abstained"] is False
    assert data["abstain_reasons"] == []
    assert sum(data["probabilities"].values()) == pytest.approx(1.0)
    assert data["tiles_analysed"] == len(pred.attention)
    top = data["top_tiles"]
    assert [t["rank"] for t in top] == [1, 2, 3, 4, 5]
    assert top[0]["attention"] == pytest.approx(pred.attention.max())
    assert top[0]["width"] == top[0]["height"] == pred.tile_size_level0
    assert set(top[0]["scores"]) == set(CLASSES)
    assert data["warnings"] == list(pred.warnings)
    prov = data["provenance"]
    assert prov["slide_id"] == pred.slide_id
    assert prov["model"]["name"] == "demo-abmil"
    assert prov["liposcope_version"] == "0.0.test"
    assert prov["config"] == {"tile_px": 128}


def test_top_tiles_gallery(pred: SlidePrediction, slide_path: Path, tmp_path: Path) -> None:
    with wsi.Slide(slide_path) as slide:
        gallery = render_top_tiles(pred, slide, k=6)
    write_png(tmp_path / "top_tiles.png", gallery)
    image = cv2.imread(str(tmp_path / "top_tiles.png"))
    assert image is not None
    assert image.shape[1] > image.shape[0] > 256  # 4 columns × 2 rows of 256-px cells
    assert image.std() > 20


def test_report_is_self_contained(pred: SlidePrediction, tmp_path: Path) -> None:
    hostile = dataclasses.replace(pred, slide_id="<script>alert(1)</script>")
    small = np.zeros((20, 30, 3), np.uint8)
    report = write_section(tmp_path, subtype_section(hostile, render_heatmap(hostile), small))
    text = report.read_text(encoding="utf-8")
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    assert 'src="http' not in text
    assert "data:image/png;base64," in text
    assert DISCLAIMER in text
    assert "Stain differs from the training cohort" in text
    assert 'class="warn"' in text

    write_section(tmp_path, Section("ihc-ki67", "Ki-67", "<p>LI 12%</p>", {"hotspot": small}))
    text = report.read_text(encoding="utf-8")
    assert "Liposarcoma subtype" in text
    assert "LI 12%" in text
    assert text.index("Liposarcoma subtype") < text.index("Ki-67")
    assert sorted(p.name for p in (tmp_path / "report_sections").iterdir()) == ["ihc-ki67.json", "subtype.json"]


def test_section_key_is_a_file_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="section key"):
        write_section(tmp_path, Section("../x", "X", ""))
