"""Cross-validated MIL training on synthetic bags: learning, outputs, leakage, reloading."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from liposcope.errors import ConfigError
from liposcope.models.calibration import softmax
from liposcope.models.card import HeadSpec, load_mil
from liposcope.training.crossval import TrainResult, fit_head, load_train_config, predict_logits, train_mil
from liposcope.training.data import load_cohort, make_folds
from liposcope.training.metrics import classification_metrics
from tests.training import CLASSES, write_cohort

FAST = {
    "max_epochs": 30,
    "min_epochs": 20,
    "patience": 5,
    "lr": 3e-3,
    "batch_size": 4,
    "head": {"hidden_dim": 32, "attn_dim": 16},
}


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cohort")
    write_cohort(folder, patients_per_class=6, dim=16, signal=4.0)
    return folder


@pytest.fixture(scope="module")
def run(cohort_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    cfg = load_train_config("configs/abmil.yaml", **FAST)
    out = tmp_path_factory.mktemp("run") / "abmil"
    return train_mil(cfg, cohort_dir / "labels.csv", cohort_dir / "features", out, folds=3, seed=1)


def test_training_lowers_loss_and_beats_chance_on_held_out_slides(cohort_dir: Path) -> None:
    cfg = load_train_config("configs/abmil.yaml", **FAST)
    cohort = load_cohort(cohort_dir / "labels.csv", cohort_dir / "features", CLASSES)
    folds = make_folds(cohort.labels, cohort.patients, 3, 0, CLASSES)
    train = [b for b, f in zip(cohort.bags, folds, strict=True) if f != 0]
    test = [b for b, f in zip(cohort.bags, folds, strict=True) if f == 0]
    fit = fit_head(train, [], cfg, in_dim=16, seed=0)
    assert fit.train_loss[-1] < 0.7 * fit.train_loss[0]
    metrics = classification_metrics(cohort.labels[folds == 0], softmax(predict_logits(fit.module, test)), CLASSES)
    assert metrics["balanced_accuracy"] > 0.5  # chance is 0.25


def test_training_is_deterministic(cohort_dir: Path) -> None:
    cfg = load_train_config("configs/meanpool.yaml", max_epochs=3, min_epochs=1, head={"hidden_dim": 8})
    cohort = load_cohort(cohort_dir / "labels.csv", cohort_dir / "features", CLASSES)
    a, b = (fit_head(cohort.bags[:12], cohort.bags[12:16], cfg, in_dim=16, seed=3) for _ in range(2))
    assert a.val_loss == b.val_loss
    assert all(torch.equal(a.module.state_dict()[k], v) for k, v in b.module.state_dict().items())


def test_oof_csv_columns_and_folds_keep_patients_apart(run: TrainResult) -> None:
    with run.oof_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["slide_id", "patient_id", "label", "fold", "pred", *(f"p_{c}" for c in CLASSES)]
    assert len(rows) == 32
    folds_of_patient: dict[str, set[str]] = {}
    for row in rows:
        folds_of_patient.setdefault(row["patient_id"], set()).add(row["fold"])
        assert row["pred"] in CLASSES
        assert abs(sum(float(row[f"p_{c}"]) for c in CLASSES) - 1) < 1e-4
    assert all(len(f) == 1 for f in folds_of_patient.values())
    assert {r["fold"] for r in rows} == {"0", "1", "2"}


def test_oof_predictions_beat_chance(run: TrainResult) -> None:
    assert run.metrics["balanced_accuracy"] > 0.5
    assert run.metrics["auroc_macro"] > 0.75


def test_metrics_json_is_strict_json_with_folds_and_config(run: TrainResult) -> None:
    text = (run.out_dir / "metrics.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert len(data["folds"]) == 3
    assert data["config"]["folds"] == 3
    assert data["config"]["seed"] == 1
    assert data["oof_probabilities"].startswith("calibrated")
    assert {"balanced_accuracy", "auroc_macro", "f1_per_class", "confusion", "ece"} <= set(data["pooled_oof"])
    assert sum(f["n_test"] for f in data["folds"]) == 32
    assert data["provenance"]["labels_sha256"]
    assert (run.out_dir / "confusion.png").stat().st_size > 1000


def test_saved_model_reloads_with_card(run: TrainResult, cohort_dir: Path) -> None:
    _, card = load_mil(run.model_dir)
    assert card.classes == CLASSES
    assert card.head == HeadSpec(
        "abmil",
        {"hidden_dim": 32, "attn_dim": 16, "dropout": 0.25, "branches": 2, "pool_std": True, "pooled_linear": True},
    )
    assert (card.backbone.name, card.backbone.feature_dim) == ("test_vit", 16)
    assert card.backbone.normalisation.mean == (0.485, 0.456, 0.406)
    assert (card.tiling.target_mpp, card.tiling.tile_px, card.tiling.overlap_px) == (0.5, 224, 0)
    assert card.temperature == pytest.approx(run.temperature)
    assert card.ood is not None
    assert card.ood.n_slides == 32
    cohort = load_cohort(cohort_dir / "labels.csv", cohort_dir / "features", CLASSES)
    distances = card.ood.distance(np.stack([b.features.mean(0).numpy() for b in cohort.bags]))
    assert np.mean(distances <= card.ood.threshold) >= 0.95
    assert card.ood.distance(np.full(16, 5.0))[0] > card.ood.threshold


def test_config_rejects_unknown_keys_and_heads() -> None:
    with pytest.raises(ConfigError, match="did you mean 'patience'"):
        load_train_config("configs/abmil.yaml", patiense=3)
    with pytest.raises(ConfigError, match="valid heads: abmil, meanpool, transmil"):
        load_train_config("configs/abmil.yaml", head={"name": "clam"})
    with pytest.raises(ConfigError, match="class_balance must be one of"):
        load_train_config("configs/abmil.yaml", class_balance="oversample")
    with pytest.raises(ConfigError, match="'lr' must be a number, got 'fast'"):
        load_train_config("configs/abmil.yaml", lr="fast")


def test_exponent_numbers_that_yaml_reads_as_strings_are_numbers() -> None:
    assert load_train_config("configs/abmil.yaml", lr="3e-4", weight_decay="1E-2").lr == 3e-4


@pytest.mark.parametrize("name", ["abmil", "meanpool", "transmil"])
def test_packaged_configs_load(name: str) -> None:
    cfg = load_train_config(f"configs/{name}.yaml")
    assert cfg.head["name"] == name
    assert cfg.classes == CLASSES


def test_metrics_json_has_the_baseline_beside_the_head_and_the_card_abstention(run: TrainResult) -> None:
    data = json.loads((run.out_dir / "metrics.json").read_text())
    head, baseline = data["pooled_oof"], data["baseline"]
    assert {k for k in head if k != "ece_calibrated"} <= set(baseline)
    assert "logistic regression" in baseline["model"]
    assert baseline["n"] == head["n"] == 32
    assert baseline["balanced_accuracy"] > 0.5  # the class shows in a few tiles only: still above chance 0.25
    assert data["warnings"] == list(run.warnings)
    assert all("left_chance_epoch" in f for f in data["folds"])
    _, card = load_mil(run.model_dir)
    assert 0.5 <= card.min_confidence <= 0.95
    assert card.abstention == data["abstention"]
    assert card.standardisation is not None
    image = __import__("cv2").imread(str(run.out_dir / "confusion.png"))
    assert image.shape[1] > 2 * image.shape[0] * 0.9  # two panels: head and baseline


def _scaled_copy(cohort_dir: Path, out: Path, factor: float) -> Path:
    import h5py

    (out / "features").mkdir(parents=True)
    for src in (cohort_dir / "features").glob("*.h5"):
        with h5py.File(src) as h5, h5py.File(out / "features" / src.name, "w") as dst:
            for key, value in h5.items():
                data = value[()]
                dst.create_dataset(key, data=data.astype(np.float32) * factor if key == "features" else data)
            dst.attrs.update(dict(h5.attrs))
    return out / "features"


def test_multiplying_every_feature_by_1e3_or_1e_3_gives_the_same_predictions(cohort_dir: Path, tmp_path: Path) -> None:
    cfg = load_train_config("configs/meanpool.yaml", **{**FAST, "head": {"hidden_dim": 32}})
    probs = []
    for factor in (1.0, 1e-3, 1e3):
        feats = _scaled_copy(cohort_dir, tmp_path / f"x{factor}", factor)
        result = train_mil(cfg, cohort_dir / "labels.csv", feats, tmp_path / f"run{factor}", folds=3, seed=0)
        with result.oof_csv.open() as fh:
            probs.append(np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in csv.DictReader(fh)]))
    assert np.abs(probs[1] - probs[0]).max() < 2e-3
    assert np.abs(probs[2] - probs[0]).max() < 2e-3
    assert (probs[0].argmax(1) == probs[1].argmax(1)).all()


def test_a_head_far_below_the_baseline_ends_with_a_warning(cohort_dir: Path, tmp_path: Path) -> None:
    cfg = load_train_config("configs/meanpool.yaml", max_epochs=2, min_epochs=1, lr=1e-7, head={"hidden_dim": 8})
    result = train_mil(cfg, cohort_dir / "labels.csv", cohort_dir / "features", tmp_path / "run", folds=3, seed=0)
    assert result.baseline["balanced_accuracy"] - result.metrics["balanced_accuracy"] > 0.05
    assert len(result.warnings) == 1
    assert "below the logistic-regression baseline" in result.warnings[0]
    assert "Try" in result.warnings[0]


def test_early_stopping_waits_until_the_model_has_left_chance(cohort_dir: Path) -> None:
    cohort = load_cohort(cohort_dir / "labels.csv", cohort_dir / "features", CLASSES)
    train, val = cohort.bags[1::3] + cohort.bags[2::3], cohort.bags[::3]  # every class on both sides
    stuck = load_train_config("configs/meanpool.yaml", max_epochs=6, min_epochs=1, patience=1, lr=1e-8)
    fit = fit_head(train, val, stuck, in_dim=16, seed=0)
    assert fit.left_chance_epoch == 0
    assert len(fit.train_loss) == 6  # never stopped: it had not started learning
    assert fit.val_loss == ()
    learns = load_train_config("configs/meanpool.yaml", **{**FAST, "head": {"hidden_dim": 32}})
    fit = fit_head(train, val, learns, in_dim=16, seed=0)
    assert 1 <= fit.left_chance_epoch <= fit.best_epoch
    assert len(fit.val_loss) == len(fit.train_loss) - max(fit.left_chance_epoch, learns.min_epochs) + 1


def test_folds_early_stop_only_where_the_validation_split_can_choose_an_epoch(
    run: TrainResult, cohort_dir: Path, tmp_path: Path
) -> None:
    folds = json.loads((run.out_dir / "metrics.json").read_text())["folds"]
    assert all(f["n_val"] == 0 and f["best_epoch"] == FAST["max_epochs"] for f in folds)  # ~4 validation slides
    cfg = load_train_config("configs/abmil.yaml", **FAST, min_val_slides=4)
    result = train_mil(cfg, cohort_dir / "labels.csv", cohort_dir / "features", tmp_path / "run", folds=3, seed=1)
    folds = json.loads((result.out_dir / "metrics.json").read_text())["folds"]
    assert all(f["n_val"] > 0 and f["n_train"] + f["n_val"] + f["n_test"] == 32 for f in folds)
    assert all(FAST["min_epochs"] <= f["best_epoch"] <= FAST["max_epochs"] for f in folds)
