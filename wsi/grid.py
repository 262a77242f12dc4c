"""Tile grids: level-0 coordinates of tiles at a physical resolution, and their HDF5 codec (tiles.h5, feature files)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from liposcope import __version__
from liposcope.errors import ConfigError, NoTissueError, SlideError, printable, where
from liposcope.io import h5_output
from liposcope.wsi.slide import Slide
from liposcope.wsi.tissue import TissueMask

#: Most tile positions a grid may lay (memory for their coordinates and tissue fractions stays under ~1 GB).
MAX_GRID_POSITIONS = 1 << 26


@dataclass(frozen=True)
class TileSpec:
    """Tiles of ``tile_px`` pixels at ``target_mpp`` µm/px, overlapping by ``overlap_px``, kept at ≥ ``min_tissue``."""

    target_mpp: float
    tile_px: int
    overlap_px: int
    min_tissue: float

    def __post_init__(self) -> None:
        problems = [
            (not 0.01 <= self.target_mpp <= 100, f"target mpp {self.target_mpp} must be in [0.01, 100] µm/px"),
            (self.tile_px < 8, f"tile size {self.tile_px} px must be at least 8"),
            (not 0 <= self.overlap_px < self.tile_px, f"overlap {self.overlap_px} px must be in [0, tile size)"),
            (not 0.0 <= self.min_tissue <= 1.0, f"min tissue {self.min_tissue} must be in [0, 1]"),
        ]
        for bad, message in problems:
            if bad:
                raise ConfigError(where("tiling", message, "fix the value"))

    def size_level0(self, slide_mpp: float) -> int:
        """Tile side in level-0 pixels."""
        return max(1, round(self.tile_px * self.target_mpp / slide_mpp))

    def step_level0(self, slide_mpp: float) -> int:
        """Distance between neighbouring tiles in level-0 pixels."""
        return max(1, round((self.tile_px - self.overlap_px) * self.target_mpp / slide_mpp))


@dataclass(frozen=True)
class TileGrid:
    """Tiles of one slide: ``coords_level0`` (N × 2, x, y of each top-left corner) and their tissue fraction.

    ``level0_dims`` is the slide's level-0 width and height ((0, 0) in grids read from files before it was stored).
    """

    coords_level0: np.ndarray
    tissue_fraction: np.ndarray
    spec: TileSpec
    tile_size_level0: int
    slide_mpp: float
    mpp_source: str
    slide_id: str
    slide_path: str
    level0_dims: tuple[int, int] = (0, 0)

    def __len__(self) -> int:
        return len(self.coords_level0)

    def attrs(self) -> dict[str, Any]:
        """File attributes describing the grid (the ``tiles.h5`` contract; also in every feature file)."""
        return {
            "target_mpp": self.spec.target_mpp,
            "tile_size": self.spec.tile_px,
            "tile_size_level0": self.tile_size_level0,
            "overlap": self.spec.overlap_px,
            "min_tissue": self.spec.min_tissue,
            "slide_mpp": self.slide_mpp,
            "mpp_source": self.mpp_source,
            "slide_id": printable(self.slide_id),  # HDF5 text is UTF-8: undecodable name bytes as \\xNN
            "slide_path": printable(self.slide_path),
            "version": __version__,
        }

    def coords_attrs(self) -> dict[str, Any]:
        """Attributes of the ``coords`` dataset as CLAM and TRIDENT readers expect them.

        Coordinates are level-0 pixels and tiles are read at level 0 (``patch_level`` 0) over ``patch_size_level0``
        pixels, then resized to ``patch_size`` (the tile side at the target resolution); ``downsample`` is that
        level-0 → target scale, ``level_dim`` the slide's level-0 size.
        """
        scale = self.tile_size_level0 / self.spec.tile_px
        width, height = self.level0_dims
        return {
            "patch_size": self.spec.tile_px,
            "patch_size_level0": self.tile_size_level0,
            "patch_level": 0,
            "level_dim": np.array([width, height], np.int64),
            "downsample": np.array([scale, scale], np.float64),
            "downsampled_level_dim": np.array([round(width / scale), round(height / scale)], np.int64),
            "level0_magnification": round(10.0 / self.slide_mpp, 3),
            "target_magnification": round(10.0 / self.spec.target_mpp, 3),
            "overlap": self.spec.overlap_px,
            "name": printable(self.slide_id),
        }

    def write(self, h5: h5py.File, extra_attrs: dict[str, Any] | None = None) -> None:
        """Datasets ``coords`` (with :meth:`coords_attrs`) and ``tissue_fraction``, and the file attributes."""
        coords = h5.create_dataset("coords", data=self.coords_level0.astype(np.int64))
        coords.attrs.update(self.coords_attrs())
        h5.create_dataset("tissue_fraction", data=self.tissue_fraction.astype(np.float32))
        for key, value in {**self.attrs(), **(extra_attrs or {})}.items():
            h5.attrs[key] = value if isinstance(value, str | int | float) else json.dumps(value)

    def save(self, path: str | Path, extra_attrs: dict[str, Any] | None = None) -> None:
        """Write the grid (:meth:`write`) to ``path`` atomically."""
        with h5_output(path) as h5:
            self.write(h5, extra_attrs)

    @classmethod
    def read(cls, h5: h5py.File) -> TileGrid:
        """The grid in an open file written by :meth:`write` (or by any earlier liposcope version).

        The slide's mpp, id and path are optional (0, the file name, empty) for files other tools wrote.

        Raises:
            KeyError: ``coords`` or a tiling attribute is missing.
        """
        a = dict(h5.attrs)
        spec = TileSpec(float(a["target_mpp"]), int(a["tile_size"]), int(a["overlap"]), float(a["min_tissue"]))
        coords = h5["coords"]
        dims = coords.attrs.get("level_dim", (0, 0))
        fraction = h5["tissue_fraction"][:] if "tissue_fraction" in h5 else np.ones(len(coords), np.float32)
        return cls(
            coords_level0=coords[:],
            tissue_fraction=fraction,
            spec=spec,
            tile_size_level0=int(a["tile_size_level0"]),
            slide_mpp=float(a.get("slide_mpp", 0.0)),
            mpp_source=str(a.get("mpp_source", "unknown")),
            slide_id=str(a.get("slide_id", Path(h5.filename).stem)),
            slide_path=str(a.get("slide_path", "")),
            level0_dims=(int(dims[0]), int(dims[1])),
        )

    @classmethod
    def load(cls, path: str | Path) -> TileGrid:
        """Read a grid from ``tiles.h5`` or a feature file.

        Raises:
            SlideError: the file is not a liposcope tile grid.
        """
        try:
            with h5py.File(path, "r") as h5:
                return cls.read(h5)
        except (OSError, KeyError) as exc:
            msg = where(path, f"not a liposcope tile grid ({exc})", "re-run `liposcope tile` to create it")
            raise SlideError(msg) from exc


def build_grid(slide: Slide, mask: TissueMask, spec: TileSpec) -> TileGrid:
    """Tiles of ``spec`` over the slide, kept where the tissue fraction is at least ``spec.min_tissue``.

    Raises:
        SlideError: a tile is larger than the slide.
        NoTissueError: no tile has enough tissue.

    Example:
        >>> grid = build_grid(slide, detect_tissue(slide)[0], TileSpec(0.5, 256, 0, 0.5))  # doctest: +SKIP
    """
    check_tile_fits(slide, spec)
    size0, step0 = spec.size_level0(slide.mpp), spec.step_level0(slide.mpp)
    width, height = slide.dimensions
    positions = ((width - size0) // step0 + 1) * ((height - size0) // step0 + 1)
    if positions > MAX_GRID_POSITIONS:
        tiles = f"{spec.tile_px} px at {spec.target_mpp} µm/px"
        problem = f"{positions:,} tile positions of {tiles}, more than {MAX_GRID_POSITIONS:,}"
        raise SlideError(where(slide.path, problem, "use a coarser --mpp, a larger --tile-size or less --overlap"))
    xs, ys = np.arange(0, width - size0 + 1, step0), np.arange(0, height - size0 + 1, step0)
    coords = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.int64)
    fraction = mask.fraction_in_boxes(coords, size0)
    keep = fraction >= max(spec.min_tissue, 1e-6)
    if not keep.any():
        msg = where(
            slide.path,
            f"no tile has at least {spec.min_tissue:.0%} tissue ({mask.area_mm2:.2f} mm² of tissue found)",
            "lower --min-tissue or --tile-size",
        )
        raise NoTissueError(msg)
    return TileGrid(
        coords_level0=coords[keep],
        tissue_fraction=fraction[keep],
        spec=spec,
        tile_size_level0=size0,
        slide_mpp=slide.mpp,
        mpp_source=slide.mpp_source or "unknown",
        slide_id=slide.slide_id,
        slide_path=str(slide.path.resolve()),
        level0_dims=(int(width), int(height)),
    )


def check_tile_fits(slide: Slide, spec: TileSpec) -> None:
    """Raise ``SlideError`` if one tile of ``spec`` is larger than the slide."""
    size0 = spec.size_level0(slide.mpp)
    width, height = slide.dimensions
    if size0 > min(width, height):
        msg = where(
            slide.path,
            f"a {spec.tile_px}-px tile at {spec.target_mpp} µm/px spans {size0} level-0 px "
            f"but the slide is only {width}x{height} px",
            "use a smaller --tile-size or a finer --mpp",
        )
        raise SlideError(msg)
