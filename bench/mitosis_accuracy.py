"""Mitosis accuracy sweep against planted truth: fresh seeds, 0-40 figures per 10 HPF, all subtypes.

--draw held-out: the training generator, only the figure families the packaged detector never saw
--draw all: the training generator, every family
--draw blind: the independent drawing process (synth/mitoses_blind.py), never used for training or tuning

python bench/mitosis_accuracy.py --draw held-out --seed 20000
python bench/mitosis_accuracy.py --draw all --mpp 0.5 --model run20/model   # 20x slides, a 0.5 µm/px model
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from liposcope.mitoses.detect import Detector
from liposcope.mitoses.evaluate import evaluate_slide, summarise
from liposcope.mitoses.settings import load_settings
from liposcope.synth.mitoses import HELD_OUT_FAMILIES, SHAPES, family_shapes, load_mitosis_truth, write_mitosis_slide
from liposcope.synth.mitoses_blind import write_blind_slide

LABELS = ("PLPS", "MLPS", "WDLPS", "DDLPS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draw", choices=("held-out", "all", "blind"), default="held-out")
    parser.add_argument("--seed", type=int, default=20_000)
    parser.add_argument("--slides", type=int, default=12)
    parser.add_argument("--mpp", type=float, default=0.25, help="slide resolution (0.25 or 0.5)")
    parser.add_argument("--model", type=Path, help="model folder (default: the packaged detector)")
    parser.add_argument("--config", type=Path, help="mitoses.yaml for the model (default: configs/mitoses.yaml)")
    parser.add_argument("--workdir", type=Path, help="keep the slides here and reuse them (default: a temp folder)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    detector = Detector.load(args.model)
    side = round(2048 / args.mpp)  # 2 mm × 2 mm, more than 10 HPF of tissue on most slides
    shapes = family_shapes(HELD_OUT_FAMILIES) if args.draw == "held-out" else SHAPES
    rows = []
    settings = load_settings(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.workdir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for k, rate in enumerate(np.linspace(0.0, 40.0, args.slides)):
            seed, label = args.seed + k, LABELS[k % 4]
            path = folder / f"{args.draw}-{args.mpp}-{seed}.tiff"
            geometry = {"label": label, "seed": seed, "width_px": side, "height_px": side, "mpp": args.mpp}
            if path.exists():
                truth = load_mitosis_truth(path)
            elif args.draw == "blind":
                _, truth = write_blind_slide(path, per_10hpf=float(rate), **geometry)
            else:
                variation = 1.0 + 0.1 * (k % 3)
                _, truth = write_mitosis_slide(
                    path,
                    per_10hpf=float(rate),
                    shapes=shapes,
                    stain_variation=variation,
                    **geometry,
                )
            out = evaluate_slide(path, truth.xy[truth.mitotic], detector, settings)
            rows.append(out)
            print(json.dumps({"seed": seed, "label": label, "rate": round(float(rate), 1), **asdict(out),
                              "count_ok": out.count_ok}), flush=True)  # fmt: skip
            if args.workdir is None:
                path.unlink()
    summary = {"draw": args.draw, "seed": args.seed, "mpp": args.mpp, "model": detector.source, **summarise(rows)}
    print(json.dumps(summary), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "slides": [asdict(o) for o in rows]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
