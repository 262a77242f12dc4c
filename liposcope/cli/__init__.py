"""The ``liposcope`` command line: parses arguments and calls library functions, nothing more."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeAlias

from liposcope import __version__
from liposcope.batch import JobResult
from liposcope.errors import LiposcopeError, from_os_error, one_line, where

log = logging.getLogger("liposcope")

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

SUBTYPES = ("WDLPS", "DDLPS", "MLPS", "PLPS")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 1 internal error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    if hasattr(signal, "SIGXFSZ"):  # a file size limit fails the write (EFBIG) instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        _clean_output(args)
        return int(args.handler(args))
    except (LiposcopeError, OSError) as exc:
        user = exc if isinstance(exc, LiposcopeError) else from_os_error(exc)
        if user is None:
            return _internal_error(exc)
        log.error("%s", one_line(str(user)))
        return 2
    except KeyboardInterrupt:
        log.error("interrupted; rerun the same command to resume")
        return 130
    except Exception as exc:  # noqa: BLE001 (a bug: logged with its traceback under -v)
        return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
    """A bug: one line for the user, the traceback with -v."""
    message = f"internal error ({type(exc).__name__}: {exc}); rerun with -v for the traceback and report it"
    log.error("%s", one_line(message))
    log.debug("traceback", exc_info=True)
    return 1


def _clean_output(args: argparse.Namespace) -> None:
    """Remove the temporaries that killed runs left in the output folder."""
    from liposcope.io import clean_stale_temps

    out = getattr(args, "out", None)
    if isinstance(out, Path):
        for path in clean_stale_temps(out):
            log.debug("removed %s, left by an interrupted run", path)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="liposcope",
        description="Whole-slide image analysis for liposarcoma (research use, not for diagnosis).",
    )
    parser.add_argument("--version", action="version", version=f"liposcope {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_demo(sub)
    _add_predict(sub)
    _add_synth(sub)
    _add_tile(sub)
    _add_features(sub)
    _add_train(sub)
    _add_train_tiles(sub)
    _add_ihc(sub)
    _add_mitoses(sub)
    _add_train_mitosis(sub)
    _add_view(sub)
    return parser


def _command(
    sub: Subparsers, name: str, summary: str, handler: Callable[..., int], epilog: str = ""
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name, help=summary, description=summary, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks for internal errors")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only, no progress bars")
    p.set_defaults(handler=handler)
    return p


def _add_slides(p: argparse.ArgumentParser) -> None:
    p.add_argument("slides", nargs="+", metavar="SLIDE", help="slide files (any openslide format)")
    p.add_argument("--out", required=True, type=Path, help="output folder; results go to OUT/<slide_id>/")
    p.add_argument(
        "--slide-mpp", type=float, metavar="M", help="level-0 µm per pixel, for slides whose metadata lacks it"
    )


# -- demo ----------------------------------------------------------------------------------------------
def _add_demo(sub: Subparsers) -> None:
    p = _command(
        sub,
        "demo",
        "Generate a synthetic slide and classify it with the shipped demo model (synthetic data, not for diagnosis).",
        _demo,
    )
    p.add_argument("--out", type=Path, default=Path("liposcope-demo"), help="output folder (default liposcope-demo)")
    p.add_argument("--subtype", choices=SUBTYPES, default="DDLPS", help="subtype of the demo slide (default DDLPS)")
    p.add_argument("--seed", type=int, default=7, help="seed of the demo slide (default 7)")


def _demo(args: argparse.Namespace) -> int:
    from liposcope.inference.demo import DISCLAIMER, run_demo

    slide, pred, folder = run_demo(args.out, subtype=args.subtype, seed=args.seed)
    lines = [f"slide:      {slide} (synthetic {args.subtype})"]
    if pred is not None:
        call = f"no call ({'; '.join(pred.abstain_reasons)})" if pred.abstained else pred.predicted_class
        lines.append(
            f"prediction: {call} (top {pred.predicted_class} p = {pred.confidence:.2f}), {len(pred.attention)} tiles"
        )
        lines += [f"warning:    {w}" for w in pred.warnings]
    lines += [f"report:     {folder / 'report.html'}", f"outputs:    {folder}/", "", DISCLAIMER]
    print("\n".join(lines))  # noqa: T201
    return 0


# -- predict -------------------------------------------------------------------------------------------
def _add_predict(sub: Subparsers) -> None:
    p = _command(
        sub,
        "predict",
        "Classify slides with a trained model: probabilities, attention heatmap, GeoJSON, HTML report.",
        _predict,
        epilog=(
            "writes OUT/<slide_id>/prediction.json, heatmap.png, heatmap.geojson (QuPath detections),\n"
            "top_tiles.png and report.html. Tiling and features follow the model's model.json exactly.\n"
            "example:\n  liposcope predict case.svs --model run/model --out results"
        ),
    )
    _add_slides(p)
    p.add_argument("--model", type=Path, required=True, help="model folder (model.json + model.safetensors)")
    p.add_argument("--weights", help="backbone weights, if not in the model folder as backbone.safetensors")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    p.add_argument("--batch-size", type=int, default=64, help="tiles per forward pass (default 64)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes reading tiles (default 0)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="autocast precision")


def _predict(args: argparse.Namespace) -> int:
    from liposcope.inference import load_model, predict_to_folder

    model = load_model(args.model, weights=args.weights)
    options = {
        "slide_mpp": args.slide_mpp,
        "device": args.device,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "precision": args.precision,
    }

    def job(path: Path) -> JobResult:
        pred, folder = predict_to_folder(path, model, args.out, **options)
        if pred is None:
            return JobResult(str(folder / "prediction.json"), skipped=True)
        flags = f", {len(pred.warnings)} warning(s)" if pred.warnings else ""
        if pred.abstained:
            reasons = "; ".join(pred.abstain_reasons)
            return JobResult(f"no call ({reasons}); top {pred.predicted_class} {pred.confidence:.2f}")
        return JobResult(f"{pred.predicted_class} {pred.confidence:.2f}{flags}")

    return _run(args.slides, job, "predict")


# -- synth -----------------------------------------------------------------------------------------
def _add_synth(sub: Subparsers) -> None:
    p = _command(
        sub,
        "synth",
        "Generate synthetic pyramidal H&E slides with ground truth (for tests, demos, benchmarks).",
        _synth,
        epilog="examples:\n  liposcope synth out/ --subtype DDLPS --seed 3\n  liposcope synth cohort/ --cohort 40",
    )
    p.add_argument("out", type=Path, metavar="OUT", help="folder for <slide_id>.tiff and its ground-truth sidecar")
    p.add_argument("--subtype", choices=SUBTYPES, default="DDLPS", help="subtype of a single slide (default DDLPS)")
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


# -- tile --------------------------------------------------------------------------------------------
def _add_tiling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mpp", type=float, help="tile resolution in µm per pixel (default 0.5)")
    p.add_argument("--tile-size", type=int, help="tile side in pixels at --mpp (default 256)")
    p.add_argument("--overlap", type=int, help="overlap between tiles in pixels at --mpp (default 0)")
    p.add_argument("--min-tissue", type=float, help="keep tiles with at least this tissue fraction (default 0.5)")
    p.add_argument("--config", type=Path, help="YAML overriding configs/tiling.yaml (tile and tissue settings)")


def _tiling(args: argparse.Namespace) -> tuple[Any, Any]:
    from liposcope.wsi.tiling import tiling_config

    return tiling_config(
        args.config, target_mpp=args.mpp, tile_px=args.tile_size, overlap_px=args.overlap, min_tissue=args.min_tissue
    )


def _add_tile(sub: Subparsers) -> None:
    p = _command(
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
    _add_slides(p)
    _add_tiling(p)
    p.add_argument("--save-images", action="store_true", help="also write the tiles as JPEGs (for tile training)")


def _tile(args: argparse.Namespace) -> int:
    from liposcope.wsi.tiling import tile_slide

    spec, tissue = _tiling(args)

    def job(path: Path) -> JobResult:
        grid, skipped = tile_slide(path, args.out, spec, tissue, slide_mpp=args.slide_mpp, save_images=args.save_images)
        return JobResult(f"{len(grid)} tiles of {spec.tile_px} px at {spec.target_mpp} µm/px", skipped)

    return _run(args.slides, job, "tiling")


# -- features -----------------------------------------------------------------------------------------
def _add_features(sub: Subparsers) -> None:
    p = _command(
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
    _add_slides(p)
    _add_backbone(
        p,
        None,
        "local .safetensors / torch checkpoint / Hugging Face folder, or 'random' (seeded, for smoke tests); "
        "default: timm's pretrained weights if cached (no downloads)",
    )
    p.add_argument("--tiles", type=Path, help="folder of a `liposcope tile` run to take tile grids from")
    p.add_argument("--batch-size", type=int, default=64, help="tiles per forward pass (default 64)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes reading tiles (default 2)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="autocast precision")
    p.add_argument("--seed", type=int, default=0, help="seed of --weights random (default 0)")
    _add_tiling(p)


def _features(args: argparse.Namespace) -> int:
    from liposcope.models.backbones import create_backbone
    from liposcope.models.encode import extract_features

    spec, tissue = _tiling(args)
    backbone = create_backbone(args.backbone, args.weights, kwargs=_key_values(args.model_arg), seed=args.seed)

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

    return _run(args.slides, job, "features")


# -- train ---------------------------------------------------------------------------------------------
def _add_train(sub: Subparsers) -> None:
    p = _command(
        sub,
        "train",
        "Train and cross-validate a MIL slide classifier on feature files.",
        _train,
        epilog=(
            "k-fold cross-validation grouped by patient and stratified by label, input standardisation learnt on\n"
            "each fold's training tiles, early stopping on an inner validation split, temperature scaling and an\n"
            "abstention threshold from out-of-fold predictions, then a final model on all slides. A logistic-\n"
            "regression baseline on mean+std pooled features runs on the same folds; a warning ends the run\n"
            "when the head is more than 0.05 balanced accuracy below it.\n"
            "writes RUN/oof_predictions.csv, RUN/metrics.json (pooled_oof, baseline), RUN/confusion.png (head\n"
            "and baseline), RUN/model/{model.safetensors, model.json}.\n"
            "example:\n  liposcope train --config configs/abmil.yaml --labels labels.csv --features feats --out run"
        ),
    )
    p.add_argument("--config", required=True, help="train config: a YAML path or abmil / meanpool / transmil")
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


# -- train-tiles --------------------------------------------------------------------------------------
def _add_train_tiles(sub: Subparsers) -> None:
    p = _command(
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
    _add_backbone(p, "random", "initial weights: file, folder or 'random' (default)")
    p.add_argument("--tile-labels", type=Path, help="CSV slide_id,x,y,label overriding slide labels per tile")
    p.add_argument("--classes", help="comma-separated class names (default WDLPS,DDLPS,MLPS,PLPS)")
    for flag, kind, text in (
        ("--epochs", int, "maximum epochs (default 8)"),
        ("--batch-size", int, "tiles per step (default 64)"),
        ("--lr", float, "AdamW learning rate (default 5e-4)"),
        ("--max-tiles-per-slide", int, "tiles sampled per slide (default 150)"),
        ("--stain-jitter", float, "std of the HED stain augmentation; vectors tilt by half of it (default 0.3)"),
        ("--seed", int, "random seed (default 0)"),
        ("--workers", int, "image-loading worker processes (default 2)"),
    ):
        p.add_argument(flag, type=kind, help=text)
    p.add_argument("--device", help="auto, cpu or cuda (default auto)")


def _train_tiles(args: argparse.Namespace) -> int:
    from liposcope.config import from_dict
    from liposcope.training.train_tiles import TileTrainConfig, train_tiles

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
        args.tiles, args.labels, args.out, config, tile_labels=args.tile_labels, kwargs=_key_values(args.model_arg)
    )
    bacc = report["validation"]["balanced_accuracy"]
    print(f"best epoch {report['best_epoch']}: validation balanced accuracy {bacc:.3f}; model in {args.out / 'model'}")  # noqa: T201
    return 0


def _add_backbone(p: argparse.ArgumentParser, weights_default: str | None, weights_help: str) -> None:
    """--backbone, --weights and --model-arg, shared by features and train-tiles."""
    p.add_argument("--backbone", required=True, help="timm model name, e.g. resnet50 or vit_large_patch16_224")
    p.add_argument("--weights", default=weights_default, help=weights_help)
    p.add_argument(
        "--model-arg", action="append", default=[], metavar="KEY=VALUE", help="extra timm.create_model argument"
    )


def _key_values(items: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=true"]`` → ``{"a": 1, "b": True}`` (values parsed as YAML scalars)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            msg = f"--model-arg {item}: expected KEY=VALUE; e.g. --model-arg init_values=1e-5"
            raise LiposcopeError(msg)
        out[key.strip()] = yaml.safe_load(value)
    return out


# -- ihc ---------------------------------------------------------------------------------------------
def _add_ihc(sub: Subparsers) -> None:
    p = _command(
        sub,
        "ihc",
        "Score nuclear DAB immunohistochemistry (Ki-67, MDM2, ...): every nucleus found, graded and counted.",
        _ihc,
        epilog=(
            "writes OUT/<slide_id>/ihc.json (labelling index, hotspot index, weak/moderate/strong %, H-score,\n"
            "status), nuclei.geojson (one QuPath point per nucleus), overlay.png (hotspot, nuclei ringed by\n"
            "class: blue negative, yellow weak, orange moderate, red strong) and a section in report.html.\n"
            "A plain PNG/JPEG/TIFF image is scored as a one-tile slide; give its --slide-mpp.\n"
            "examples:\n  liposcope ihc case-ki67.svs --marker ki67 --out results\n"
            "  liposcope ihc field.png --marker mdm2 --slide-mpp 0.25 --out results\n"
            "  liposcope ihc case.svs --marker cdk4.yaml --region 20000,14000,8000,8000 --out results"
        ),
    )
    _add_slides(p)
    p.add_argument(
        "--marker",
        required=True,
        metavar="NAME|PATH.yaml",
        help="ki67, mdm2, or a marker file (keys as in configs/ihc.yaml; only those that differ)",
    )
    p.add_argument(
        "--region", type=_box, metavar="X,Y,W,H", help="score only this level-0 box (pixels) instead of all tissue"
    )


def _box(text: str) -> tuple[float, float, float, float]:
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        msg = f"expected X,Y,W,H (four numbers, level-0 pixels), got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    return (x, y, w, h)


def _ihc(args: argparse.Namespace) -> int:
    from liposcope.ihc import ihc_to_folder, load_marker

    marker = load_marker(args.marker)

    def job(path: Path) -> JobResult:
        result, folder = ihc_to_folder(path, marker, args.out, slide_mpp=args.slide_mpp, region=args.region)
        if result is None:
            return JobResult(str(folder / "ihc.json"), skipped=True)
        s = result.scores
        index = "n/a" if s["labelling_index_pct"] is None else f"{s['labelling_index_pct']:.1f}%"
        return JobResult(f"{s['nuclei_total']} nuclei, index {index}, H-score {s['h_score']}, {s['status']}")

    return _run(args.slides, job, f"{marker.name} IHC")


# -- mitoses -----------------------------------------------------------------------------------------
def _add_mitoses(sub: Subparsers) -> None:
    p = _command(
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
    _add_slides(p)
    p.add_argument("--model", type=Path, help="a `liposcope train-mitosis` model folder (default: packaged detector)")
    p.add_argument(
        "--hpf-area-mm2",
        type=float,
        help="area of one high-power field in mm² (default 0.2376, field number 22; 0.196 for FN 20)",
    )
    p.add_argument("--config", type=Path, help="YAML overriding configs/mitoses.yaml (candidates, NMS, hotspot)")
    p.add_argument(
        "--region", type=_box, metavar="X,Y,W,H", help="analyse only this level-0 box (pixels) instead of all tissue"
    )
    p.add_argument("--subtype", choices=SUBTYPES, help="subtype for the FNCLCC differentiation score")
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

    return _run(args.slides, job, "mitoses")


def _add_train_mitosis(sub: Subparsers) -> None:
    from liposcope.mitoses.settings import MitosisTrainConfig

    d = MitosisTrainConfig()
    p = _command(
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
    p.add_argument("--slide-mpp", type=float, metavar="M", help="µm per pixel for slides whose files do not say")
    p.add_argument("--config", type=Path, help="YAML overriding configs/mitoses.yaml (candidates, patch size)")
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
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or mps (default auto)")


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


# -- view ----------------------------------------------------------------------------------------------
def _add_view(sub: Subparsers) -> None:
    p = _command(
        sub,
        "view",
        "Review slides with their heatmap, nuclei, mitoses and hotspots in the browser (read-only, local).",
        _view,
        epilog=(
            "PATH is an --out folder of predict/ihc/mitoses/tile (each OUT/<slide_id>/ names its slide in the\n"
            "provenance of its results) or slide files. Serves Deep Zoom tiles, the layers' GeoJSON and a page\n"
            "at http://127.0.0.1:PORT/slides/<slide_id>; binds to 127.0.0.1 (this machine only) unless --host says\n"
            "otherwise. Nothing is written. Ctrl+C stops.\n"
            "examples:\n  liposcope view results\n  liposcope view results/case1 --port 8080 --no-browser"
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="output folders of the commands, or slide files")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")


def _view(args: argparse.Namespace) -> int:
    from liposcope.viewer import serve

    serve(args.paths, host=args.host, port=args.port, open_browser=not args.no_browser)
    return 0


def _run(slides: Sequence[str], job: Callable[[Path], JobResult], desc: str) -> int:
    """Run ``job`` per slide, print the summary, return the batch's exit status."""
    from liposcope.batch import exit_code, run_batch, summary

    outcomes = run_batch(slides, job, desc=desc)
    print(summary(outcomes))  # noqa: T201
    return exit_code(outcomes)


def _configure_logging(verbose: bool, quiet: bool) -> None:
    from liposcope.progress import set_enabled

    set_enabled(not quiet)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    warnings.showwarning = _log_warning  # library warnings (PIL, numpy, torch) only with -v, never before the error
    logging.addLevelName(logging.ERROR, "error")
    logging.addLevelName(logging.WARNING, "warning")
    logging.addLevelName(logging.INFO, "info")


def _log_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """``warnings.showwarning`` for the CLI: a debug log line (shown with -v), not text on stderr."""
    log.debug("%s", one_line(warnings.formatwarning(message, category, filename, lineno, line).strip()))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (tests and notebooks swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass
