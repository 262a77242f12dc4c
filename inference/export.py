"""Files a pathologist opens from a ``SlidePrediction``: prediction.json, heatmap.geojson, top tiles.

Per-class tile scores are named ``p_<CLASS>`` in the GeoJSON measurements (so they sit apart from
``attention`` in QuPath's measurement table) and are a ``scores`` object ``{class: p}`` in each
``top_tiles`` entry of prediction.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from liposcope.inference.heatmap import GREY, draw_text
from liposcope.inference.result import SlidePrediction
from liposcope.io import provenance, write_json
from liposcope.report import Section, escape, facts_table, warnings_html
from liposcope.wsi.geojson import feature_collection, polygon_features, write_geojson
from liposcope.wsi.slide import Slide

#: Gallery layout: tiles per row, displayed tile side range and caption height, in pixels.
COLUMNS, MIN_CELL, MAX_CELL, CAPTION_PX, GAP_PX = 4, 256, 512, 52, 8


def prediction_dict(pred: SlidePrediction, top_k: int = 8) -> dict[str, Any]:
    """The content of prediction.json (see :func:`write_prediction_json`).

    Example:
        >>> prediction_dict(pred)["predicted_class"]  # doctest: +SKIP
        'DDLPS'
    """
    return {
        "predicted_class": pred.predicted_class,
        "abstained": pred.abstained,
        "abstain_reasons": list(pred.abstain_reasons),
        "call": pred.call,
        "probabilities": {c: float(p) for c, p in zip(pred.classes, pred.probabilities, strict=True)},
        "tiles_analysed": len(pred.attention),
        "tissue_area_mm2": float(pred.tissue_area_mm2),
        "slide_mpp": float(pred.slide_mpp),
        "mpp_source": pred.mpp_source,
        "target_mpp": float(pred.target_mpp),
        "tile_px": int(pred.tile_px),
        "top_tiles": [_tile_entry(pred, int(i), rank) for rank, i in enumerate(pred.top_tiles(top_k), start=1)],
        "warnings": list(pred.warnings),
        "provenance": {
            **provenance(slide_path=pred.slide_path, slide_id=pred.slide_id, model=pred.model),
            **pred.provenance,
        },
    }


def write_prediction_json(
    path: str | Path, pred: SlidePrediction, top_k: int = 8, *, resume: dict[str, Any] | None = None
) -> None:
    """Write prediction.json: class, probabilities, the ``top_k`` tiles, warnings and provenance.

    Keys: ``predicted_class`` (the most probable class), ``abstained`` (true: no call, see
    ``abstain_reasons``), ``call`` (the class, or null when abstained), ``probabilities``,
    ``tiles_analysed``, ``tissue_area_mm2``,
    ``slide_mpp``, ``mpp_source``, ``target_mpp``, ``tile_px``, ``top_tiles`` (``x``, ``y``,
    ``width``, ``height`` in level-0 px, ``attention``, ``rank`` from 1, ``scores``), ``warnings``
    and ``provenance`` (slide, model, liposcope version, config; ``pred.provenance`` wins); ``resume`` is the
    manifest of :mod:`liposcope.resume`.

    Example:
        >>> write_prediction_json(out / "prediction.json", pred)  # doctest: +SKIP
    """
    write_json(path, {**prediction_dict(pred, top_k), **({"resume": resume} if resume else {})})


def _tile_entry(pred: SlidePrediction, index: int, rank: int) -> dict[str, Any]:
    x, y = (int(v) for v in pred.coords_level0[index])
    size = int(pred.tile_size_level0)
    scores = {c: float(p) for c, p in zip(pred.classes, pred.tile_scores[index], strict=True)}
    return {
        "x": x,
        "y": y,
        "width": size,
        "height": size,
        "attention": float(pred.attention[index]),
        "rank": rank,
        "scores": scores,
    }


def heatmap_collection(pred: SlidePrediction) -> dict[str, Any]:
    """One level-0 Polygon per tile with ``attention`` and ``p_<CLASS>`` measurements.

    Each tile is classified as its most probable class, so QuPath colours tiles by class and can
    colour them by any measurement (*Measure › Show measurement maps*).

    Example:
        >>> len(heatmap_collection(pred)["features"]) == len(pred.attention)  # doctest: +SKIP
        True
    """
    coords = np.asarray(pred.coords_level0, np.int64)
    boxes = np.column_stack([coords, np.full((len(coords), 2), pred.tile_size_level0, np.int64)])
    scores = np.asarray(pred.tile_scores, np.float64)
    measurements = {"attention": np.asarray(pred.attention, np.float64)}
    measurements.update({f"p_{c}": scores[:, k] for k, c in enumerate(pred.classes)})
    tile_class = [pred.classes[k] for k in np.argmax(scores, axis=1)] if len(scores) else []
    return feature_collection(polygon_features(boxes, measurements, tile_class))


def write_heatmap_geojson(path: str | Path, pred: SlidePrediction) -> None:
    """Write heatmap.geojson for QuPath (see :func:`heatmap_collection`).

    Example:
        >>> write_heatmap_geojson(out / "heatmap.geojson", pred)  # doctest: +SKIP
    """
    write_geojson(path, heatmap_collection(pred))


def render_top_tiles(pred: SlidePrediction, slide: Slide, k: int = 8) -> np.ndarray:
    """A grid of the ``k`` highest-attention tiles at the model's resolution, each captioned.

    Captions give the rank, attention weight, the tile's most probable class and its level-0 x, y.

    Raises:
        ValueError: ``k`` is not positive.

    Example:
        >>> write_png(out / "top_tiles.png", render_top_tiles(pred, slide))  # doctest: +SKIP
    """
    if k < 1:
        msg = f"k={k}: the gallery needs at least one tile"
        raise ValueError(msg)
    indices = pred.top_tiles(k)
    cell = int(np.clip(pred.tile_px, MIN_CELL, MAX_CELL))
    columns = max(1, min(COLUMNS, len(indices)))
    rows = max(1, -(-len(indices) // columns))
    pitch_x, pitch_y = cell + GAP_PX, cell + CAPTION_PX + GAP_PX
    canvas = np.full((rows * pitch_y + GAP_PX, columns * pitch_x + GAP_PX, 3), 255, np.uint8)
    for rank, index in enumerate(indices, start=1):
        x, y = (int(v) for v in pred.coords_level0[index])
        tile = slide.read_region_at_mpp((x, y), (pred.tile_px, pred.tile_px), pred.target_mpp)
        top, left = GAP_PX + (rank - 1) // columns * pitch_y, GAP_PX + (rank - 1) % columns * pitch_x
        canvas[top : top + cell, left : left + cell] = cv2.resize(tile, (cell, cell), interpolation=cv2.INTER_LINEAR)
        best = int(np.argmax(pred.tile_scores[index]))
        head = f"#{rank}  attn {pred.attention[index]:.4f}  {pred.classes[best]} {pred.tile_scores[index][best]:.2f}"
        draw_text(canvas, head, (left + 2, top + cell + 20), 0.48)
        draw_text(canvas, f"x {x}, y {y} (level-0 px)", (left + 2, top + cell + 42), 0.45, GREY)
    return canvas


def subtype_section(pred: SlidePrediction, heatmap_rgb: np.ndarray, gallery_rgb: np.ndarray) -> Section:
    """The H&E subtype section: call, probabilities, warnings, tiling facts, heatmap and top tiles.

    Example:
        >>> write_section(out / pred.slide_id, subtype_section(pred, render_heatmap(pred), gallery))  # doctest: +SKIP
    """
    order = np.argsort(-np.asarray(pred.probabilities), kind="stable")
    rows = "".join(
        f'<tr class="{"top" if k == order[0] and not pred.abstained else ""}"><td>{escape(pred.classes[k])}</td>'
        f'<td class="num">{pred.probabilities[k]:.3f}</td>'
        f'<td><span class="bar" style="width:{200 * float(pred.probabilities[k]):.0f}px"></span></td></tr>'
        for k in order
    )
    facts = {
        "Tiles analysed": f"{len(pred.attention)}",
        "Tissue area": f"{pred.tissue_area_mm2:.2f} mm²",
        "Slide resolution": f"{pred.slide_mpp:.4g} µm/px (from {pred.mpp_source})",
        "Model tiles": f"{pred.tile_px} px at {pred.target_mpp:g} µm/px",
        "Model": _model_name(pred.model),
        "liposcope version": str(pred.provenance.get("liposcope_version", "unknown")),
    }
    parts = [
        warnings_html(pred.warnings),
        _headline(pred),
        f"<table><tr><th>Class</th><th>Probability</th><th></th></tr>{rows}</table>",
        facts_table(facts),
        '<p class="note">The heatmap colours each tissue tile by its attention rank: where the model looked '
        "to reach its call, not a map of tumour. Check the highest-attention tiles below against the slide.</p>",
    ]
    images = {"Attention heatmap": heatmap_rgb, "Highest-attention tiles (model resolution)": gallery_rgb}
    prov = {"slide_path": pred.slide_path, "model": pred.model, **pred.provenance}
    title = "Liposarcoma subtype (H&E)"
    return Section("subtype", title, "\n".join(p for p in parts if p), images, pred.slide_id, prov)


def _headline(pred: SlidePrediction) -> str:
    """The call in bold, or "No call" with the reasons (then the probabilities follow, unbolded)."""
    if not pred.abstained:
        call = f"<b>{escape(pred.predicted_class)}</b> (probability {pred.confidence:.2f})"
        return f'<p class="call">Predicted subtype: {call}</p>'
    reasons = "; ".join(pred.abstain_reasons)
    return (
        f'<p class="call nocall">No call: the model abstains because {escape(reasons)}.</p>'
        '<p class="note">The probabilities below are shown for review only; they are not a call.</p>'
    )


def _model_name(model: dict[str, Any]) -> str:
    for key in ("name", "path", "folder", "dir"):
        if model.get(key):
            return str(model[key])
    return "unknown"
