"""IHC scoring throughput on CPU: mm² of tissue and nuclei per second, against reading the same pixels.

python bench/ihc_scoring.py [--size 8192] [--mpp 0.25] [--workdir bench/.cache]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("CI", "true")  # no progress bars in the timed loop

from liposcope.ihc import load_marker, score_slide
from liposcope.synth import write_ihc_slide
from liposcope.wsi import Slide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8192, help="slide side in level-0 px (default 8192)")
    parser.add_argument("--mpp", type=float, default=0.25, help="slide µm/px (default 0.25, 40x)")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).parent / ".cache")
    args = parser.parse_args()
    path = args.workdir / f"ihc-{args.size}-{args.mpp}.tiff"
    if not path.exists():
        write_ihc_slide(path, seed=1, width_px=args.size, height_px=args.size, mpp=args.mpp, positive_fraction=0.3)
    marker = load_marker("ki67")
    # Baseline: read every analysis tile (same size and resolution) without scoring it.
    start = time.perf_counter()
    with Slide(path) as slide:
        mpp = max(marker.analysis_mpp, slide.mpp)
        step = round(marker.tile_px * mpp / slide.mpp)
        for y in range(0, args.size, step):
            for x in range(0, args.size, step):
                slide.read_region_at_mpp((x, y), (marker.tile_px, marker.tile_px), mpp)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    result = score_slide(path, marker)
    score_s = time.perf_counter() - start
    out = {
        "slide": f"{args.size}x{args.size} px at {args.mpp} µm/px",
        "tissue_mm2": round(result.area_mm2, 2),
        "nuclei": len(result.grades),
        "score_s": round(score_s, 2),
        "read_only_s": round(read_s, 2),
        "mm2_per_s": round(result.area_mm2 / score_s, 3),
        "nuclei_per_s": round(len(result.grades) / score_s),
        "score_over_read": round(score_s / read_s, 1),
        "cores": os.cpu_count(),
        "tiles": math.ceil(args.size / step) ** 2,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
