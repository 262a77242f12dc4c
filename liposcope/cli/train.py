"""``train`` and ``train-tiles``: MIL slide classifiers on feature files, encoders on tile images."""

from __future__ import annotations

import argparse
from pathlib import Path

from liposcope.cli.common import (
    Subparsers,
    add_backbone,
    add_batch_size,
    add_device,
    add_workers,
    command,
    key_values,
)


def register(sub: Subparsers) -> None:
    _add_train(sub)
    _add_train_tiles(sub)


def _add_train(sub: Subparsers) -> None:
    p = command(
        sub,
        "train",
        "Train and cross-validate a MIL slide classifier on feature files.",
        _train,
        epilog=(
            "k-fold cross-validation grouped by patient and stratified by label, input standardisation learnt on\n"
            "each fold's training tiles, early stopping on an inner validation split (folds too small for one\n"
            "train max_epochs on all their slides), temperature scaling and an abstention threshold from\n"
            "out-of-fold predictions, then a final model on all slides. A logistic-\n"
            "regression baseline on mean+std pooled features runs on the same folds; a warning ends the run\n"
            "when the head is more than 0.05 balanced accuracy below it.\n"
            "writes RUN/oof_predictions.csv, RUN/metrics.json (pooled_oof, baseline), RUN/confusion.png (head\n"
            "and baseline), RUN/model/{model.safetensors, model.json}.\n"
            "example:\n  liposcope train --config configs/abmil.yaml --labels labels.csv --features feats --out run"
        ),
    )
    p.add_argument(
        "--config",
        default="abmil",
        help="train config: a YAML path or a packaged one, abmil / meanpool / transmil (default abmil)",
    )
    p.add_argument("--labels", type=Path, required=True, help="labels.csv: slide_id,patient_id,label")
    p.add_argument("--features", type=Path, required=True, help="folder of <slide_id>.h5 from `liposcope features`")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--folds", type=int, help="number of cross-validation folds (default from the config)")
    p.add_argument("--seed", type=int, help="random seed (default from the config)")


def _train(args: argparse.Namespace) -> int:
    from liposcope.training import train_mil

    result = train_mil(args.config, args.labels, args.features, args.out, folds=args.folds, seed=args.seed)
    m, b = result.metrics, result.baseline
    lines = [
        f"out-of-fold balanced accuracy {m['balanced_accuracy']:.3f}, macro AUROC {m['auroc_macro']}, "
        f"temperature {result.temperature:.2f}; model in {result.model_dir}",
        f"baseline (logistic regression on pooled features, same folds): balanced accuracy "
        f"{b['balanced_accuracy']:.3f}, macro AUROC {b['auroc_macro']}",
        *(f"warning: {w}" for w in result.warnings),
    ]
    print("\n".join(lines))  # noqa: T201
    return 0


def _add_train_tiles(sub: Subparsers) -> None:
    from liposcope.training.settings import TileTrainConfig

    d = TileTrainConfig(backbone="")
    p = command(
        sub,
        "train-tiles",
        "Fine-tune a timm backbone on tile images (from `liposcope tile --save-images`).",
        _train_tiles,
        epilog=(
            "tiles inherit their slide's label from labels.csv (slide_id,patient_id,label), or a label from\n"
            "--tile-labels (slide_id,x,y,label); validation slides are split by patient. Writes OUT/model/\n"
            "(model.safetensors + model.json) and OUT/metrics.json; pass OUT/model to `features --weights`.\n"
            "example:\n  liposcope train-tiles --tiles tiles/ --labels labels.csv --backbone resnet18 --out enc"
        ),
    )
    p.add_argument("--tiles", type=Path, required=True, help="output folder of `liposcope tile --save-images`")
    p.add_argument("--labels", type=Path, required=True, help="labels.csv: slide_id,patient_id,label")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    add_backbone(p, "random", "initial weights: file, folder or 'random' (default)")
    p.add_argument("--tile-labels", type=Path, help="CSV slide_id,x,y,label overriding slide labels per tile")
    p.add_argument("--classes", help=f"comma-separated class names (default {','.join(d.classes)})")
    for flag, kind, text in (
        ("--epochs", int, f"maximum epochs (default {d.epochs})"),
        ("--lr", float, f"AdamW learning rate (default {d.lr})"),
        ("--max-tiles-per-slide", int, f"tiles sampled per slide (default {d.max_tiles_per_slide})"),
        ("--stain-jitter", float, f"std of the HED stain augmentation; vectors tilt by half of it ({d.stain_jitter})"),
        ("--seed", int, f"random seed (default {d.seed})"),
    ):
        p.add_argument(flag, type=kind, help=text)
    add_batch_size(p)
    add_workers(p)
    add_device(p)


def _train_tiles(args: argparse.Namespace) -> int:
    from liposcope.config import from_dict
    from liposcope.training.settings import TileTrainConfig
    from liposcope.training.train_tiles import train_tiles

    keys = (
        "backbone",
        "weights",
        "epochs",
        "batch_size",
        "lr",
        "max_tiles_per_slide",
        "stain_jitter",
        "seed",
        "workers",
        "device",
    )
    values = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if args.classes:
        values["classes"] = [c.strip() for c in args.classes.split(",")]
    config = from_dict(TileTrainConfig, values, "train-tiles")
    report = train_tiles(
        args.tiles, args.labels, args.out, config, tile_labels=args.tile_labels, kwargs=key_values(args.model_arg)
    )
    bacc = report["validation"]["balanced_accuracy"]
    print(f"best epoch {report['best_epoch']}: validation balanced accuracy {bacc:.3f}; model in {args.out / 'model'}")  # noqa: T201
    return 0
