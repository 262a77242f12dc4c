"""Cross-validate a MIL head on a cohort of feature bags, calibrate it and save the final model.

Protocol. Slides are split into K folds grouped by patient and stratified by label. For fold k
the model trains on the other folds, minus an inner validation split (patient-grouped, about
``val_fraction`` of them) that picks the epoch by validation loss with early stopping; fold k
itself is only ever predicted, so every out-of-fold (OOF) prediction comes from a model that
never saw that slide, neither for training nor for stopping. A softmax temperature is then
fitted on the pooled OOF logits, and a final model is trained on all slides for the median best
epoch of the folds.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from liposcope.config import from_dict, load_yaml, merge, to_dict
from liposcope.errors import ConfigError, where
from liposcope.io import atomic_path, provenance, sha256_file, write_json, write_png
from liposcope.progress import progress
from training.checkpoint import HeadSpec, ModelCard, OODStats, save_model
from training.data import Cohort, SlideBag, inner_split, load_cohort, make_folds
from training.metrics import (
    classification_metrics,
    draw_confusion,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from training.mil import create_mil, list_mil, mil_config

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
    batch_size: int = 1
    max_tiles: int = 512
    class_balance: str = "weighted_loss"
    val_fraction: float = 0.2
    calibration: bool = True
    threads: int = 1

    def __post_init__(self) -> None:
        problems = [
            (len(self.classes) < 2 or len(set(self.classes)) != len(self.classes), "classes must be 2+ distinct names"),
            (self.folds < 2, f"folds {self.folds} must be at least 2"),
            (not 1 <= self.min_epochs <= self.max_epochs, "min_epochs must be in [1, max_epochs]"),
            (self.patience < 1, "patience must be at least 1"),
            (self.lr <= 0 or self.weight_decay < 0, "lr must be positive and weight_decay non-negative"),
            (min(self.batch_size, self.threads) < 1 or self.max_tiles < 0, "batch_size and threads must be >= 1"),
            (self.class_balance not in BALANCING, f"class_balance must be one of {', '.join(BALANCING)}"),
            (not 0.0 < self.val_fraction < 1.0, f"val_fraction {self.val_fraction} must be in (0, 1)"),
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
class FitResult:
    """A trained head (weights of its best epoch) and its per-epoch losses."""

    module: nn.Module
    best_epoch: int
    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_mil` wrote and the pooled out-of-fold metrics."""

    out_dir: Path
    model_dir: Path
    oof_csv: Path
    metrics: dict[str, Any]
    temperature: float


def train_mil(
    config: TrainConfig | str | Path,
    labels_csv: str | Path,
    features_dir: str | Path,
    out_dir: str | Path,
    folds: int | None = None,
    seed: int | None = None,
) -> TrainResult:
    """Cross-validate, calibrate and train the final model; write the run folder.

    Writes ``out_dir/oof_predictions.csv``, ``metrics.json``, ``confusion.png`` and
    ``model/{model.safetensors, model.json}``. ``folds`` and ``seed`` override the config.

    Raises:
        ConfigError: invalid config.
        AnnotationError: malformed labels.
        LiposcopeError: missing or inconsistent feature files, too few patients for the folds.

    Example:
        >>> result = train_mil("configs/abmil.yaml", "labels.csv", "features/", "runs/abmil")  # doctest: +SKIP
        >>> result.metrics["balanced_accuracy"]  # doctest: +SKIP
        0.91
    """
    cfg = config if isinstance(config, TrainConfig) else load_train_config(config)
    cfg = dataclasses.replace(cfg, folds=cfg.folds if folds is None else folds, seed=cfg.seed if seed is None else seed)
    cohort = load_cohort(labels_csv, features_dir, cfg.classes)
    fold_of = make_folds(cohort.labels, cohort.patients, cfg.folds, cfg.seed, cfg.classes, str(labels_csv))
    oof_logits, fold_reports, best_epochs = cross_validate(cohort, fold_of, cfg)
    final_epochs = max(1, int(np.median(best_epochs)))
    final = fit_head(list(cohort.bags), [], cfg, cohort.backbone.feature_dim, cfg.seed, epochs=final_epochs)
    temperature = fit_temperature(oof_logits, cohort.labels) if cfg.calibration else 1.0
    pooled = classification_metrics(cohort.labels, softmax(oof_logits), cfg.classes)
    pooled["ece_calibrated"] = expected_calibration_error(cohort.labels, softmax(oof_logits, temperature))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inputs = {"labels": str(labels_csv), "labels_sha256": sha256_file(labels_csv), "features_dir": str(features_dir)}
    model_dir = save_model(out / "model", final.module, _card(cohort, cfg, pooled, temperature, final_epochs, inputs))
    oof_csv = _write_oof(out / "oof_predictions.csv", cohort, fold_of, softmax(oof_logits, temperature))
    write_png(out / "confusion.png", draw_confusion(np.array(pooled["confusion"]), cfg.classes, "out-of-fold"))
    final_model = {"epochs": final_epochs, "n_slides": len(cohort.bags)}
    write_json(out / "metrics.json", _report(cfg, temperature, pooled, fold_reports, final_model, inputs))
    log.info("OOF balanced accuracy %s, macro AUROC %s", pooled["balanced_accuracy"], pooled["auroc_macro"])
    return TrainResult(out, model_dir, oof_csv, pooled, temperature)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` intra-op CPU threads inside the block, then restore the previous number.

    Example:
        >>> with torch_threads(1):
        ...     pass
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
        inner_train, inner_val = inner_split(labels[rest], patients[rest], cfg.val_fraction, cfg.seed + k)
        train_bags = [cohort.bags[i] for i in rest[inner_train]]
        val_bags = [cohort.bags[i] for i in rest[inner_val]]
        fit = fit_head(train_bags, val_bags, cfg, cohort.backbone.feature_dim, cfg.seed + k)
        oof[test] = predict_logits(fit.module, [cohort.bags[i] for i in test])
        report = classification_metrics(labels[test], softmax(oof[test]), cfg.classes)
        sizes = {"n_train": len(train_bags), "n_val": len(val_bags), "n_test": len(test)}
        reports.append({"fold": k, **sizes, "best_epoch": fit.best_epoch, **report})
        best_epochs.append(fit.best_epoch)
        log.info("fold %d: best epoch %d, balanced accuracy %s", k, fit.best_epoch, report["balanced_accuracy"])
    return oof, reports, best_epochs


def fit_head(
    train: Sequence[SlideBag],
    val: Sequence[SlideBag],
    cfg: TrainConfig,
    in_dim: int,
    seed: int,
    epochs: int | None = None,
) -> FitResult:
    """Train a fresh head with AdamW; early-stop on ``val`` loss, or run ``epochs`` when ``val`` is empty.

    Example:
        >>> fit = fit_head(train_bags, val_bags, cfg, in_dim=384, seed=0)  # doctest: +SKIP
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    head = cfg.head_spec
    module = create_mil(head.name, in_dim, len(cfg.classes), **head.config)
    optimiser = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss(weight=_class_weights(train, len(cfg.classes), cfg.class_balance))
    best_state, best_epoch, best_loss, train_loss, val_loss = None, 0, float("inf"), [], []
    with torch_threads(cfg.threads):
        for epoch in range(1, (epochs or cfg.max_epochs) + 1):
            train_loss.append(_train_epoch(module, optimiser, loss_fn, train, cfg, generator))
            if not val:
                best_epoch = epoch
                continue
            logits = torch.from_numpy(predict_logits(module, val)).float()
            val_loss.append(float(loss_fn(logits, torch.tensor([b.label for b in val]))))
            if val_loss[-1] < best_loss:
                best_state, best_epoch, best_loss = copy.deepcopy(module.state_dict()), epoch, val_loss[-1]
            elif epoch >= cfg.min_epochs and epoch - best_epoch >= cfg.patience:
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    return FitResult(module.eval(), best_epoch, tuple(train_loss), tuple(val_loss))


def _class_weights(bags: Sequence[SlideBag], n_classes: int, balance: str) -> torch.Tensor:
    """Inverse-frequency class weights (n / (c * count)), zero for absent classes; ones for 'none'."""
    counts = np.bincount([b.label for b in bags], minlength=n_classes).astype(np.float64)
    if balance == "none":
        return torch.ones(n_classes)
    weights = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def _train_epoch(
    module: nn.Module,
    optimiser: torch.optim.Optimizer,
    loss_fn: nn.Module,
    bags: Sequence[SlideBag],
    cfg: TrainConfig,
    generator: torch.Generator,
) -> float:
    """One pass over shuffled minibatches of (subsampled) bags; returns the mean loss."""
    module.train()
    total = 0.0
    for x, mask, y in _batches(bags, cfg.batch_size, cfg.max_tiles, generator):
        loss = loss_fn(module(x, mask).logits, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += loss.item() * len(y)
    return total / len(bags)


def _batches(
    bags: Sequence[SlideBag], batch_size: int, max_tiles: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Shuffled minibatches of subsampled bags: x (b x n x d), mask (b x n), labels (b)."""
    order = torch.randperm(len(bags), generator=generator).tolist()
    for start in range(0, len(order), batch_size):
        chosen = [bags[i] for i in order[start : start + batch_size]]
        x, mask = _pad([_subsample(b.features, max_tiles, generator) for b in chosen])
        yield x, mask, torch.tensor([b.label for b in chosen])


def _pad(feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad bags (n_i x d) to one batch x (b x n x d) with its mask (b x n, True = real tile)."""
    n_max, dim = max(len(f) for f in feats), feats[0].shape[1]
    x = torch.zeros(len(feats), n_max, dim)  # b x n x d
    mask = torch.zeros(len(feats), n_max, dtype=torch.bool)  # b x n
    for i, f in enumerate(feats):
        x[i, : len(f)], mask[i, : len(f)] = f, True
    return x, mask


def _subsample(features: torch.Tensor, max_tiles: int, generator: torch.Generator) -> torch.Tensor:
    """At most ``max_tiles`` random tiles of a bag (all when ``max_tiles`` is 0)."""
    if max_tiles == 0 or len(features) <= max_tiles:
        return features
    return features[torch.randperm(len(features), generator=generator)[:max_tiles]]


def predict_logits(module: nn.Module, bags: Sequence[SlideBag], batch_size: int = 8) -> np.ndarray:
    """Slide logits (n x c) of whole bags in eval mode (padded batches; the mask makes padding exact).

    Example:
        >>> probs = softmax(predict_logits(head, bags), card.temperature)  # doctest: +SKIP
    """
    module.eval()
    rows = []
    with torch.no_grad():
        for start in range(0, len(bags), batch_size):
            x, mask = _pad([b.features for b in bags[start : start + batch_size]])
            rows.append(module(x, mask).logits.double().numpy())  # b x c
    return np.concatenate(rows)


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
    cohort: Cohort, cfg: TrainConfig, pooled: dict[str, Any], temperature: float, epochs: int, inputs: dict[str, str]
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
