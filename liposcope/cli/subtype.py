"""``demo`` and ``predict``: the subtype of H&E slides with the attention heatmap."""

from __future__ import annotations

import argparse
from pathlib import Path

from liposcope.batch import JobResult
from liposcope.cli.common import SUBTYPES, Subparsers, add_encoding, add_slides, choice, command, run_slides


def register(sub: Subparsers) -> None:
    p = command(
        sub,
        "demo",
        "Generate a synthetic slide and classify it with the shipped demo model (synthetic data, not for diagnosis).",
        demo,
    )
    p.add_argument("--out", type=Path, default=Path("liposcope-demo"), help="output folder (default liposcope-demo)")
    p.add_argument(
        "--subtype", type=choice(SUBTYPES), default="DDLPS", help="subtype of the demo slide (default DDLPS)"
    )
    p.add_argument("--seed", type=int, default=7, help="seed of the demo slide (default 7)")

    p = command(
        sub,
        "predict",
        "Classify slides with a trained model: probabilities, attention heatmap, GeoJSON, HTML report.",
        predict,
        epilog=(
            "writes OUT/<slide_id>/prediction.json, heatmap.png, heatmap.geojson (QuPath detections),\n"
            "top_tiles.png and report.html. Tissue detection, tiling and features follow the model's model.json.\n"
            "A slide done before with the same model, settings and slide file is skipped.\n"
            "examples:\n  liposcope predict case.svs --model run/model --out results\n"
            "  liposcope predict case.svs --model demo --out results"
        ),
    )
    add_slides(p)
    p.add_argument(
        "--model", required=True, help="model folder (model.json + model.safetensors), or 'demo' (the packaged one)"
    )
    p.add_argument("--weights", help="backbone weights, if not in the model folder as backbone.safetensors")
    add_encoding(p)


def demo(args: argparse.Namespace) -> int:
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


def predict(args: argparse.Namespace) -> int:
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

    return run_slides(args.slides, job, "predict")
