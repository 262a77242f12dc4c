"""``train_mitosis``: slides + point annotations in, a mitosis patch classifier out.

Candidates come from the same stage 1 as inference. A candidate within ``match_um`` of an annotated
figure is positive; near an annotated look-alike it is a hard negative; any other is an ordinary
negative. Each epoch trains on all positives and hard negatives plus ordinary negatives, half of
them the ones the current model scores highest (hard-negative mining), half at random; patches are
flipped, rotated, stain-jittered (HED), zoomed by up to ±``scale_jitter``, blurred and given noise, the spread
the synthetic generator randomises over. Validation slides are run end to end (threshold, NMS, matching)
and the threshold with the best F1 is stored in the model card.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial import cKDTree

from liposcope.errors import AnnotationError, where
from liposcope.io import provenance, write_json
from liposcope.mitoses.annotations import MITOSIS, PointAnnotations, read_annotations
from liposcope.mitoses.detect import (
    CLASSES,
    KIND,
    Candidates,
    Detector,
    cut_patches,
    stream_candidates,
    suppress,
)
from liposcope.mitoses.settings import MitosisSettings, MitosisTrainConfig
from liposcope.models.augment import flip_rotate, hed_jitter, scale_blur_noise
from liposcope.models.backbones import create_backbone
from liposcope.models.card import HeadSpec, ModelCard, save_model
from liposcope.models.encode import pick_device
from liposcope.progress import progress
from liposcope.wsi.grid import TileSpec
from liposcope.wsi.points import f1_score, match_points
from liposcope.wsi.slide import Slide, slide_id_from_path
from liposcope.wsi.stain import estimate_background
from liposcope.wsi.tissue import TissueParams, detect_tissue

log = logging.getLogger(__name__)
_THRESHOLDS = np.round(np.arange(0.05, 0.99, 0.05), 2)


@dataclass(frozen=True)
class SlideSamples:
    """Patches of one slide with labels; ``truth_um`` are its annotated figures (µm) for F1."""

    slide_id: str
    mpp: float
    xy: np.ndarray
    patches: np.ndarray
    label: np.ndarray
    hard: np.ndarray
    candidate: np.ndarray
    truth_um: np.ndarray


def collect_samples(
    path: Path,
    annotations: PointAnnotations,
    settings: MitosisSettings,
    cfg: MitosisTrainConfig,
    *,
    keep_all: bool,
    slide_mpp: float | None = None,
) -> SlideSamples:
    """Labelled candidate patches of one slide; annotated points no candidate reaches are added as patches
    of their own. ``keep_all`` keeps every ordinary negative (validation), else ``cfg.pool_per_slide``."""
    rng = np.random.default_rng([cfg.seed, len(path.name)])
    with Slide(path, mpp=slide_mpp) as slide:
        ann_xy, ann_label = annotations.for_slide(slide.slide_id)
        mask, thumbnail = detect_tissue(slide)
        background = estimate_background(thumbnail)
        box = (0.0, 0.0, float(slide.dimensions[0]), float(slide.dimensions[1]))
        found = Candidates.concat(
            list(stream_candidates(slide, mask, box, settings, background, desc=f"{slide.slide_id} candidates")),
            settings.patch_px,
        )
        xy, patches = found.xy, found.patches
        near_label, reached = _nearest_label(xy * slide.mpp, ann_xy * slide.mpp, ann_label, cfg.match_um)
        label = (near_label == MITOSIS).astype(np.int8)
        hard = near_label == 0
        ordinary = np.flatnonzero(near_label < 0)
        if not keep_all and len(ordinary) > cfg.pool_per_slide:
            drop = np.setdiff1d(ordinary, rng.choice(ordinary, cfg.pool_per_slide, replace=False))
            keep = np.ones(len(xy), bool)
            keep[drop] = False
            xy, patches, label, hard = xy[keep], patches[keep], label[keep], hard[keep]
        candidate = np.ones(len(xy), bool)
        missed = np.flatnonzero(~reached)
        if len(missed) and not keep_all:
            extra = np.concatenate([_patch_at(slide, p, settings) for p in ann_xy[missed]])
            xy = np.concatenate([xy, ann_xy[missed]])
            patches = np.concatenate([patches, extra])
            label = np.concatenate([label, (ann_label[missed] == MITOSIS).astype(np.int8)])
            hard = np.concatenate([hard, ann_label[missed] != MITOSIS])
            candidate = np.concatenate([candidate, np.zeros(len(missed), bool)])
        truth_um = ann_xy[ann_label == MITOSIS] * slide.mpp
        return SlideSamples(slide.slide_id, slide.mpp, xy, patches, label, hard, candidate, truth_um)


def _nearest_label(
    xy_um: np.ndarray, ann_um: np.ndarray, ann_label: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Label of the nearest annotation within ``radius`` per candidate (-1: none), and per annotation
    whether any candidate lies within ``radius``."""
    near = np.full(len(xy_um), -1, np.int64)
    reached = np.zeros(len(ann_um), bool)
    if len(xy_um) == 0 or len(ann_um) == 0:
        return near, reached
    dist, index = cKDTree(ann_um).query(xy_um, distance_upper_bound=radius)
    hit = np.isfinite(dist)
    near[hit] = ann_label[index[hit]]
    reached[np.unique(index[hit])] = True
    return near, reached


def _patch_at(slide: Slide, xy: np.ndarray, settings: MitosisSettings) -> np.ndarray:
    mpp = max(settings.analysis_mpp, slide.mpp)
    side = settings.patch_px
    scale = mpp / slide.mpp
    origin = (round(xy[0] - side / 2 * scale), round(xy[1] - side / 2 * scale))
    rgb = slide.read_region_at_mpp(origin, (side, side), mpp)
    return cut_patches(rgb, np.array([[side / 2, side / 2]]), side)


def train_mitosis(
    slides: list[Path],
    annotation_files: list[Path],
    out_dir: str | Path,
    cfg: MitosisTrainConfig,
    settings: MitosisSettings,
    *,
    slide_mpp: float | None = None,
) -> dict[str, Any]:
    """Train the stage-2 classifier; write ``OUT/model/`` (project checkpoint format) and ``OUT/metrics.json``.

    Raises:
        AnnotationError: a slide has no annotations or points off its level-0 pixels, or fewer than two
            slides are given.

    Example:
        >>> train_mitosis(slides, [Path("points.csv")], "run", MitosisTrainConfig(), load_settings())  # doctest: +SKIP
    """
    parts = [read_annotations(p) for p in annotation_files]
    annotations = _merge(parts)
    known = set(annotations.slide_ids)
    for path in slides:
        if slide_id_from_path(path) not in known:
            fix = "add its points to an annotation file or leave the slide out"
            raise AnnotationError(where(path, "no annotations for this slide", fix))
    if len(slides) < 2:
        raise AnnotationError(where(slides[0] if slides else "slides", "need at least 2 slides", "add slides"))
    for path in slides:
        with Slide(path, mpp=slide_mpp) as slide:
            for part in parts:
                part.check_on_slide(slide.slide_id, path, *slide.dimensions)
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(slides))
    n_val = max(1, round(cfg.val_fraction * len(slides)))
    val_paths = [slides[i] for i in sorted(order[:n_val])]
    train_paths = [slides[i] for i in sorted(order[n_val:])]
    train = [collect_samples(p, annotations, settings, cfg, keep_all=False, slide_mpp=slide_mpp) for p in train_paths]
    val = [collect_samples(p, annotations, settings, cfg, keep_all=True, slide_mpp=slide_mpp) for p in val_paths]
    torch.manual_seed(cfg.seed)
    backbone = create_backbone(cfg.backbone, cfg.weights, seed=cfg.seed)
    backbone.model.reset_classifier(len(CLASSES))  # type: ignore[operator]
    card = ModelCard(
        kind=KIND,
        classes=CLASSES,
        head=HeadSpec("linear", {}),
        backbone=backbone.spec,
        tiling=TileSpec(settings.analysis_mpp, settings.patch_px, 0, 0.0),
    )
    detector = Detector(backbone, card, "training")
    best, history = fit_classifier(detector, train, val, cfg, settings)
    backbone.model.load_state_dict(best["state"])
    final = ModelCard(
        kind=KIND,
        classes=CLASSES,
        head=HeadSpec("linear", {}),
        backbone=backbone.spec,
        tiling=card.tiling,
        tissue=TissueParams.default(),  # what collect_samples detected tissue with
        metrics=best["metrics"],
        calibration={"temperature": 1.0, "threshold": best["metrics"]["threshold"]},
        training={
            "config": asdict(cfg),
            "candidates": asdict(settings.candidates),
            "nms_um": settings.nms_um,
            "train_slides": [s.slide_id for s in train],
            "val_slides": [s.slide_id for s in val],
            "annotations": [str(p) for p in annotation_files],
            "samples": {
                "positive": int(sum(int(s.label.sum()) for s in train)),
                "hard_negative": int(sum(int(s.hard.sum()) for s in train)),
                "ordinary_negative_pool": int(sum(int((~s.hard & (s.label == 0)).sum()) for s in train)),
            },
            "history": history,
        },
    )
    save_model(Path(out_dir) / "model", backbone.model.cpu(), final)
    report = {"best_epoch": best["epoch"], "validation": best["metrics"], "history": history}
    write_json(Path(out_dir) / "metrics.json", {**report, "provenance": provenance(config=asdict(cfg))})
    return report


def _merge(parts: list[PointAnnotations]) -> PointAnnotations:
    ids = tuple(dict.fromkeys(s for p in parts for s in p.slide_ids))
    return PointAnnotations(
        ids,
        np.concatenate([p.slide for p in parts]),
        np.concatenate([p.xy for p in parts]).reshape(-1, 2),
        np.concatenate([p.label for p in parts]).astype(np.int8),
        ",".join(p.source for p in parts),
    )


def fit_classifier(
    detector: Detector,
    train: list[SlideSamples],
    val: list[SlideSamples],
    cfg: MitosisTrainConfig,
    settings: MitosisSettings,
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Train ``detector`` on the ``train`` patches for ``cfg.epochs``; the epoch with the best F1 on ``val``
    wins. Returns it (``state``, ``metrics``, ``epoch``) and the history."""
    model = detector.backbone.model.to(pick_device(cfg.device))
    patches = np.concatenate([s.patches for s in train])
    label = np.concatenate([s.label for s in train])
    hard = np.concatenate([s.hard for s in train])
    positive, hard_idx = np.flatnonzero(label == 1), np.flatnonzero(hard)
    ordinary = np.flatnonzero((label == 0) & ~hard)
    if len(positive) == 0:
        raise AnnotationError(where("training slides", "no annotated mitotic figure was found", "add figures"))
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(cfg.epochs, 1))
    generator = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    best: dict[str, Any] = {"score": -1.0, "epoch": -1}
    history: list[dict[str, float]] = []
    n_neg = min(len(ordinary), round(cfg.negatives_per_positive * len(positive)))
    for epoch in progress(range(cfg.epochs), total=cfg.epochs, desc="train-mitosis", unit="epoch"):
        hardest = _mine(detector, patches, ordinary, n_neg, rng, settings) if epoch else np.zeros(0, np.int64)
        rest = np.setdiff1d(ordinary, hardest)
        chosen = np.concatenate([positive, hard_idx, hardest, rng.choice(rest, n_neg - len(hardest), replace=False)])
        loss = _epoch(detector, patches, label, rng.permutation(chosen), optimiser, generator, cfg)
        scheduler.step()
        metrics = evaluate(detector, val, settings, cfg.match_um)
        history.append({"epoch": epoch, "train_loss": loss, "val_f1": metrics["f1"]})
        log.info("epoch %d: loss %.3f, validation F1 %.3f", epoch, loss, metrics["f1"])
        if metrics["f1"] > best["score"]:
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best = {"score": metrics["f1"], "epoch": epoch, "state": state, "metrics": metrics}
    return best, history


def _mine(
    detector: Detector,
    patches: np.ndarray,
    ordinary: np.ndarray,
    n_neg: int,
    rng: np.random.Generator,
    settings: MitosisSettings,
) -> np.ndarray:
    """Hard-negative mining: the ``n_neg // 2`` ordinary negatives the model scores highest, among a
    random share of the pool (``4 × n_neg``) so that an epoch does not score every patch."""
    sample = rng.choice(ordinary, min(len(ordinary), 4 * n_neg), replace=False)
    scores = detector.score(patches[sample], settings.batch_size)
    out: np.ndarray = sample[np.argsort(-scores)[: n_neg // 2]]
    return out


def _epoch(
    detector: Detector,
    patches: np.ndarray,
    label: np.ndarray,
    order: np.ndarray,
    optimiser: torch.optim.Optimizer,
    generator: torch.Generator,
    cfg: MitosisTrainConfig,
) -> float:
    model = detector.backbone.model
    device = next(model.parameters()).device
    model.train()
    losses = []
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start : start + cfg.batch_size]
        if len(idx) < 2:
            continue
        tiles = torch.from_numpy(patches[idx])
        tiles = hed_jitter(tiles, sigma=cfg.stain_jitter, vector_sigma=cfg.stain_jitter / 2, generator=generator)
        tiles = flip_rotate(tiles, generator=generator)
        tiles = scale_blur_noise(
            tiles, scale=cfg.scale_jitter, blur_px=cfg.blur_px, noise=cfg.noise, generator=generator
        )
        logits = model(detector.backbone.prepare(tiles.to(device)))
        loss = F.cross_entropy(logits, torch.from_numpy(label[idx]).long().to(device))
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    return float(np.mean(losses)) if losses else 0.0


def evaluate(
    detector: Detector, slides: list[SlideSamples], settings: MitosisSettings, match_um: float
) -> dict[str, Any]:
    """Detection F1 by slide over candidate thresholds; the threshold with the best pooled F1 wins."""
    probs = [detector.score(s.patches[s.candidate], settings.batch_size) for s in slides]
    best: dict[str, Any] = {"f1": -1.0}
    for t in _THRESHOLDS:
        counts = []
        for s, p in zip(slides, probs, strict=True):
            xy_um = s.xy[s.candidate][p >= t] * s.mpp
            kept = suppress(xy_um, p[p >= t], settings.nms_um)
            counts.append(match_points(xy_um[kept], s.truth_um, match_um))
        tp, fp, fn = (sum(c[i] for c in counts) for i in range(3))
        f1 = f1_score(tp, fp, fn)
        if f1 > best["f1"]:
            per_slide = {s.slide_id: round(f1_score(*c), 4) for s, c in zip(slides, counts, strict=True)}
            best = {"f1": round(f1, 4), "threshold": float(t), "tp": tp, "fp": fp, "fn": fn, "f1_by_slide": per_slide}
    return best
