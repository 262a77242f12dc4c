"""``tile_slide``: one slide in, ``OUT/<slide_id>/{tiles.h5, tissue.png, tiles/}`` out; resumable."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from liposcope.config import from_dict, load_yaml, merge
from liposcope.io import atomic_path, output_dir, provenance, write_png
from liposcope.progress import progress
from liposcope.resume import RESUME_KEY, is_done, output_lock, resume_key
from liposcope.wsi.grid import TileGrid, TileSpec, build_grid, check_tile_fits
from liposcope.wsi.reader import TileReader
from liposcope.wsi.slide import Slide, slide_id_from_path
from liposcope.wsi.tissue import TissueMask, TissueParams, detect_tissue

TILES_H5, TISSUE_PNG, TILE_IMAGES = "tiles.h5", "tissue.png", "tiles"


def tile_slide(
    slide_path: str | Path,
    out: str | Path,
    spec: TileSpec | None = None,
    tissue: TissueParams | None = None,
    *,
    slide_mpp: float | None = None,
    save_images: bool = False,
) -> tuple[TileGrid, bool]:
    """Detect tissue, build the tile grid and write it under ``out/<slide_id>/``.

    A slide whose ``tiles.h5`` records the same slide and settings is skipped (:mod:`liposcope.resume`).

    Returns:
        The grid, and whether it was loaded from a previous run.

    Raises:
        LiposcopeError: bad slide, unknown mpp, no tissue or a tile larger than the slide;
            nothing is left behind for this slide.

    Example:
        >>> grid, skipped = tile_slide("case.svs", "out")  # doctest: +SKIP
        >>> grid.coords_level0.shape  # doctest: +SKIP
        (1234, 2)
    """
    if spec is None or tissue is None:
        default_spec, default_tissue = tiling_config()
        spec, tissue = spec or default_spec, tissue or default_tissue
    folder = Path(out) / slide_id_from_path(slide_path)
    settings = {"tiling": asdict(spec), "tissue": asdict(tissue), "save_images": save_images, "slide_mpp": slide_mpp}
    key = resume_key(slide_path, settings)
    with output_lock(folder):
        if is_done(folder / TILES_H5, key) and (not save_images or (folder / TILE_IMAGES).is_dir()):
            return TileGrid.load(folder / TILES_H5), True
        return _tile(Path(slide_path), folder, spec, tissue, slide_mpp, save_images, key), False


def _tile(
    slide_path: Path,
    folder: Path,
    spec: TileSpec,
    tissue: TissueParams,
    slide_mpp: float | None,
    save_images: bool,
    key: dict[str, object],
) -> TileGrid:
    with Slide(slide_path, mpp=slide_mpp) as slide:
        check_tile_fits(slide, spec)
        mask, thumbnail = detect_tissue(slide, tissue)
        grid = build_grid(slide, mask, spec)
        with output_dir(folder):
            write_png(folder / TISSUE_PNG, draw_tissue(thumbnail, mask, grid))
            if save_images:
                with atomic_path(folder / TILE_IMAGES) as tmp:
                    write_tile_images(TileReader(slide, grid), tmp)
            extra = {
                "settings": key["settings"],
                "tissue_area_mm2": mask.area_mm2,
                "tissue_threshold_od": mask.threshold_od,
                "provenance": provenance(slide=slide.describe()),
                RESUME_KEY: key,
            }
            grid.save(folder / TILES_H5, extra)
    return grid


def write_tile_images(reader: TileReader, folder: Path, quality: int = 90) -> None:
    """Write every tile as ``x<X>_y<Y>.jpg`` (level-0 top-left corner) under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    coords = reader.grid.coords_level0
    bar = progress(reader, total=len(reader.blocks), desc=f"{reader.slide.slide_id} tiles", unit="block")
    for indices, tiles in bar:
        for index, tile in zip(indices, tiles, strict=True):
            x, y = coords[index]
            ok, data = cv2.imencode(".jpg", tile[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                msg = f"JPEG encoding failed for tile x{x}_y{y}"
                raise OSError(msg)
            (folder / f"x{x}_y{y}.jpg").write_bytes(data.tobytes())  # a full disk raises, unlike cv2.imwrite


def draw_tissue(thumbnail: np.ndarray, mask: TissueMask, grid: TileGrid) -> np.ndarray:
    """The thumbnail with the tissue contour (green) and the kept tiles (blue) drawn on it."""
    canvas = np.ascontiguousarray(thumbnail.copy())
    size = (canvas.shape[1], canvas.shape[0])
    to_px = canvas.shape[1] / (mask.mask.shape[1] * mask.downsample)  # level-0 px → canvas px
    side = max(1, round(grid.tile_size_level0 * to_px))
    for x, y in np.rint(grid.coords_level0 * to_px).astype(int):
        cv2.rectangle(canvas, (x, y), (x + side, y + side), (40, 90, 220), 1)
    outline = cv2.resize(mask.mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(outline, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(canvas, contours, -1, (0, 170, 0), max(1, round(2 * max(size) / 1024)))
    return canvas


def tiling_config(path: str | Path | None = None, **overrides: object) -> tuple[TileSpec, TissueParams]:
    """Packaged ``configs/tiling.yaml``, updated by a user file and then by non-``None`` overrides.

    Raises:
        ConfigError: unknown keys or bad values, naming the file.

    Example:
        >>> spec, tissue = tiling_config(target_mpp=0.25)
        >>> spec.target_mpp
        0.25
    """
    data = load_yaml("tiling")
    if path is not None:
        data = merge(data, load_yaml(path))
    data = merge(data, overrides)
    source = str(path or "configs/tiling.yaml")
    tissue = from_dict(TissueParams, data.pop("tissue", {}), f"{source}: tissue")
    return from_dict(TileSpec, data, source), tissue
