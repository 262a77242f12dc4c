"""What the viewer may serve: slides found from the commands' outputs (or given as files), and their layers.

An output folder of ``predict``, ``ihc``, ``mitoses`` or ``tile`` holds per-slide folders; each names its slide in
the provenance of its results (``prediction.json``, ``ihc.json``, ``mitoses.json``, ``tiles.h5``). Every
``*.geojson`` in a slide's folder is a layer served byte for byte; ``hotspots`` (the boxes in the results) and
``tissue`` (the tile grid of ``tiles.h5``) are built from the files as GeoJSON in the same level-0 pixels.
Nothing outside this registry is ever opened on a request.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liposcope.errors import LiposcopeError, where
from liposcope.wsi.geojson import feature_collection, polygon_features

log = logging.getLogger(__name__)

#: Result files of the commands, by the name the viewer's side panel uses.
RESULTS = {"prediction": "prediction.json", "ihc": "ihc.json", "mitoses": "mitoses.json"}
TILES_FILE = "tiles.h5"
_LAYER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass
class SlideEntry:
    """One registered slide: its file, mpp, result JSONs and layers (name → GeoJSON bytes, made on demand)."""

    slide_id: str
    slide_path: Path
    mpp: float | None
    dimensions: tuple[int, int]
    folder: Path | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    layers: dict[str, Callable[[], bytes]] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The entry as ``GET /api/slides`` lists it."""
        return {
            "slide_id": self.slide_id,
            "slide_path": str(self.slide_path),
            "mpp": self.mpp,
            "layers": sorted(self.layers),
            "dimensions": list(self.dimensions),
            "folder": str(self.folder) if self.folder else None,
            "results": sorted(self.results),
            "url": f"/slides/{self.slide_id}",
        }


def build_registry(paths: Iterable[str | Path]) -> dict[str, SlideEntry]:
    """Register every slide named by ``paths`` (output folders or slide files), keyed by slide id.

    An output folder is searched one level deep (``OUT/<slide_id>/`` or a slide folder itself). A slide
    whose file is gone is left out with a warning.

    Raises:
        LiposcopeError: a path does not exist, or nothing viewable was found.
    """
    entries: dict[str, SlideEntry] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise LiposcopeError(where(path, "no such file or folder", "pass an output folder or a slide file"))
        if path.is_file():
            _add(entries, _slide_entry(path, None, {}))
            continue
        for folder in (path, *sorted(p for p in path.iterdir() if p.is_dir())):
            entry = _folder_entry(folder)
            if entry is not None:
                _add(entries, entry)
    if not entries:
        names = ", ".join(str(p) for p in paths)
        msg = where(
            names,
            "no slides found (no prediction.json, ihc.json, mitoses.json or tiles.h5 naming a slide)",
            "pass the --out folder of predict/ihc/mitoses/tile, or slide files",
        )
        raise LiposcopeError(msg)
    return entries


def _add(entries: dict[str, SlideEntry], entry: SlideEntry | None) -> None:
    if entry is None:
        return
    old = entries.get(entry.slide_id)
    if old is None:
        entries[entry.slide_id] = entry
    elif old.slide_path.resolve() != entry.slide_path.resolve():
        log.warning("%s: slide id %s already taken by %s; left out", entry.slide_path, entry.slide_id, old.slide_path)
    elif entry.folder is not None and old.folder is None:  # a slide given as a file and its outputs: keep the outputs
        entries[entry.slide_id] = entry


def _folder_entry(folder: Path) -> SlideEntry | None:
    results = {name: _read_json(folder / file) for name, file in RESULTS.items() if (folder / file).is_file()}
    tiles = folder / TILES_FILE
    named = [_slide_path_of(data) for data in results.values()]
    if tiles.is_file():
        named.append(_tiles_attrs(tiles).get("slide_path"))
    candidates = [Path(p) for p in named if p]
    if not candidates:
        return None
    slide_path = next((p for p in (_locate(c, folder) for c in candidates) if p), None)
    if slide_path is None:
        log.warning("%s: its slide %s is not there; left out", folder, candidates[0])
        return None
    return _slide_entry(slide_path, folder, results)


def _slide_entry(path: Path, folder: Path | None, results: dict[str, dict[str, Any]]) -> SlideEntry | None:
    from liposcope.wsi.slide import Slide

    try:
        with Slide(path) as slide:
            own_mpp = slide.mpp if slide.mpp_source else None
            dimensions = slide.dimensions
            slide_id = slide.slide_id
    except LiposcopeError as exc:
        if folder is None:
            raise
        log.warning("%s; left out", exc)
        return None
    recorded = [r.get("slide_mpp") for r in results.values()]
    mpp = next((float(m) for m in recorded if isinstance(m, (int, float)) and m > 0), own_mpp)
    entry = SlideEntry(slide_id, path, mpp, dimensions, folder, results)
    if folder is not None:
        entry.layers = _layers(folder, results)
    return entry


def _layers(folder: Path, results: Mapping[str, dict[str, Any]]) -> dict[str, Callable[[], bytes]]:
    layers: dict[str, Callable[[], bytes]] = {}
    for path in sorted(folder.glob("*.geojson")):
        if _LAYER_NAME.fullmatch(path.stem):
            layers[path.stem] = path.read_bytes  # the file as the command wrote it, read on each request
    boxes = {
        name: {"label": r.get("marker", name), **r["hotspot"]}
        for name, r in results.items()
        if isinstance(r.get("hotspot"), dict)
    }
    if boxes and "hotspots" not in layers:
        layers["hotspots"] = _once(lambda: _hotspots_geojson(boxes))
    if (folder / TILES_FILE).is_file() and "tissue" not in layers:
        layers["tissue"] = _once(lambda: _tissue_geojson(folder / TILES_FILE))
    return layers


def _hotspots_geojson(boxes: Mapping[str, dict[str, Any]]) -> bytes:
    """One polygon per hotspot box (level-0 x, y, width, height), its numbers as measurements."""
    names = [n for n in boxes if len(boxes[n].get("box_level0", ())) == 4]
    xywh = np.array([boxes[n]["box_level0"] for n in names], dtype=np.float64).reshape(-1, 4)
    numeric = sorted({k for n in names for k, v in boxes[n].items() if isinstance(v, (int, float))})
    measurements = {k: np.array([boxes[n].get(k, np.nan) for n in names], dtype=np.float64) for k in numeric}
    classes = [f"{boxes[n].get('label', n)} hotspot" for n in names]
    return _dump(feature_collection(polygon_features(xywh, measurements, classes, object_type="annotation")))


def _tissue_geojson(tiles: Path) -> bytes:
    """The tile grid of ``liposcope tile``: one box per tile with its tissue fraction."""
    from liposcope.wsi.grid import TileGrid

    grid = TileGrid.load(tiles)
    coords = grid.coords_level0.astype(np.int64).reshape(-1, 2)
    xywh = np.column_stack([coords, np.full((len(coords), 2), grid.tile_size_level0, dtype=np.int64)])
    measurements = {"tissue_fraction": grid.tissue_fraction.astype(np.float64)}
    return _dump(feature_collection(polygon_features(xywh, measurements, object_type="tile")))


def _dump(collection: dict[str, Any]) -> bytes:
    return json.dumps(collection, separators=(",", ":"), allow_nan=False).encode()


def _once(make: Callable[[], bytes]) -> Callable[[], bytes]:
    cache: list[bytes] = []

    def get() -> bytes:
        if not cache:
            cache.append(make())
        return cache[0]

    return get


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); ignored", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _slide_path_of(result: Mapping[str, Any]) -> str | None:
    prov = result.get("provenance") or {}
    for value in (prov.get("slide_path"), (prov.get("slide") or {}).get("slide_path"), result.get("slide_path")):
        if isinstance(value, str) and value:
            return value
    return None


def _tiles_attrs(path: Path) -> dict[str, Any]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    except OSError as exc:
        log.warning("%s: unreadable (%s); ignored", path, exc)
        return {}


def _locate(recorded: Path, folder: Path) -> Path | None:
    """The slide file as recorded (absolute, or relative to where the command ran or to the output folder)."""
    tries = [recorded] if recorded.is_absolute() else [recorded, folder / recorded, folder.parent / recorded]
    return next((p for p in tries if p.is_file()), None)
