"""Fine-tune a timm backbone on tile images (the ``liposcope tile --save-images`` layout).

Tiles inherit their slide's label (or a per-tile label from a CSV of region annotations), validation
is split by patient, and batches get HED stain jitter, flips and 90° rotations. Optimisation follows
the MIL recipe (:mod:`training.schedule`: warm-up, cosine schedule, gradient clipping, no early stop
before the model has left chance on its training tiles); input normalisation stays the backbone's own.
The best model (by validation balanced accuracy) is saved in the project's checkpoint format; its
weights file is what ``liposcope features --weights`` takes. A baseline, logistic regression on
the initial backbone's frozen features of the same tiles, is reported beside it.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from liposcope.errors import AnnotationError, where
from liposcope.io import provenance, write_json
from liposcope.models.augment import flip_rotate, hed_jitter
from liposcope.models.backbones import Backbone, create_backbone
from liposcope.models.card import HeadSpec, ModelCard, save_model
from liposcope.models.encode import pick_device
from liposcope.progress import progress
from liposcope.training.baseline import fit_predict, gap_warning
from liposcope.training.data import inner_split, read_labels
from liposcope.training.metrics import classification_metrics
from liposcope.training.schedule import clipped_step, left_chance, warmup_schedule
from liposcope.training.settings import TileTrainConfig
from liposcope.wsi.grid import TileGrid
from liposcope.wsi.tiling import TILE_IMAGES, TILES_H5

log = logging.getLogger(__name__)


class _TileImages(Dataset[tuple[torch.Tensor, int]]):
    def __init__(self, items: list[tuple[Path, int]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise AnnotationError(where(path, "not a readable image", "re-run `liposcope tile --save-images`"))
        return torch.from_numpy(np.ascontiguousarray(image[..., ::-1])).permute(2, 0, 1), label


def collect_tiles(
    tiles_dir: Path, labels_csv: Path, cfg: TileTrainConfig, tile_labels: Path | None
) -> tuple[list[tuple[Path, int]], list[str], list[str]]:
    """(image, class index) pairs, and each pair's slide and patient, capped per slide (seeded)."""
    rows = read_labels(labels_csv, cfg.classes)
    overrides = _read_tile_labels(tile_labels, cfg.classes) if tile_labels else {}
    rng = np.random.default_rng(cfg.seed)
    items: list[tuple[Path, int]] = []
    slides: list[str] = []
    patients: list[str] = []
    for row in rows:
        images = sorted((tiles_dir / row.slide_id / TILE_IMAGES).glob("*.jpg"))
        if not images:
            msg = where(tiles_dir / row.slide_id, "no tile images", "run `liposcope tile --save-images` on this slide")
            raise AnnotationError(msg)
        if len(images) > cfg.max_tiles_per_slide:
            images = [images[i] for i in np.sort(rng.choice(len(images), cfg.max_tiles_per_slide, replace=False))]
        for image in images:
            label = overrides.get((row.slide_id, image.stem), row.label)
            items.append((image, cfg.classes.index(label)))
            slides.append(row.slide_id)
            patients.append(row.patient_id)
    return items, slides, patients


def _read_tile_labels(path: Path, classes: tuple[str, ...]) -> dict[tuple[str, str], str]:
    """``slide_id,x,y,label`` rows → {(slide_id, "x<X>_y<Y>"): label}."""
    out = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                key = (row["slide_id"], f"x{int(row['x'])}_y{int(row['y'])}")
            except (KeyError, ValueError, TypeError) as exc:
                raise AnnotationError(where(f"{path}:{line}", "expected slide_id,x,y,label", "fix the row")) from exc
            if row.get("label") not in classes:
                raise AnnotationError(where(f"{path}:{line}", f"unknown label {row.get('label')!r}", f"use {classes}"))
            out[key] = row["label"]
    return out


def train_tiles(
    tiles_dir: str | Path,
    labels_csv: str | Path,
    out_dir: str | Path,
    cfg: TileTrainConfig,
    *,
    tile_labels: str | Path | None = None,
    kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune ``cfg.backbone`` on tiles; write ``OUT/model/`` and ``OUT/metrics.json``; return the metrics.

    Example:
        >>> train_tiles("tiles", "labels.csv", "run", TileTrainConfig("resnet18"))  # doctest: +SKIP
    """
    torch.manual_seed(cfg.seed)
    items, slides, patients = collect_tiles(Path(tiles_dir), Path(labels_csv), cfg, _path(tile_labels))
    slide_ids = sorted(set(slides))
    slide_label = {s: lab for (_, lab), s in zip(items, slides, strict=True)}
    slide_patient = dict(zip(slides, patients, strict=True))
    train_pos, val_pos = inner_split(
        np.array([slide_label[s] for s in slide_ids]),
        np.array([slide_patient[s] for s in slide_ids]),
        cfg.val_fraction,
        cfg.seed,
    )
    val_slides = {slide_ids[i] for i in val_pos}
    train_items = [it for it, s in zip(items, slides, strict=True) if s not in val_slides]
    val_items = [it for it, s in zip(items, slides, strict=True) if s in val_slides]
    backbone = create_backbone(cfg.backbone, cfg.weights, kwargs=kwargs, seed=cfg.seed)
    device = pick_device(cfg.device)
    baseline = _linear_probe(backbone, train_items, val_items, cfg, device) if cfg.baseline else None
    backbone.model.reset_classifier(len(cfg.classes))  # type: ignore[operator]
    best, history = _fit(backbone, train_items, val_items, cfg, device)
    backbone.model.load_state_dict(best["state"])
    card = ModelCard(
        kind="tile-classifier",
        classes=cfg.classes,
        head=HeadSpec("linear", {}),
        backbone=backbone.spec,
        tiling=TileGrid.load(Path(tiles_dir) / slide_ids[0] / TILES_H5).spec,
        metrics=best["metrics"],
        training={
            "config": asdict(cfg),
            "kwargs": kwargs or {},
            "train_slides": len(train_pos),
            "val_slides": sorted(val_slides),
            "history": history,
        },
    )
    save_model(Path(out_dir) / "model", backbone.model.cpu(), card)
    gap = gap_warning(
        best["metrics"]["balanced_accuracy"],
        (baseline or {}).get("balanced_accuracy"),
        "fine-tuned backbone",
        "Try more --epochs, a lower --lr, or less --stain-jitter.",
    )
    if gap:
        log.warning("%s", gap)
    report = {
        "best_epoch": best["epoch"],
        "validation": best["metrics"],
        "baseline": baseline,
        "warnings": [gap] if gap else [],
        "history": history,
    }
    write_json(Path(out_dir) / "metrics.json", {**report, "provenance": provenance(config=asdict(cfg))})
    return report


def _path(value: str | Path | None) -> Path | None:
    return Path(value) if value is not None else None


def _fit(
    backbone: Backbone,
    train_items: list[tuple[Path, int]],
    val_items: list[tuple[Path, int]],
    cfg: TileTrainConfig,
    device: torch.device,
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Train with early stopping on validation balanced accuracy; return the best state and the history."""
    model = backbone.model.to(device)
    counts = np.bincount([label for _, label in train_items], minlength=len(cfg.classes))
    weight = torch.tensor(len(train_items) / np.maximum(counts, 1) / len(cfg.classes), dtype=torch.float32)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    steps = max(1, len(train_items) // cfg.batch_size)
    scheduler = warmup_schedule(optimiser, cfg.warmup_epochs * steps, cfg.epochs * steps, cfg.schedule)
    loader = DataLoader(
        _TileImages(train_items),
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=cfg.workers,
        generator=generator,
        drop_last=len(train_items) > cfg.batch_size,
    )
    best: dict[str, Any] = {"score": -1.0}
    history: list[dict[str, float]] = []
    left = False
    for epoch in progress(range(cfg.epochs), total=cfg.epochs, desc="train-tiles", unit="epoch"):
        model.train()
        losses, truth, preds = [], [], []
        for tiles, labels in loader:
            tiles = hed_jitter(tiles, sigma=cfg.stain_jitter, vector_sigma=cfg.stain_jitter / 2, generator=generator)
            tiles = flip_rotate(tiles, generator=generator)
            logits = model(backbone.prepare(tiles.to(device)))
            loss = F.cross_entropy(logits, labels.to(device), weight=weight.to(device))
            clipped_step(model, optimiser, loss, cfg.grad_clip)
            scheduler.step()
            losses.append(loss.item())
            truth.append(labels.numpy())
            preds.append(logits.argmax(dim=1).cpu().numpy())
        left = left or left_chance(np.concatenate(truth), np.concatenate(preds), len(cfg.classes), cfg.chance_margin)
        metrics = _evaluate(backbone, val_items, cfg, device)
        bacc = metrics["balanced_accuracy"]
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_bacc": bacc})
        log.info("epoch %d: loss %.3f, validation balanced accuracy %.3f", epoch, history[-1]["train_loss"], bacc)
        if bacc > best["score"]:
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best = {"score": bacc, "epoch": epoch, "state": state, "metrics": metrics}
        elif left and epoch - best["epoch"] >= cfg.patience:
            break
    return best, history


@torch.inference_mode()
def _linear_probe(
    backbone: Backbone,
    train_items: list[tuple[Path, int]],
    val_items: list[tuple[Path, int]],
    cfg: TileTrainConfig,
    device: torch.device,
) -> dict[str, Any]:
    """The baseline: logistic regression on the initial backbone's frozen features, scored on the validation tiles."""
    model = backbone.model.to(device).eval()
    encoded = []
    for items in (train_items, val_items):
        loader = DataLoader(_TileImages(items), batch_size=cfg.batch_size, num_workers=cfg.workers)
        encoded.append(
            np.concatenate([model(backbone.prepare(t.to(device))).double().cpu().numpy() for t, _ in loader])
        )
    y_train, y_val = (np.array([label for _, label in items]) for items in (train_items, val_items))
    probs = fit_predict(encoded[0], y_train, encoded[1], len(cfg.classes), cfg.seed)
    text = "logistic regression (L2, C=1, class-balanced) on the initial backbone's standardised tile features"
    return {"model": text, **classification_metrics(y_val, probs, cfg.classes)}


@torch.inference_mode()
def _evaluate(
    backbone: Backbone, items: list[tuple[Path, int]], cfg: TileTrainConfig, device: torch.device
) -> dict[str, Any]:
    backbone.model.eval()
    loader = DataLoader(_TileImages(items), batch_size=cfg.batch_size, num_workers=cfg.workers)
    probs, truth = [], []
    for tiles, labels in loader:
        logits = backbone.model(backbone.prepare(tiles.to(device)))
        probs.append(torch.softmax(logits, dim=1).cpu().numpy())
        truth.append(labels.numpy())
    return classification_metrics(np.concatenate(truth), np.concatenate(probs), cfg.classes)
