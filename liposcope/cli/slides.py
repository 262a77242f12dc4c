"""``synth``, ``tile`` and ``features``: slides in, synthetic slides, tile grids and tile features out."""

from __future__ import annotations

import argparse
from pathlib import Path

from liposcope.batch import JobResult
from liposcope.cli.common import (
    SUBTYPES,
    Subparsers,
    add_backbone,
    add_encoding,
    add_slides,
    add_tiling,
    choice,
    command,
    key_values,
    run_slides,
    tiling,
)


def register(sub: Subparsers) -> None:
    _add_synth(sub)
    _add_tile(sub)
    _add_features(sub)


def _add_synth(sub: Subparsers) -> None:
    p = command(
        sub,
        "synth",
        "Generate synthetic pyramidal H&E slides with ground truth (for tests, demos, benchmarks).",
        _synth,
        epilog="examples:\n  liposcope synth out/ --subtype DDLPS --seed 3\n  liposcope synth cohort/ --cohort 40",
    )
    p.add_argument("out", type=Path, metavar="OUT", help="folder for <slide_id>.tiff and its ground-truth sidecar")
    p.add_argument(
        "--subtype", type=choice(SUBTYPES), default="DDLPS", help="subtype of a single slide (default DDLPS)"
    )
    p.add_argument("--cohort", type=int, metavar="N", help="write N slides across subtypes and OUT/labels.csv")
    p.add_argument(
        "--label-tiles",
        type=Path,
        metavar="TILES",
        help="write no slides: label the tiles of a `liposcope tile` run over OUT from the ground truth "
        "(TILES/tile_labels.csv, for train-tiles --tile-labels)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--width", type=int, default=8000, help="level-0 width in pixels (default 8000)")
    p.add_argument("--height", type=int, default=6000, help="level-0 height in pixels (default 6000)")
    p.add_argument("--mpp", type=float, default=0.5, help="level-0 µm per pixel (default 0.5, ≈20x)")
    p.add_argument(
        "--stain-variation", type=float, default=1.0, help="spread of random stain colours (1 = default, 0 = none)"
    )
    p.add_argument(
        "--ihc",
        type=float,
        metavar="FRACTION",
        help="write an H-DAB (IHC) slide instead, this share of its nuclei positive (0-1), with a nuclei.csv truth",
    )
    p.add_argument(
        "--mitoses",
        type=float,
        metavar="PER_10HPF",
        help="plant this many mitotic figures per 10 HPF (and as many look-alikes) in the H&E slide, with a "
        "<slide_id>.mitoses.csv truth (slide_id,x,y,label,shape; PLPS lipoblasts are listed as look-alikes too); "
        "use --mpp 0.25",
    )
    p.add_argument(
        "--lookalike-ratio",
        type=float,
        default=1.0,
        help="with --mitoses: look-alikes (pyknotic, apoptotic, lymphocytes, hyperchromatic nuclei, karyorrhexis) "
        "per figure (default 1)",
    )
    p.add_argument(
        "--unseen-shapes",
        action="store_true",
        help="with --mitoses: draw figures also in the families the packaged detector never saw (telophase, "
        "atypical: tripolar and multipolar)",
    )


def _synth(args: argparse.Namespace) -> int:
    from liposcope.synth import write_cohort, write_ihc_slide, write_slide, write_tile_labels
    from liposcope.synth.mitoses import SHAPES, TRAIN_SHAPES, write_mitosis_slide

    if args.label_tiles:
        print(f"wrote {write_tile_labels(args.out, args.label_tiles)}")  # noqa: T201
        return 0
    geometry = {"width_px": args.width, "height_px": args.height, "mpp": args.mpp}
    if args.cohort:
        labels = write_cohort(
            args.out, n_slides=args.cohort, seed=args.seed, stain_variation=args.stain_variation, **geometry
        )
        print(f"wrote {args.cohort} slides and {labels}")  # noqa: T201
        return 0
    if args.ihc is not None:
        path = args.out / f"synth-ihc-{args.seed}.tiff"
        write_ihc_slide(path, seed=args.seed, positive_fraction=args.ihc, variation=args.stain_variation, **geometry)
    else:
        path = args.out / f"synth-{args.subtype.lower()}-{args.seed}.tiff"
        he = {"label": args.subtype, "seed": args.seed, "stain_variation": args.stain_variation, **geometry}
        if args.mitoses is None:
            write_slide(path, **he)
        else:
            shapes = SHAPES if args.unseen_shapes else TRAIN_SHAPES
            write_mitosis_slide(path, per_10hpf=args.mitoses, lookalike_ratio=args.lookalike_ratio, shapes=shapes, **he)
    print(f"wrote {path}")  # noqa: T201
    return 0


def _add_tile(sub: Subparsers) -> None:
    p = command(
        sub,
        "tile",
        "Detect tissue and build a grid of tiles at a physical resolution.",
        _tile,
        epilog=(
            "writes OUT/<slide_id>/tiles.h5 (dataset coords: level-0 x,y of each tile), tissue.png (check it),\n"
            "and with --save-images OUT/<slide_id>/tiles/x<X>_y<Y>.jpg. Finished slides are skipped on rerun.\n"
            "example:\n  liposcope tile slides/*.svs --out out --mpp 0.5 --tile-size 256"
        ),
    )
    add_slides(p)
    add_tiling(p)
    p.add_argument("--save-images", action="store_true", help="also write the tiles as JPEGs (for tile training)")


def _tile(args: argparse.Namespace) -> int:
    from liposcope.wsi.tiling import tile_slide

    spec, tissue = tiling(args)

    def job(path: Path) -> JobResult:
        grid, skipped = tile_slide(path, args.out, spec, tissue, slide_mpp=args.slide_mpp, save_images=args.save_images)
        return JobResult(f"{len(grid)} tiles of {spec.tile_px} px at {spec.target_mpp} µm/px", skipped)

    return run_slides(args.slides, job, "tiling")


def _add_features(sub: Subparsers) -> None:
    p = command(
        sub,
        "features",
        "Encode every tile of each slide with a timm backbone.",
        _features,
        epilog=(
            "writes OUT/<slide_id>.h5: datasets coords (N x 2, level-0 x,y) and features (N x D), with the\n"
            "backbone, weights sha256 and tiling in its attributes. Complete files are skipped on rerun.\n"
            "examples:\n"
            "  liposcope features slides/*.svs --out feats --backbone resnet50 --weights resnet50.safetensors\n"
            "  liposcope features s.tiff --out feats --backbone vit_large_patch16_224 \\\n"
            "      --weights uni/pytorch_model.bin --model-arg init_values=1e-5 --model-arg dynamic_img_size=true\n"
            "  (README: pathology foundation models)"
        ),
    )
    add_slides(p)
    add_backbone(
        p,
        None,
        "local .safetensors / torch checkpoint / Hugging Face folder, or 'random' (seeded, for smoke tests); "
        "default: timm's pretrained weights if cached (no downloads)",
    )
    p.add_argument("--tiles", type=Path, help="folder of a `liposcope tile` run to take tile grids from")
    add_encoding(p)
    p.add_argument("--seed", type=int, default=0, help="seed of --weights random (default 0)")
    add_tiling(p)


def _features(args: argparse.Namespace) -> int:
    from liposcope.models.backbones import create_backbone
    from liposcope.models.encode import extract_features

    spec, tissue = tiling(args)
    backbone = create_backbone(args.backbone, args.weights, kwargs=key_values(args.model_arg), seed=args.seed)

    def job(path: Path) -> JobResult:
        target, skipped = extract_features(
            path,
            args.out,
            backbone,
            spec,
            tissue,
            tiles_dir=args.tiles,
            slide_mpp=args.slide_mpp,
            batch_size=args.batch_size,
            workers=args.workers,
            device=args.device,
            precision=args.precision,
        )
        return JobResult(str(target), skipped)

    return run_slides(args.slides, job, "features")
