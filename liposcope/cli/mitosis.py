"""``mitoses`` and ``train-mitosis``: mitotic figures per 10 HPF, and the detector's training."""

from __future__ import annotations

import argparse
from pathlib import Path

from liposcope.batch import JobResult
from liposcope.cli.common import (
    SUBTYPES,
    Subparsers,
    add_config,
    add_device,
    add_slide_mpp,
    add_slides,
    box,
    choice,
    command,
    run_slides,
)
from liposcope.errors import LiposcopeError, where


def register(sub: Subparsers) -> None:
    _add_mitoses(sub)
    _add_train_mitosis(sub)


def _add_mitoses(sub: Subparsers) -> None:
    from liposcope.mitoses.settings import load_settings

    p = command(
        sub,
        "mitoses",
        "Count mitotic figures per 10 HPF on H&E: global, hotspot, FNCLCC mitotic score (needs the slide's mpp).",
        _mitoses,
        epilog=(
            "writes OUT/<slide_id>/mitoses.json (count, tissue_area_mm2, per_10hpf, per_mm2, hotspot_per_10hpf,\n"
            "mitotic_score, hpf_area_mm2, hotspot box, parameters, provenance), mitoses.geojson (one QuPath point\n"
            "per figure with its probability), hotspot.png (the hotspot, figures ringed), mitoses_gallery.png\n"
            "(the highest-scoring detections) and a section in report.html. An HPF is the field of a 40x\n"
            "objective: field number 22 gives 0.2376 mm² (10 HPF = 2.376 mm²). With --subtype (or a prediction.json\n"
            "from `liposcope predict` in the folder) and --necrosis-pct, the report suggests an FNCLCC grade.\n"
            "examples:\n  liposcope mitoses case.svs --out results\n"
            "  liposcope mitoses case.svs --out results --hpf-area-mm2 0.1734 --subtype DDLPS --necrosis-pct 10\n"
            "  liposcope mitoses case.svs --out results --model run/model"
        ),
    )
    add_slides(p)
    p.add_argument("--model", type=Path, help="a `liposcope train-mitosis` model folder (default: packaged detector)")
    counting = load_settings().counting
    p.add_argument(
        "--hpf-area-mm2",
        type=float,
        help=f"area of one high-power field in mm² (default {counting.hpf_mm2:.4g}, field number "
        f"{counting.field_number:g}; 0.196 for FN 20)",
    )
    add_config(p, "mitoses", "candidates, NMS, hotspot")
    p.add_argument(
        "--region", type=box, metavar="X,Y,W,H", help="analyse only this level-0 box (pixels) instead of all tissue"
    )
    p.add_argument("--subtype", type=choice(SUBTYPES), help="subtype for the FNCLCC differentiation score")
    p.add_argument("--necrosis-pct", type=float, metavar="PCT", help="necrotic share of the tumour, 0-100 (FNCLCC)")


def _mitoses(args: argparse.Namespace) -> int:
    from liposcope.mitoses.run import mitoses_to_folder
    from liposcope.mitoses.settings import load_settings

    settings = load_settings(args.config, hpf_area_mm2=args.hpf_area_mm2)

    def job(path: Path) -> JobResult:
        result, folder = mitoses_to_folder(
            path,
            args.out,
            model=args.model,
            settings=settings,
            slide_mpp=args.slide_mpp,
            region=args.region,
            subtype=args.subtype,
            necrosis_pct=args.necrosis_pct,
        )
        if result is None:
            return JobResult(str(folder / "mitoses.json"), skipped=True)
        c = result.counts
        score = c.reported_score if not c.warning else "not given: " + c.warning
        return JobResult(
            f"{c.count} figures, {c.per_10hpf:.1f}/10 HPF overall, hotspot {c.hotspot_per_10hpf:.1f}/10 HPF, "
            f"mitotic score {score}"
        )

    return run_slides(args.slides, job, "mitoses")


def _add_train_mitosis(sub: Subparsers) -> None:
    from liposcope.mitoses.settings import MitosisTrainConfig

    d = MitosisTrainConfig()
    p = command(
        sub,
        "train-mitosis",
        "Train the mitosis detector's patch classifier from slides and point annotations.",
        _train_mitosis,
        epilog=(
            "Annotations: CSV slide_id,x,y,label (level-0 px; label mitosis or non-mitosis) or MIDOG-style\n"
            "COCO JSON (bbox [x1,y1,x2,y2]); slide_id is the slide file name without extension. Writes\n"
            "OUT/model/ (model.safetensors + model.json, for `liposcope mitoses --model`) and OUT/metrics.json\n"
            "(validation F1 by slide, the chosen threshold).\n"
            "example:\n  liposcope train-mitosis slides/*.tiff --annotations points.csv --out run"
        ),
    )
    p.add_argument("slides", nargs="+", metavar="SLIDE", help="annotated slides (any openslide format)")
    p.add_argument("--annotations", nargs="+", type=Path, required=True, metavar="FILE", help="CSV or COCO JSON files")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    add_slide_mpp(p)
    add_config(p, "mitoses", "candidates, patch size")
    p.add_argument("--backbone", default=d.backbone, help=f"timm model name (default {d.backbone})")
    p.add_argument("--weights", default=d.weights, help="local weights file/folder, or 'random' (default)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default {d.epochs})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr})")
    p.add_argument(
        "--negatives-per-positive",
        type=float,
        default=d.negatives_per_positive,
        help="ordinary negatives per figure each epoch, half of them the highest-scoring (hard-negative mining)"
        f" (default {d.negatives_per_positive})",
    )
    p.add_argument(
        "--val-fraction", type=float, default=d.val_fraction, help=f"share of slides for validation ({d.val_fraction})"
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    add_device(p)


def _train_mitosis(args: argparse.Namespace) -> int:
    from liposcope.mitoses.settings import MitosisTrainConfig, load_settings
    from liposcope.mitoses.train import train_mitosis

    cfg = MitosisTrainConfig(
        backbone=args.backbone,
        weights=args.weights,
        epochs=args.epochs,
        lr=args.lr,
        negatives_per_positive=args.negatives_per_positive,
        val_fraction=args.val_fraction,
        seed=args.seed,
        device=args.device,
    )
    for path in [*args.slides, *args.annotations]:
        if not Path(path).is_file():
            raise LiposcopeError(where(path, "file not found", "check the path"))
    report = train_mitosis(
        [Path(s) for s in args.slides],
        args.annotations,
        args.out,
        cfg,
        load_settings(args.config),
        slide_mpp=args.slide_mpp,
    )
    v = report["validation"]
    print(f"validation F1 {v['f1']:.3f} at threshold {v['threshold']:.2f}; model in {args.out / 'model'}")  # noqa: T201
    return 0
