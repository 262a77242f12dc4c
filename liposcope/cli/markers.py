"""``ihc``: nuclear DAB markers (Ki-67, MDM2, ...) scored nucleus by nucleus."""

from __future__ import annotations

import argparse
from pathlib import Path

from liposcope.batch import JobResult
from liposcope.cli.common import (
    Subparsers,
    add_slides,
    box,
    command,
    run_slides,
)


def register(sub: Subparsers) -> None:
    _add_ihc(sub)


def _add_ihc(sub: Subparsers) -> None:
    p = command(
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
    add_slides(p)
    p.add_argument(
        "--marker",
        required=True,
        metavar="NAME|PATH.yaml",
        help="ki67, mdm2, or a marker file (keys as in configs/ihc.yaml; only those that differ)",
    )
    p.add_argument(
        "--region", type=box, metavar="X,Y,W,H", help="score only this level-0 box (pixels) instead of all tissue"
    )


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

    return run_slides(args.slides, job, f"{marker.name} IHC")
