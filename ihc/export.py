"""Files a pathologist opens from an ``IHCResult``: ihc.json, nuclei.geojson, overlay.png, overview.png and the
IHC section of report.html.
"""

from __future__ import annotations

from html import escape as html_escape
from pathlib import Path

import cv2
import numpy as np

from liposcope.ihc.result import Box, IHCResult
from liposcope.ihc.score import CLASSES
from liposcope.report import Section, facts_table
from liposcope.wsi.geojson import class_color, feature_collection, point_features, write_geojson
from liposcope.wsi.slide import Slide
from liposcope.wsi.stream import in_box

IHC_JSON, NUCLEI_GEOJSON, OVERLAY_PNG, OVERVIEW_PNG = "ihc.json", "nuclei.geojson", "overlay.png", "overview.png"



METRIC_WORDS = {"labelling_index_pct": ("labelling index", " %"), "h_score": ("H-score", "")}



def ihc_json(result: IHCResult, settings: dict[str, object]) -> dict[str, object]:
    """The ``ihc.json`` document: contract keys first, then context, parameters and provenance."""
    hotspot = result.hotspot
    return {
        **result.scores,
        "marker": result.marker.name,
        "area_mm2": round(result.area_mm2, 4),
        "region_level0": list(result.region),
        "hotspot": None
        if hotspot is None
        else {
            "box_level0": [round(v, 1) for v in hotspot.box],
            "area_mm2": round(hotspot.area_mm2, 4),
            "nuclei": hotspot.nuclei,
            "positive": hotspot.positive,
        },
        "nuclei_per_mm2": round(len(result.grades) / result.area_mm2, 1) if result.area_mm2 > 0 else None,
        "status_text": status_text(result),
        "cutoff_source": result.marker.status.source,
        "notes": notes(result),
        "slide_mpp": result.slide_mpp,
        "deconvolution": result.deconvolution,
        "parameters": settings,
        "provenance": result.provenance,
    }



def write_nuclei_geojson(path: Path, result: IHCResult) -> None:
    """One Point per nucleus (level-0 px), classified Negative / Weak / Moderate / Strong."""
    n = result.nuclei
    measurements = {"DAB OD mean": n.dab_od, "Hematoxylin OD mean": n.h_od, "Area um^2": n.area_um2}
    names = [CLASSES[g] for g in result.grades]
    write_geojson(path, feature_collection(point_features(n.xy, measurements, names)))



def status_text(result: IHCResult) -> str | None:
    """The status in words, with the value, the cut-off and where the cut-off comes from."""
    s, rule, name = result.scores, result.marker.status, result.marker.name
    value = s[rule.metric]
    if value is None:
        return None
    words, unit = METRIC_WORDS[rule.metric]
    relation = "at or above" if s["status"] == rule.at_or_above else "below"
    return (
        f"{name} {words} {float(value):.1f}{unit} is {relation} the cut-off of {rule.cutoff:g}{unit}, so the status "  # type: ignore[arg-type]
        f"reads '{s['status']}'. The cut-off is {rule.source}."
    )



def notes(result: IHCResult) -> list[str]:
    """What a reader must know beside the numbers: the marker's own notes and a too-small analysed area."""
    out = list(result.marker.notes)
    window = result.marker.hotspot.area_mm2
    if result.area_mm2 < window:
        out.append(
            f"The analysed tissue ({result.area_mm2:.3f} mm²) is smaller than one hotspot window ({window:g} mm²): "
            "there is no hotspot index, and the global index rests on fewer nuclei than a hotspot count."
        )
    return out



def overlay_window(result: IHCResult, max_px: int = 1600) -> Box:
    """The level-0 box the overlay shows: the hotspot, else the nuclei's extent, at most ``max_px`` analysis
    pixels a side (centred on the extent)."""
    x, y, w, h = result.hotspot.box if result.hotspot else _extent(result.nuclei.xy, result.region)
    side = max_px * max(result.marker.analysis_mpp, result.slide_mpp) / result.slide_mpp
    cx, cy = x + w / 2, y + h / 2
    w, h = min(w, side), min(h, side)
    return (cx - w / 2, cy - h / 2, w, h)



def render_overlay(slide: Slide, result: IHCResult, window: Box) -> np.ndarray:
    """``window`` at the analysis resolution with each nucleus ringed in its class colour, sized to the nucleus."""
    x, y, w, h = window
    mpp = max(result.marker.analysis_mpp, slide.mpp)
    scale = mpp / slide.mpp
    size = (max(1, round(w / scale)), max(1, round(h / scale)))
    canvas = np.ascontiguousarray(slide.read_region_at_mpp((round(x), round(y)), size, mpp))
    inside = in_box(result.nuclei.xy, (x, y, w, h))
    xy = (result.nuclei.xy[inside] - [x, y]) / scale
    radius = np.sqrt(result.nuclei.area_um2[inside] / np.pi) / mpp
    thickness = max(1, round(0.6 / mpp))
    for (px, py), r, g in zip(xy, radius, result.grades[inside], strict=True):
        colour = class_color(CLASSES[g])
        cv2.circle(canvas, (round(px), round(py)), max(2, round(r + thickness)), colour, thickness, cv2.LINE_AA)
    return canvas



def render_overview(slide: Slide, result: IHCResult, window: Box, max_px: int = 1024) -> np.ndarray:
    """The whole slide, small: the analysed region (grey), the hotspot window (red) and the overlay's window
    (blue, when it is not the hotspot), so a reader sees where the counted field lies."""
    canvas = np.ascontiguousarray(slide.thumbnail(max_px))
    scale = canvas.shape[1] / slide.dimensions[0]
    thick = max(2, round(canvas.shape[1] / 300))
    boxes = [(result.region, (128, 128, 128))]
    if result.hotspot:
        boxes.append((result.hotspot.box, (220, 0, 0)))
    if not result.hotspot or tuple(window) != tuple(result.hotspot.box):
        boxes.append((window, (0, 90, 220)))
    for (x, y, w, h), colour in boxes:
        p1 = (round(x * scale), round(y * scale))
        p2 = (max(p1[0] + 1, round((x + w) * scale)), max(p1[1] + 1, round((y + h) * scale)))
        cv2.rectangle(canvas, p1, p2, colour, thick)
    return canvas



def _extent(xy: np.ndarray, region: Box, pad: float = 64.0) -> Box:
    """Bounding box of the points, padded and clipped to ``region`` (the region if there are none)."""
    if len(xy) == 0:
        return region
    x, y, w, h = region
    lo = np.maximum(xy.min(axis=0) - pad, [x, y])
    hi = np.minimum(xy.max(axis=0) + pad, [x + w, y + h])
    return (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))



def ihc_section(result: IHCResult, overlay: np.ndarray, overview: np.ndarray) -> Section:
    """The report section: the status in words, the numbers, notes, the overlay and the slide overview."""
    s = result.scores
    m = result.marker
    hot = result.hotspot
    pct = "{:.1f} %".format
    facts = {
        "Status": status_text(result) or "— (no nuclei)",
        "Nuclei counted": f"{s['nuclei_total']} ({s['nuclei_positive']} positive)",
        "Labelling index (all tissue)": pct(s["labelling_index_pct"]) if s["labelling_index_pct"] is not None else "—",
        "Hotspot labelling index": f"{pct(hot.labelling_index_pct)} in {hot.area_mm2:.3f} mm², {hot.nuclei} nuclei"
        if hot
        else f"— (no {m.hotspot.area_mm2:g} mm² window with ≥ {m.hotspot.min_nuclei} nuclei)",
        "Weak / moderate / strong": f"{s['percent_weak']} / {s['percent_moderate']} / {s['percent_strong']} %",
        "H-score (0–300)": f"{s['h_score']}",
        "Tissue analysed": f"{result.area_mm2:.3f} mm²",
        "Intensity thresholds (DAB OD)": f"{m.intensity.weak:g} / {m.intensity.moderate:g} / {m.intensity.strong:g}",
        "Slide resolution": f"{result.slide_mpp:.4g} µm/px; nuclei found at "
        f"{max(m.analysis_mpp, result.slide_mpp):.3g} µm/px",
    }
    legend = " ".join(f'<span style="color:rgb{class_color(name)}">&#9679;</span> {name}' for name in CLASSES)
    lines = "".join(f'<p class="note"><b>Note:</b> {html_escape(n)}</p>' for n in notes(result))
    ring = (
        f'<p class="note">Overlay at the analysis resolution ({max(m.analysis_mpp, result.slide_mpp):.3g} µm/px), '
        f"each ring drawn around one counted nucleus at its size: {legend}. Check the rings against the slide; the "
        "overview marks the hotspot window in red (and the overlay's window in blue when it is not the hotspot).</p>"
    )
    html = facts_table(facts) + lines + ring
    title = f"{m.name} immunohistochemistry"
    caption = f"{m.name} {'hotspot' if hot else 'region'} with nuclei by class"
    images = {caption: overlay, "Slide overview: analysed region (grey), hotspot (red)": overview}
    prov = {"slide_path": result.slide_path, "marker": m.name, **result.provenance}
    return Section(f"ihc-{_key(m.name)}", title, html, images, result.slide_id, prov)



def _key(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "marker"
