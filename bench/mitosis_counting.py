"""Mitosis counting throughput: mm² of tissue per second, against reading the same tiles and the CNN alone.

python bench/mitosis_counting.py                 # CPU, 8192² synthetic PLPS slide at 0.25 µm/px
python bench/mitosis_counting.py --device cuda   # on a GPU machine
python bench/mitosis_counting.py --baseline-model OLD/model --baseline-config OLD/mitoses.yaml
                                                 # also time another detector and config in the same run
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import openslide
import torch

from liposcope.mitoses.compute import detect_mitoses
from liposcope.mitoses.detect import Detector
from liposcope.mitoses.settings import load_settings
from liposcope.synth.mitoses import SHAPES, write_mitosis_slide
from liposcope.wsi.slide import Slide
from liposcope.wsi.tissue import detect_tissue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8192, help="slide side in px at 0.25 µm/px (default 8192)")
    parser.add_argument("--workdir", type=Path, default=Path("bench/.cache"))
    parser.add_argument("--model", type=Path, help="mitosis model folder (default: packaged)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--baseline-model", type=Path, help="a second model folder, timed on the same slide")
    parser.add_argument("--baseline-config", type=Path, help="the second model's mitoses.yaml")
    args = parser.parse_args()

    path = args.workdir / f"mitoses-plps-{args.size}.tiff"
    if not path.exists():
        args.workdir.mkdir(parents=True, exist_ok=True)
        write_mitosis_slide(
            path, label="PLPS", seed=4242, width_px=args.size, height_px=args.size, per_10hpf=20.0, shapes=SHAPES
        )
    detector = Detector.load(args.model)
    detector.backbone.model.to(args.device)
    settings = load_settings()

    start = time.perf_counter()
    result = detect_mitoses(path, detector=detector, settings=settings)
    total = time.perf_counter() - start
    with Slide(path) as slide:
        mask, _ = detect_tissue(slide)  # for the baseline's tile list, outside the timing
    area = result.counts.tissue_area_mm2

    # baseline 1: openslide reads of the same analysis tiles (level 0 is 0.25 µm/px: no resize)
    step = settings.tile_px
    margin = settings.patch_px // 2 + math.ceil(settings.candidates.min_distance_um / 0.25)
    corners = np.array([(x, y) for y in range(0, args.size, step) for x in range(0, args.size, step)], np.float64)
    corners = corners[mask.fraction_in_boxes(corners, step) > 0]
    osr = openslide.OpenSlide(str(path))
    start = time.perf_counter()
    for x, y in corners:
        np.asarray(osr.read_region((int(x) - margin, int(y) - margin), 0, (step + 2 * margin,) * 2))
    read = time.perf_counter() - start

    # baseline 2: the CNN alone on as many random patches as there were candidates
    patches = np.random.default_rng(0).integers(0, 255, (result.candidates, 3, 64, 64), dtype=np.uint8)
    if args.device != "cpu":
        detector.score(patches[:512], settings.batch_size)  # warm-up
        torch.cuda.synchronize()
    start = time.perf_counter()
    detector.score(patches, settings.batch_size)
    forward = time.perf_counter() - start

    figures = {
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "tissue_mm2": round(area, 3),
        "tiles": len(corners),
        "candidates": result.candidates,
        "figures": result.counts.count,
        "end_to_end_s": round(total, 2),
        "mm2_per_s": round(area / total, 3),
        "read_only_s": round(read, 2),
        "read_only_mm2_per_s": round(area / read, 3),
        "cnn_only_s": round(forward, 2),
        "cnn_patches_per_s": round(result.candidates / forward, 1),
        "end_to_end_vs_read": round(total / read, 2),
        "end_to_end_vs_cnn": round(total / forward, 2),
    }
    if args.baseline_model or args.baseline_config:
        other = Detector.load(args.baseline_model)
        other.backbone.model.to(args.device)
        start = time.perf_counter()
        base = detect_mitoses(path, detector=other, settings=load_settings(args.baseline_config))
        took = time.perf_counter() - start
        figures["baseline"] = {
            "model": str(args.baseline_model or "packaged"),
            "config": str(args.baseline_config or "default"),
            "candidates": base.candidates,
            "figures": base.counts.count,
            "end_to_end_s": round(took, 2),
            "mm2_per_s": round(base.counts.tissue_area_mm2 / took, 3),
        }
        figures["speed_vs_baseline"] = round(took / total, 2)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
