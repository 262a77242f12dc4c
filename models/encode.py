"""Tile features: ``OUT/<slide_id>.h5`` with ``coords`` (N×2) and ``features`` (N×D), the CLAM/TRIDENT layout.

Tiles stream from DataLoader workers as uint8 blocks; normalisation, resizing and the encoder run on
the device (bf16/fp16 autocast if asked). A file appears only when complete, and a slide whose file
records the same slide, settings and weights is skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from liposcope.errors import ConfigError, SlideError, where
from liposcope.models.backbones import Backbone
from liposcope.models.feature_file import FeatureFile, write_feature_file
from liposcope.progress import progress
from liposcope.resume import is_done, output_lock, recorded_key, resume_key
from liposcope.wsi import Slide, TileBlockDataset, TileGrid, TileSpec, TissueParams, build_grid, detect_tissue
from liposcope.wsi.dataset import worker_errors
from liposcope.wsi.slide import slide_id_from_path
from liposcope.wsi.stain import stain_descriptor
from liposcope.wsi.tiling import TILES_H5

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(where(f"--device {device}", "no CUDA device is available", "use --device cpu"))
    return torch.device(device)


def extract_features(
    slide_path: str | Path,
    out: str | Path,
    backbone: Backbone,
    spec: TileSpec,
    tissue: TissueParams,
    *,
    tiles_dir: str | Path | None = None,
    slide_mpp: float | None = None,
    batch_size: int = 64,
    workers: int = 0,
    device: str = "auto",
    precision: str = "fp32",
) -> tuple[Path, bool]:
    """Encode every tile of a slide and write ``out/<slide_id>.h5`` (:mod:`liposcope.models.feature_file`).

    Args:
        tiles_dir: folder of a previous ``liposcope tile`` run to take the grid from; else the slide is tiled
            with ``spec`` and ``tissue``.

    Returns:
        The feature file and whether it was already complete (skipped; see :mod:`liposcope.resume`).

    Example:
        >>> bb = create_backbone("resnet18", "random")  # doctest: +SKIP
        >>> path, skipped = extract_features("case.svs", "feats", bb, *tiling_config())  # doctest: +SKIP
    """
    target = Path(out) / f"{slide_id_from_path(slide_path)}.h5"
    grid_file = Path(tiles_dir) / slide_id_from_path(slide_path) / TILES_H5 if tiles_dir is not None else None
    settings = {
        "backbone": asdict(backbone.spec),
        "tiling": asdict(spec),
        "tissue": asdict(tissue),
        "tiles": recorded_key(grid_file) if grid_file else None,
        "slide_mpp": slide_mpp,
        "precision": precision,
    }
    key = resume_key(slide_path, settings, backbone.spec.weights_sha256)
    with output_lock(target):
        if is_done(target, key):
            return target, True
        grid, stain = _grid_and_stain(Path(slide_path), spec, tissue, grid_file, slide_mpp)
        dev = pick_device(device)
        features = encode(grid, backbone, dev, batch_size=batch_size, workers=workers, precision=precision)
        write_feature_file(target, FeatureFile(features, grid, backbone.spec, tissue, precision, tuple(stain)), key)
    return target, False


def _grid_and_stain(
    path: Path, spec: TileSpec, tissue: TissueParams, grid_file: Path | None, slide_mpp: float | None
) -> tuple[TileGrid, np.ndarray]:
    """The tile grid (from ``grid_file`` or built now) and the slide's stain descriptor."""
    if grid_file is not None and not grid_file.is_file():
        raise SlideError(where(grid_file, "tile grid not found", "run `liposcope tile` first or drop --tiles"))
    with Slide(path, mpp=slide_mpp) as slide:
        mask, thumbnail = detect_tissue(slide, tissue)
        stain = stain_descriptor(thumbnail, mask.resized(thumbnail.shape[:2]))
        if grid_file is not None:  # the grid's stored path is printable text; read the file given
            grid = dataclasses.replace(TileGrid.load(grid_file), slide_path=str(path.resolve()))
        else:
            grid = build_grid(slide, mask, spec)
    return grid, stain


@torch.inference_mode()
def encode(
    grid: TileGrid, backbone: Backbone, device: torch.device, *, batch_size: int, workers: int, precision: str
) -> np.ndarray:
    """N × D float32 features of the grid's tiles, in grid order."""
    if precision not in PRECISIONS:
        raise ConfigError(where(f"--precision {precision}", "unknown precision", f"use one of {', '.join(PRECISIONS)}"))
    model = backbone.model.to(device)
    dataset = TileBlockDataset(grid.slide_path, grid)
    loader = DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=device.type == "cuda")
    out = np.empty((len(grid), backbone.spec.feature_dim), np.float32)
    pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def flush() -> None:
        indices = torch.cat([i for i, _ in pending])
        tiles = torch.cat([t for _, t in pending]).to(device, non_blocking=True)  # b x 3 x h x w uint8
        x = backbone.prepare(tiles)
        dtype = PRECISIONS[precision]
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            feats = model(x)  # b x d
        out[indices.numpy()] = feats.float().cpu().numpy()
        pending.clear()

    for block in progress(worker_errors(loader), total=len(dataset), desc=f"{grid.slide_id} features", unit="block"):
        pending.append(block)
        if sum(len(i) for i, _ in pending) >= batch_size:
            flush()
    if pending:
        flush()
    return out
