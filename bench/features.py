"""Feature-extraction throughput: end to end (slide → features) against the model forward alone.

Both are measured in the same run with the same backbone, batch size, device and precision:
  forward only: the backbone on synthetic uint8 tiles already in memory (``Backbone.prepare`` + model),
  end to end:   ``liposcope.models.encode.encode`` over a slide's tile grid (reading, DataLoader workers,
                normalisation on the device, model).
The ratio end-to-end / forward-only says how much of the model's speed the pipeline delivers.

Usage:
    python bench/features.py                          # CPU, resnet18, random weights
    python bench/features.py --backbone vit_base_patch16_224 --device cuda --precision bf16 --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from liposcope.models.backbones import Backbone, create_backbone
from liposcope.models.encode import PRECISIONS, encode, pick_device
from liposcope.wsi import Slide, TileSpec, build_grid, detect_tissue


def synthetic_slide(workdir: Path, size: int) -> Path:
    """A cached ``size`` x ``size`` synthetic DDLPS slide at 0.5 µm/px."""
    from liposcope.synth import write_slide

    path = workdir / f"features_ddlps_{size}px.tiff"
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        write_slide(path, label="DDLPS", seed=7, width_px=size, height_px=size, mpp=0.5)
    return path


@torch.inference_mode()
def forward_only(
    backbone: Backbone, device: torch.device, tile_px: int, batch: int, precision: str, seconds: float
) -> float:
    """Tiles/s of prepare + forward on random uint8 tiles already on the device."""
    model = backbone.model.to(device)
    tiles = torch.randint(0, 256, (batch, 3, tile_px, tile_px), dtype=torch.uint8, device=device)
    dtype = PRECISIONS[precision]

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            model(backbone.prepare(tiles))
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):  # warm-up: allocator, thread pool, cuDNN autotuning
        step()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--weights", default="random")
    p.add_argument("--tile-px", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=tuple(PRECISIONS))
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--size", type=int, default=8000, help="synthetic slide side in px at 0.5 µm/px")
    p.add_argument("--seconds", type=float, default=10.0, help="duration of the forward-only measurement")
    p.add_argument("--workdir", type=Path, default=Path(__file__).parent / ".cache")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    device = pick_device(args.device)
    backbone = create_backbone(args.backbone, args.weights)
    path = synthetic_slide(args.workdir, args.size)
    with Slide(path) as slide:
        grid = build_grid(slide, detect_tissue(slide)[0], TileSpec(0.5, args.tile_px, 0, 0.5))
    measure = (backbone, device, args.tile_px, args.batch_size, args.precision, args.seconds)
    before = forward_only(*measure)
    rows = {}
    for workers in args.workers:
        start = time.perf_counter()
        encode(grid, backbone, device, batch_size=args.batch_size, workers=workers, precision=args.precision)
        rows[f"end_to_end_workers{workers}"] = len(grid) / (time.perf_counter() - start)
    ceiling = max(before, forward_only(*measure))  # measured before and after: load drift hits both sides
    rows = {"forward_only": ceiling, **rows}
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
        "backbone": args.backbone,
        "tile_px": args.tile_px,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "tiles": len(grid),
        "tiles_per_s": {k: round(v, 1) for k, v in rows.items()},
        "ratio_to_forward": {k: round(v / ceiling, 2) for k, v in rows.items()},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
