"""train-tiles: tile images + slide or region labels in, a model folder that `features --weights` takes out."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import pytest

from liposcope.cli import main
from liposcope.errors import AnnotationError
from liposcope.io import sha256_file
from liposcope.training.settings import TileTrainConfig
from liposcope.training.train_tiles import collect_tiles


@pytest.fixture(scope="module")
def tiled_cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from liposcope.synth import write_cohort

    root = tmp_path_factory.mktemp("cohort")
    labels = write_cohort(root / "slides", n_slides=8, seed=4, width_px=1600, height_px=1200, mpp=0.5)
    slides = sorted(str(p) for p in (root / "slides").glob("*.tiff"))
    assert (
        main(
            ["tile", *slides, "--out", str(root / "tiles"), "--mpp", "2.0", "--tile-size", "48", "--save-images", "-q"]
        )
        == 0
    )
    return labels, root / "tiles"


def test_train_tiles_writes_a_model_features_accepts(tiled_cohort: tuple[Path, Path], tmp_path: Path) -> None:
    labels, tiles = tiled_cohort
    assert main(["synth", str(labels.parent), "--label-tiles", str(tiles)]) == 0
    run = tmp_path / "enc"
    args = [
        "train-tiles",
        "--tiles",
        str(tiles),
        "--labels",
        str(labels),
        "--backbone",
        "test_resnet",
        "--out",
        str(run),
    ]
    args += ["--epochs", "2", "--workers", "0", "--batch-size", "32", "--tile-labels", str(tiles / "tile_labels.csv")]
    assert main(args) == 0
    card = json.loads((run / "model" / "model.json").read_text())
    assert card["kind"] == "tile-classifier"
    assert card["classes"] == ["WDLPS", "DDLPS", "MLPS", "PLPS"]
    assert card["tiling"]["target_mpp"] == 2.0
    metrics = json.loads((run / "metrics.json").read_text())
    history = metrics["history"]
    assert len(history) >= 1
    assert "logistic regression" in metrics["baseline"]["model"]
    assert 0.0 <= metrics["baseline"]["balanced_accuracy"] <= 1.0
    assert isinstance(metrics["warnings"], list)
    assert all(0.0 <= h["val_bacc"] <= 1.0 for h in history)
    slide = sorted(labels.parent.glob("*.tiff"))[0]
    feats = tmp_path / "feats"
    weights = str(run / "model")
    common = ["--mpp", "2.0", "--tile-size", "48", "--workers", "0", "-q"]
    assert (
        main(["features", str(slide), "--out", str(feats), "--backbone", "test_resnet", "--weights", weights, *common])
        == 0
    )
    with h5py.File(feats / f"{slide.stem}.h5") as h5:
        assert h5.attrs["weights_sha256"] == sha256_file(run / "model" / "model.safetensors")


def test_region_labels_override_slide_labels(tiled_cohort: tuple[Path, Path], tmp_path: Path) -> None:
    labels, tiles = tiled_cohort
    rows = list(csv.DictReader(labels.open()))
    sid = rows[0]["slide_id"]
    x, y = next((tiles / sid / "tiles").glob("*.jpg")).stem[1:].split("_y")
    other = next(c for c in ("WDLPS", "PLPS") if c != rows[0]["label"])
    region = tmp_path / "regions.csv"
    region.write_text(f"slide_id,x,y,label\n{sid},{x},{y},{other}\n")
    cfg = TileTrainConfig("test_resnet", max_tiles_per_slide=10_000)
    items, slides, _ = collect_tiles(tiles, labels, cfg, region)
    by_name = {(s, p.stem): cfg.classes[label] for (p, label), s in zip(items, slides, strict=True)}
    assert by_name[(sid, f"x{x}_y{y}")] == other
    assert sum(v == rows[0]["label"] for (s, _), v in by_name.items() if s == sid) >= 1
    region.write_text(f"slide_id,x,y,label\n{sid},{x},{y},NOPE\n")
    with pytest.raises(AnnotationError, match="unknown label 'NOPE'"):
        collect_tiles(tiles, labels, cfg, region)
