"""QuPath-importable GeoJSON: level-0 polygons and points with measurements and classes.

Each object is written the way QuPath 0.4+ exports detections: a ``Feature`` with a UUID ``id``,
``properties.objectType``, an optional ``properties.classification`` (``name`` and ``color``
``[r, g, b]``) and ``properties.measurements`` as an object of name → number. Coordinates are
level-0 pixels, so *File › Import objects* in QuPath places them on the slide as they are.
Non-finite measurement values are left out of that object (QuPath reads a missing value as NaN).
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liposcope.io import atomic_path

#: Fixed colours for the liposarcoma subtypes; other class names get one from ``PALETTE`` by hash.
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "WDLPS": (0, 158, 115),
    "DDLPS": (213, 94, 0),
    "MLPS": (86, 180, 233),
    "PLPS": (204, 121, 167),
    "Positive": (200, 0, 0),
    "Negative": (0, 0, 200),
    "Weak": (235, 200, 0),
    "Moderate": (235, 120, 0),
    "Strong": (170, 0, 0),
    "Mitosis": (230, 159, 0),
}
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 114, 178),
    (240, 228, 66),
    (0, 158, 115),
    (213, 94, 0),
    (86, 180, 233),
    (204, 121, 167),
    (230, 159, 0),
    (120, 120, 120),
)
_NAMESPACE = uuid.UUID("6c1f6d0e-2b7a-4f0e-9a55-6c69706f7363")


def class_color(name: str) -> tuple[int, int, int]:
    """The display colour of a class: fixed for known classes, stable by name for the rest.

    Example:
        >>> class_color("DDLPS")
        (213, 94, 0)
    """
    return CLASS_COLORS.get(name, PALETTE[zlib.crc32(name.encode()) % len(PALETTE)])


def polygon_features(
    shapes: np.ndarray | Sequence[np.ndarray],
    measurements: Mapping[str, np.ndarray] | None = None,
    classification: Sequence[str] | None = None,
    object_type: str = "detection",
) -> list[dict[str, Any]]:
    """One Polygon feature per box or polygon, in level-0 pixels.

    Args:
        shapes: N × 4 boxes ``(x, y, width, height)``, or N polygons each K × 2 ``(x, y)``
            (closed here if the first point is not repeated).
        measurements: name → N values.
        classification: N class names (or ``None`` for unclassified objects).
        object_type: QuPath object type, ``detection``, ``annotation`` or ``tile``.

    Raises:
        ValueError: shapes, measurements and classes disagree in length, or a polygon is malformed.

    Example:
        >>> feats = polygon_features(np.array([[0, 0, 256, 256]]), {"attention": np.array([1.0])}, ["DDLPS"])
        >>> feats[0]["geometry"]["coordinates"][0][:2]
        [[0, 0], [256, 0]]
    """
    rings = _box_rings(shapes) if isinstance(shapes, np.ndarray) and shapes.ndim == 2 else _polygon_rings(shapes)
    geometries = [{"type": "Polygon", "coordinates": [ring]} for ring in rings]
    return _features(geometries, measurements, classification, object_type)


def point_features(
    xy_level0: np.ndarray,
    measurements: Mapping[str, np.ndarray] | None = None,
    classification: Sequence[str] | None = None,
    object_type: str = "detection",
) -> list[dict[str, Any]]:
    """One Point feature per row of ``xy_level0`` (N × 2 level-0 pixels), e.g. nuclei or mitoses.

    Raises:
        ValueError: ``xy_level0`` is not N × 2, or measurements and classes disagree in length.

    Example:
        >>> point_features(np.array([[10.5, 20.0]]), classification=["Mitosis"])[0]["geometry"]
        {'type': 'Point', 'coordinates': [10.5, 20.0]}
    """
    xy = np.asarray(xy_level0)
    if xy.ndim != 2 or xy.shape[1] != 2:
        msg = f"points must be N × 2 (x, y), got shape {xy.shape}"
        raise ValueError(msg)
    geometries = [{"type": "Point", "coordinates": point} for point in _plain(xy)]
    return _features(geometries, measurements, classification, object_type)


def feature_collection(features: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Wrap features in a ``FeatureCollection``.

    Example:
        >>> feature_collection([])
        {'type': 'FeatureCollection', 'features': []}
    """
    return {"type": "FeatureCollection", "features": list(features)}


def write_geojson(path: str | Path, collection: dict[str, Any]) -> None:
    """Write a FeatureCollection as compact JSON, atomically.

    Raises:
        ValueError: a value is NaN or infinite (not valid JSON).

    Example:
        >>> write_geojson("heatmap.geojson", feature_collection(feats))  # doctest: +SKIP
    """
    text = json.dumps(collection, separators=(",", ":"), allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


def _box_rings(boxes: np.ndarray) -> list[list[list[float]]]:
    if boxes.shape[1] != 4:
        msg = f"boxes must be N × 4 (x, y, width, height), got shape {boxes.shape}"
        raise ValueError(msg)
    x, y, w, h = boxes.T
    corners = np.stack([[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]])  # 5 × 2 × N
    return [_plain(ring) for ring in corners.transpose(2, 0, 1)]


def _polygon_rings(polygons: np.ndarray | Sequence[np.ndarray]) -> list[list[list[float]]]:
    rings = []
    for k, polygon in enumerate(polygons):
        ring = np.asarray(polygon)
        if ring.ndim != 2 or ring.shape[1] != 2 or len(ring) < 3:
            msg = f"polygon {k} must be K × 2 with K ≥ 3, got shape {ring.shape}"
            raise ValueError(msg)
        if not np.array_equal(ring[0], ring[-1]):
            ring = np.vstack([ring, ring[:1]])
        rings.append(_plain(ring))
    return rings


def _plain(values: np.ndarray) -> Any:
    """Integers stay integers; floats are rounded to 1/100 px."""
    return values.tolist() if np.issubdtype(values.dtype, np.integer) else np.round(values, 2).tolist()


def _features(
    geometries: list[dict[str, Any]],
    measurements: Mapping[str, np.ndarray] | None,
    classification: Sequence[str] | None,
    object_type: str,
) -> list[dict[str, Any]]:
    n = len(geometries)
    columns = {name: np.asarray(values, np.float64).reshape(-1) for name, values in (measurements or {}).items()}
    for name, values in columns.items():
        if len(values) != n:
            msg = f"measurement {name!r} has {len(values)} values for {n} objects"
            raise ValueError(msg)
    if classification is not None and len(classification) != n:
        msg = f"{len(classification)} class names for {n} objects"
        raise ValueError(msg)
    features = []
    for i, geometry in enumerate(geometries):
        props: dict[str, Any] = {"objectType": object_type}
        if classification is not None:
            props["classification"] = {"name": classification[i], "color": list(class_color(classification[i]))}
        props["measurements"] = {k: float(v[i]) for k, v in columns.items() if np.isfinite(v[i])}
        feature_id = str(uuid.uuid5(_NAMESPACE, f"{object_type}:{i}:{geometry['coordinates']}"))
        features.append({"type": "Feature", "id": feature_id, "geometry": geometry, "properties": props})
    return features
