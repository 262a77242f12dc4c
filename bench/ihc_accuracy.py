"""IHC scoring accuracy: synthetic slides with fresh seeds against their truth, and the DeepLIIF Ki-67 tiles.

python bench/ihc_accuracy.py [--seed0 8000] [--slides 30] [--variation 1.0] [--workdir bench/.cache/ihc-accuracy]
                             [--deepliif DIR ...] [--marker ki67|PATH.yaml]

Each seed gives two 2048² slides, at 0.25 µm/px (Ki-67 preset) and 0.5 µm/px (MDM2 preset), positive fraction
U(2 %, 60 %) drawn from the seed. Detection F1 matches one-to-one within 4 µm. Then every DeepLIIF tile with a
*_seg.png mask (TILE.png beside TILE_seg.png) in ../shared/data/ihc/deepliif and in each --deepliif folder, at
0.25 µm/px with --marker (default ki67): labelling index, detection counts, recall, precision, F1, and the mean
offset of matched detections from their mask centres (a misregistered mask shows here).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("CI", "true")  # no progress bars

from ihc import load_marker, read_deepliif_mask, score_slide
from wsi.points import f1_score, match_points, pair_points
from wsi.synth import load_ihc_truth, write_ihc_slide

DEEPLIIF = Path(__file__).resolve().parents[2] / "shared" / "data" / "ihc" / "deepliif"


def synthetic(seeds: range, variation: float, workdir: Path) -> None:
    errors = []
    for seed in seeds:
        fraction = float(np.random.default_rng(seed).uniform(0.02, 0.6))
        for mpp, marker in ((0.25, "ki67"), (0.5, "mdm2")):
            path = workdir / f"ihc-{seed}-{mpp}-{variation}.tiff"
            if not path.exists():
                write_ihc_slide(
                    path, seed=seed, width_px=2048, height_px=2048, mpp=mpp, positive_fraction=fraction,
                    variation=variation,
                )  # fmt: skip
            truth = load_ihc_truth(path)
            result = score_slide(path, load_marker(marker))
            li = float(result.scores["labelling_index_pct"]) - truth.labelling_index_pct  # type: ignore[arg-type]
            h = float(result.scores["h_score"]) - truth.h_score  # type: ignore[arg-type]
            f1 = f1_score(*match_points(result.nuclei.xy, truth.xy, 4.0 / truth.mpp))
            errors.append((li, h, f1))
            print(f"seed {seed} {mpp} µm/px: LI {li:+.2f} pp, H-score {h:+.1f}, F1 {f1:.3f}")
    e = np.array(errors)
    print(
        f"{len(e)} slides, variation {variation}: |LI error| max {np.abs(e[:, 0]).max():.2f} pp "
        f"(mean {np.abs(e[:, 0]).mean():.2f}, bias {e[:, 0].mean():+.2f}); |H error| max {np.abs(e[:, 1]).max():.1f}; "
        f"F1 min {e[:, 2].min():.3f} (mean {e[:, 2].mean():.3f}); within acceptance "
        f"{int(((np.abs(e[:, 0]) <= 2) & (np.abs(e[:, 1]) <= 15) & (e[:, 2] >= 0.9)).sum())}/{len(e)}"
    )


def deepliif(folder: Path, marker: str) -> None:
    for mask in sorted(folder.glob("*_seg.png")):
        tile = mask.name.removesuffix("_seg.png")
        true_xy, positive = read_deepliif_mask(mask)
        result = score_slide(folder / f"{tile}.png", load_marker(marker), slide_mpp=0.25)
        pairs = pair_points(result.nuclei.xy, true_xy, 4.0 / 0.25)
        tp, found = len(pairs), len(result.nuclei)
        dx, dy = (result.nuclei.xy[pairs[:, 0]] - true_xy[pairs[:, 1]]).mean(axis=0) if tp else (0.0, 0.0)
        print(
            f"{tile}: LI {result.scores['labelling_index_pct']} vs mask {100 * positive.mean():.1f}; "
            f"{found} nuclei found, {len(true_xy)} in the mask, {tp} matched: recall {tp / len(true_xy):.2f}, "
            f"precision {tp / max(found, 1):.2f}, F1 {f1_score(tp, found - tp, len(true_xy) - tp):.2f}; "
            f"matched offset ({dx:+.1f}, {dy:+.1f}) px"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed0", type=int, default=8000, help="first seed (default 8000)")
    parser.add_argument(
        "--slides", type=int, default=30, help="seeds to draw (two slides each; default 30; 0: DeepLIIF tiles only)"
    )
    parser.add_argument("--variation", type=float, default=1.0, help="stain colour spread (default 1.0)")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).parent / ".cache" / "ihc-accuracy")
    parser.add_argument("--deepliif", type=Path, nargs="*", default=[], help="more folders of DeepLIIF tile + mask")
    parser.add_argument("--marker", default="ki67", help="preset or YAML file for the DeepLIIF tiles (default ki67)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.slides:
        synthetic(range(args.seed0, args.seed0 + args.slides), args.variation, args.workdir)
    for folder in [DEEPLIIF, *args.deepliif]:
        if folder.is_dir():
            deepliif(folder, args.marker)


if __name__ == "__main__":
    main()
