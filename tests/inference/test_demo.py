"""The shipped demo model: the demo command, and attention that points at the dedifferentiated region."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from liposcope.cli import main
from liposcope.inference import load_model, predict_slide
from liposcope.inference.demo import DEMO_HEIGHT, DEMO_MPP, DEMO_WIDTH, DISCLAIMER, demo_model_dir
from liposcope.inference.result import SlidePrediction
from liposcope.synth import load_truth, write_slide


def test_demo_model_is_small_and_documented() -> None:
    folder = demo_model_dir()
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 6_000_000
    card = json.loads((folder / "model.json").read_text())
    assert card["classes"] == ["WDLPS", "DDLPS", "MLPS", "PLPS"]
    recipe = (folder / "README.md").read_text()
    assert "liposcope train-tiles" in recipe
    assert "liposcope train " in recipe


def test_demo_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "-q"]) == 0
    out = capsys.readouterr().out
    assert "not for diagnosis" in out
    assert DISCLAIMER in out
    folder = next(p for p in tmp_path.iterdir() if p.name.startswith("demo-ddlps"))
    for name in ("prediction.json", "heatmap.png", "heatmap.geojson", "top_tiles.png", "report.html"):
        assert (folder / name).is_file(), name


def test_attention_points_at_the_dedifferentiated_region(tmp_path: Path, unseen_seed: int) -> None:
    """AUROC of attention for tiles inside the generator's dediff mask vs outside, on an unseen slide."""
    model = load_model(demo_model_dir())
    rng = np.random.default_rng(unseen_seed)
    for attempt in range(5):  # a slide whose dediff region holds at least a few tiles
        seed = int(rng.integers(1_000_000))
        path = tmp_path / f"ddlps-{seed}.tiff"
        truth = write_slide(path, label="DDLPS", seed=seed, width_px=DEMO_WIDTH, height_px=DEMO_HEIGHT, mpp=DEMO_MPP)
        if truth.dediff_mask.sum() > 0.05 * truth.tissue_mask.sum() or attempt == 4:
            break
    pred = predict_slide(path, model)
    truth = load_truth(path)
    side = pred.tile_size_level0
    inside = np.array([truth.dediff_fraction(x, y, side, side) >= 0.5 for x, y in pred.coords_level0])
    assert inside.any()
    assert not inside.all()
    auroc = roc_auc_score(inside, pred.attention)
    assert auroc >= 0.9, f"seed {seed}: attention AUROC {auroc:.3f} for the dediff region"


def _attention_auroc(pred: SlidePrediction, path: Path) -> float | None:
    truth = load_truth(path)
    side = pred.tile_size_level0
    inside = np.array([truth.dediff_fraction(x, y, side, side) >= 0.5 for x, y in pred.coords_level0])
    if inside.all() or not inside.any():
        return None
    return float(roc_auc_score(inside, pred.attention))


@pytest.mark.slow
@pytest.mark.parametrize("subtype", ["WDLPS", "DDLPS", "MLPS", "PLPS"])
def test_demo_model_is_right_on_50_fresh_seeds_per_class(tmp_path: Path, unseen_seed: int, subtype: str) -> None:
    """At least 48 of 50 fresh slides called right (an abstention counts as wrong); DDLPS attention AUROC >= 0.85."""
    model = load_model(demo_model_dir())
    rng = np.random.default_rng([unseen_seed, len(subtype)])
    right, attention_ok, misses = 0, 0, []
    for seed in rng.integers(1_000_000, size=50).tolist():
        path = tmp_path / f"{subtype}-{seed}.tiff"
        write_slide(path, label=subtype, seed=seed, width_px=DEMO_WIDTH, height_px=DEMO_HEIGHT, mpp=DEMO_MPP)
        pred = predict_slide(path, model)
        right += pred.call == subtype
        if pred.call != subtype:
            misses.append((seed, pred.predicted_class, round(pred.confidence, 3), pred.abstain_reasons))
        if subtype == "DDLPS":
            auroc = _attention_auroc(pred, path)
            attention_ok += auroc is None or auroc >= 0.85
        path.unlink()
    assert right >= 48, misses
    if subtype == "DDLPS":
        assert attention_ok >= 48
