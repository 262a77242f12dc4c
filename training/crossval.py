"""Cross-validate a MIL head on a cohort of feature bags, calibrate it and save the final model.

Protocol. Slides are split into K folds grouped by patient and stratified by label. For fold k
the model trains on the other folds, minus an inner validation split (patient-grouped, about
``val_fraction`` of them) that picks the epoch by validation loss with early stopping. Where that
split would hold fewer than ``min_val_slides`` slides, a few slides' loss would pick the epoch by
chance, so the fold trains the whole schedule (``max_epochs``) on all its training slides; fold k
itself is only ever predicted, so every out-of-fold (OOF) prediction comes from a model that
never saw that slide, neither for training nor for stopping, nor for its input standardisation.
A softmax temperature is then fitted on the pooled OOF logits, the abstention threshold is chosen
on the calibrated OOF probabilities, and a final model is trained on all slides for the median
best epoch of the folds. A logistic-regression baseline (:mod:`training.baseline`) is fitted on
the same folds and reported beside the head.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liposcope.config import from_dict, load_yaml, merge, to_dict
from liposcope.errors import ConfigError, where
from liposcope.io import atomic_path, provenance, sha256_file, write_json, write_png
from liposcope.models.calibration import fit_temperature, softmax
from liposcope.models.card import HeadSpec, ModelCard, OODStats, save_model
from liposcope.models.mil import list_mil, mil_config
from liposcope.models.mil.standardise import METHOD
from liposcope.progress import progress
from liposcope.training.baseline import DESCRIPTION, baseline_probabilities, gap_warning, pooled
from liposcope.training.data import Cohort, inner_split, load_cohort, make_folds
from liposcope.training.fit_mil import fit_head, predict_logits
from liposcope.training.metrics import (
    abstention_threshold,
    classification_metrics,
    draw_confusions,
    expected_calibration_error,
)
from liposcope.training.settings import SCHEDULES

log = logging.getLogger(__name__)

BALANCING = ("weighted_loss", "none")


@dataclass(frozen=True)
class TrainConfig:
    """A ``liposcope train --config`` file (see ``configs/abmil.yaml`` for what each key means)."""

    classes: tuple[str, ...]
    head: dict[str, Any]
    folds: int = 5
    seed: int = 0
    max_epochs: int = 50
    min_epochs: int = 10
    patience: int = 10
    lr: float = 2e-4
    weight_decay: float = 1e-4
    warmup_epochs: int = 3
    schedule: str = "cosine"
    grad_clip: float = 1.0
    chance_margin: float = 0.5
    batch_size: int = 1
    max_tiles: int = 512
    class_balance: str = "weighted_loss"
    val_fraction: float = 0.2
    min_val_slides: int = 20
    calibration: bool = True
    abstain_below_accuracy: float = 0.95
    threads: int = 1

    def __post_init__(self) -> None:
        problems = [
            (len(self.classes) < 2 or len(set(self.classes)) != len(self.classes), "classes must be 2+ distinct names"),
            (self.folds < 2, f"folds {self.folds} must be at least 2"),
            (not 1 <= self.min_epochs <= self.max_epochs, "min_epochs must be in [1, max_epochs]"),
            (self.patience < 1, "patience must be at least 1"),
            (self.lr <= 0 or self.weight_decay < 0, "lr must be positive and weight_decay non-negative"),
            (self.warmup_epochs < 0, "warmup_epochs must be non-negative"),
            (self.schedule not in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (self.grad_clip < 0, "grad_clip must be non-negative (0 = no clipping)"),
            (not 0.0 <= self.chance_margin < 1.0, f"chance_margin {self.chance_margin} must be in [0, 1)"),
            (not 0.0 < self.abstain_below_accuracy <= 1.0, "abstain_below_accuracy must be in (0, 1]"),
            (min(self.batch_size, self.threads) < 1 or self.max_tiles < 0, "batch_size and threads must be >= 1"),
            (self.class_balance not in BALANCING, f"class_balance must be one of {', '.join(BALANCING)}"),
            (not 0.0 < self.val_fraction < 1.0, f"val_fraction {self.val_fraction} must be in (0, 1)"),
            (self.min_val_slides < 1, "min_val_slides must be at least 1"),
            (
                not isinstance(self.head, dict) or not isinstance(self.head.get("name"), str),
                "head needs a 'name' (abmil, meanpool, transmil)",
            ),
        ]
        for bad, problem in problems:
            if bad:
                raise ConfigError(where("train config", problem, "fix the value"))

    @property
    def head_spec(self) -> HeadSpec:
        """The head's name and full hyperparameters (defaults filled in)."""
        options = {k: v for k, v in self.head.items() if k != "name"}
        return HeadSpec(self.head["name"], mil_config(self.head["name"], **options))


def load_train_config(source: str | Path | Mapping[str, Any], **overrides: Any) -> TrainConfig:
    """Read a train config (path, packaged name like ``"abmil"``, or mapping); non-None overrides win.

    Raises:
        ConfigError: unreadable file, unknown or mistyped keys, unknown head or head option.

    Example:
        >>> load_train_config("abmil", folds=3).folds
        3
    """
    data = dict(source) if isinstance(source, Mapping) else load_yaml(source)
    head = data.get("head")
    if isinstance(head, Mapping) and head.get("name") in list_mil():
        data = merge(load_yaml(str(head["name"])), data)  # keys a file leaves out come from configs/<head>.yaml
    name = "train config" if isinstance(source, Mapping) else str(source)
    config = from_dict(TrainConfig, merge(data, overrides), name)
    head = config.head_spec
    return dataclasses.replace(config, head={"name": head.name, **head.config})


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_mil` wrote, the pooled out-of-fold metrics, the baseline's and end-of-run warnings."""

    out_dir: Path
    model_dir: Path
    oof_csv: Path
    metrics: dict[str, Any]
    temperature: float
    baseline: dict[str, Any] = dataclasses.field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def train_mil(
    config: TrainConfig | str | Path,
    labels_csv: str | Path,
    features_dir: str | Path,
    out_dir: str | Path,
    folds: int | None = None,
    seed: int | None = None,
) -> TrainResult:
    """Cross-validate, calibrate and train the final model, with the baseline beside it; write the run folder.

    Writes ``out_dir/oof_predictions.csv``, ``metrics.json`` (``pooled_oof``, ``baseline``, ``warnings``,
    ...), ``confusion.png`` (head and baseline side by side) and ``model/{model.safetensors, model.json}``.
    ``folds`` and ``seed`` override the config. A head more than 0.05 balanced accuracy below the
    baseline ends the run with a warning (logged, and in ``warnings``).

    Raises:
        ConfigError: invalid config.
        AnnotationError: malformed labels.
        LiposcopeError: missing or inconsistent feature files, too few patients for the folds.

    Example:
        >>> result = train_mil("configs/abmil.yaml", "labels.csv", "features/", "runs/abmil")  # doctest: +SKIP
        >>> result.metrics["balanced_accuracy"], result.baseline["balanced_accuracy"]  # doctest: +SKIP
        (0.91, 0.93)
    """
    cfg = config if isinstance(config, TrainConfig) else load_train_config(config)
    cfg = dataclasses.replace(cfg, folds=cfg.folds if folds is None else folds, seed=cfg.seed if seed is None else seed)
    cohort = load_cohort(labels_csv, features_dir, cfg.classes)
    fold_of = make_folds(cohort.labels, cohort.patients, cfg.folds, cfg.seed, cfg.classes, str(labels_csv))
    oof_logits, fold_reports, best_epochs = cross_validate(cohort, fold_of, cfg)
    final_epochs = max(1, int(np.median(best_epochs)))
    final = fit_head(list(cohort.bags), [], cfg, cohort.backbone.feature_dim, cfg.seed, epochs=final_epochs)
    temperature = fit_temperature(oof_logits, cohort.labels) if cfg.calibration else 1.0
    calibrated = softmax(oof_logits, temperature)
    pooled_oof = classification_metrics(cohort.labels, softmax(oof_logits), cfg.classes)
    pooled_oof["ece_calibrated"] = expected_calibration_error(cohort.labels, calibrated)
    abstention = abstention_threshold(cohort.labels, calibrated, cfg.abstain_below_accuracy)
    base_probs = baseline_probabilities(
        pooled([b.features for b in cohort.bags]), cohort.labels, fold_of, len(cfg.classes), cfg.seed
    )
    baseline = {"model": DESCRIPTION, **classification_metrics(cohort.labels, base_probs, cfg.classes)}
    gap = gap_warning(pooled_oof["balanced_accuracy"], baseline["balanced_accuracy"], f"{cfg.head_spec.name} head")
    warnings = (gap,) if gap else ()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inputs = {"labels": str(labels_csv), "labels_sha256": sha256_file(labels_csv), "features_dir": str(features_dir)}
    card = _card(cohort, cfg, pooled_oof, temperature, final_epochs, inputs, abstention)
    model_dir = save_model(out / "model", final.module, card)
    oof_csv = _write_oof(out / "oof_predictions.csv", cohort, fold_of, calibrated)
    write_png(out / "confusion.png", _confusion_figure(pooled_oof, baseline, cfg))
    final_model = {"epochs": final_epochs, "n_slides": len(cohort.bags)}
    report = _report(cfg, temperature, pooled_oof, fold_reports, final_model, inputs)
    write_json(out / "metrics.json", {**report, "baseline": baseline, "abstention": abstention, "warnings": warnings})
    log.info("OOF balanced accuracy %s, macro AUROC %s", pooled_oof["balanced_accuracy"], pooled_oof["auroc_macro"])
    log.info("baseline OOF balanced accuracy %s", baseline["balanced_accuracy"])
    for warning in warnings:
        log.warning("%s", warning)
    return TrainResult(out, model_dir, oof_csv, pooled_oof, temperature, baseline, warnings)


def _confusion_figure(head: dict[str, Any], baseline: dict[str, Any], cfg: TrainConfig) -> np.ndarray:
    """The head's and the baseline's out-of-fold confusion matrices side by side."""
    panels = [
        (np.array(m["confusion"]), f"{name}, out-of-fold: balanced accuracy {m['balanced_accuracy']:.3f}")
        for m, name in ((head, f"MIL head {cfg.head_spec.name}"), (baseline, "baseline (logistic regression)"))
    ]
    return draw_confusions(panels, cfg.classes)


def cross_validate(
    cohort: Cohort, fold_of: np.ndarray, cfg: TrainConfig
) -> tuple[np.ndarray, list[dict[str, Any]], list[int]]:
    """Out-of-fold logits (n x c), a metrics report per fold and each fold's best epoch.

    Example:
        >>> logits, reports, epochs = cross_validate(cohort, folds, cfg)  # doctest: +SKIP
    """
    labels, patients = cohort.labels, cohort.patients
    oof = np.zeros((len(labels), len(cfg.classes)), dtype=np.float64)
    reports, best_epochs = [], []
    for k in progress(range(cfg.folds), desc="folds", unit="fold"):
        test, rest = np.flatnonzero(fold_of == k), np.flatnonzero(fold_of != k)
        train, val = rest, rest[:0]  # too few slides to choose an epoch on: the whole schedule on all of them
        if len(rest) * cfg.val_fraction >= cfg.min_val_slides:
            inner_train, inner_val = inner_split(labels[rest], patients[rest], cfg.val_fraction, cfg.seed + k)
            train, val = rest[inner_train], rest[inner_val]
        train_bags, val_bags = [cohort.bags[i] for i in train], [cohort.bags[i] for i in val]
        fit = fit_head(train_bags, val_bags, cfg, cohort.backbone.feature_dim, cfg.seed + k)
        oof[test] = predict_logits(fit.module, [cohort.bags[i] for i in test])
        report = classification_metrics(labels[test], softmax(oof[test]), cfg.classes)
        sizes = {"n_train": len(train_bags), "n_val": len(val_bags), "n_test": len(test)}
        epochs = {"best_epoch": fit.best_epoch, "left_chance_epoch": fit.left_chance_epoch}
        reports.append({"fold": k, **sizes, **epochs, **report})
        best_epochs.append(fit.best_epoch)
        log.info("fold %d: best epoch %d, balanced accuracy %s", k, fit.best_epoch, report["balanced_accuracy"])
    return oof, reports, best_epochs


def _report(
    cfg: TrainConfig,
    temperature: float,
    pooled: dict[str, Any],
    folds: list[dict[str, Any]],
    final_model: dict[str, int],
    inputs: dict[str, str],
) -> dict[str, Any]:
    """The contents of ``metrics.json``."""
    return {
        "oof_probabilities": f"calibrated (temperature {temperature:.4f})" if cfg.calibration else "uncalibrated",
        "metrics_probabilities": "uncalibrated softmax; pooled_oof.ece_calibrated uses the temperature",
        "temperature": temperature,
        "pooled_oof": pooled,
        "folds": folds,
        "final_model": final_model,
        "config": to_dict(cfg),
        "provenance": provenance(**inputs),
    }


def _card(
    cohort: Cohort,
    cfg: TrainConfig,
    pooled: dict[str, Any],
    temperature: float,
    epochs: int,
    inputs: dict[str, str],
    abstention: dict[str, float],
) -> ModelCard:
    means = np.stack([b.features.double().mean(dim=0).numpy() for b in cohort.bags])  # slides x d
    stains = [b.stain for b in cohort.bags if b.stain]
    mpps = [b.slide_mpp for b in cohort.bags if b.slide_mpp > 0]
    summary = {k: pooled[k] for k in ("n", "balanced_accuracy", "auroc_macro", "f1_per_class", "ece")}
    return ModelCard(
        kind="mil",
        classes=cfg.classes,
        head=cfg.head_spec,
        backbone=cohort.backbone,
        tiling=cohort.tiling,
        tissue=cohort.tissue,
        metrics={"oof": summary, "folds": cfg.folds},
        calibration={"temperature": temperature},
        ood=OODStats.fit(means),
        stain=OODStats.fit(np.array(stains), max_components=3) if len(stains) == len(cohort.bags) else None,
        training={
            "config": to_dict(cfg),
            "seed": cfg.seed,
            "final_epochs": epochs,
            "slide_mpp": [min(mpps), float(np.median(mpps)), max(mpps)] if mpps else None,
            **inputs,
        },
        standardisation={"method": METHOD, "fitted_on": f"tiles of the {len(cohort.bags)} training slides"},
        abstention=abstention,
    )


def _write_oof(path: Path, cohort: Cohort, fold_of: np.ndarray, probs: np.ndarray) -> Path:
    """``slide_id,patient_id,label,fold,pred,p_<CLASS>...``, one row per slide."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["slide_id", "patient_id", "label", "fold", "pred", *(f"p_{c}" for c in cohort.classes)])
        for bag, fold, p in zip(cohort.bags, fold_of, probs, strict=True):
            pred = cohort.classes[int(p.argmax())]
            writer.writerow(
                [bag.slide_id, bag.patient_id, cohort.classes[bag.label], int(fold), pred, *(f"{v:.6f}" for v in p)]
            )
    return path
