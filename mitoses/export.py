"""Files a pathologist opens from a ``MitosisResult``: mitoses.json, mitoses.geojson, hotspot.png,
mitoses_gallery.png and the mitoses section of report.html.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from liposcope.mitoses.fnclcc import Grade
from liposcope.mitoses.result import MitosisResult
from liposcope.report import Section, facts_table
from liposcope.wsi.geojson import feature_collection, point_features, write_geojson
from liposcope.wsi.slide import Slide
from liposcope.wsi.stream import in_box

MITOSES_JSON, MITOSES_GEOJSON, HOTSPOT_PNG, GALLERY_PNG = (
    "mitoses.json",
    "mitoses.geojson",
    "hotspot.png",
    "mitoses_gallery.png",
)



def mitoses_json(
    result: MitosisResult, params: dict[str, object], subtype: str | None, grade: Grade | None
) -> dict[str, object]:
    """The ``mitoses.json`` document: contract keys first, then the hotspot, grade, parameters, provenance."""
    c = result.counts
    return {
        "count": c.count,
        "tissue_area_mm2": round(c.tissue_area_mm2, 4),
        "per_10hpf": round(c.per_10hpf, 2),
        "per_mm2": round(c.per_mm2, 3),
        "hotspot_per_10hpf": round(c.hotspot_per_10hpf, 2),
        "mitotic_score": c.reported_score,
        "hpf_area_mm2": round(c.hpf_area_mm2, 4),
        "warning": c.warning or None,
        "hotspot": {
            "box_level0": [round(v, 1) for v in c.hotspot_box] if c.hotspot_box else None,
            "count": c.hotspot_count,
            "area_mm2": round(c.hotspot_area_mm2, 4),
            "tissue_fraction": round(c.hotspot_tissue_fraction, 3),
            "note": c.hotspot_note,
        },
        "fnclcc": {"subtype": subtype, **grade.to_dict()} if grade else None,
        "candidates_scored": result.candidates,
        "region_level0": list(result.region),
        "slide_mpp": result.slide_mpp,
        "parameters": params,
        "provenance": result.provenance,
    }



def write_mitoses_geojson(path: Path, result: MitosisResult) -> None:
    """One Point per figure (level-0 px), class ``Mitosis``, measurement ``probability``."""
    names = ["Mitosis"] * len(result.xy)
    write_geojson(path, feature_collection(point_features(result.xy, {"probability": result.probability}, names)))



def render_hotspot(slide: Slide, result: MitosisResult, max_px: int = 1600) -> np.ndarray:
    """The hotspot window with each figure ringed (red) and numbered by score rank."""
    x, y, w, h = result.counts.hotspot_box or result.region
    mpp = max(slide.mpp, max(w, h) * slide.mpp / max_px)
    scale = mpp / slide.mpp
    canvas = np.ascontiguousarray(
        slide.read_region_at_mpp((round(x), round(y)), (max(1, round(w / scale)), max(1, round(h / scale))), mpp)
    )
    inside = in_box(result.xy, (x, y, w, h))
    radius = max(6, round(8.0 / mpp))
    thickness = max(2, round(1.0 / mpp))
    for px, py in (result.xy[inside] - [x, y]) / scale:
        cv2.circle(canvas, (round(px), round(py)), radius, (220, 20, 20), thickness, cv2.LINE_AA)
    return canvas



def render_gallery(result: MitosisResult, n: int, columns: int = 8, zoom: int = 2) -> np.ndarray:
    """Patches of the ``n`` highest-scoring figures, best first, with the probability under each."""
    order = np.argsort(-result.probability)[:n]
    if len(order) == 0:
        canvas = np.full((80, 480, 3), 255, np.uint8)
        cv2.putText(canvas, "no mitotic figures detected", (10, 45), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (60, 60, 60), 1)
        return canvas
    side = result.patches.shape[-1] * zoom
    label_px = 18
    rows = math.ceil(len(order) / columns)
    canvas = np.full((rows * (side + label_px), min(columns, len(order)) * side, 3), 255, np.uint8)
    for k, i in enumerate(order):
        r, c = divmod(k, columns)
        patch = cv2.resize(result.patches[i].transpose(1, 2, 0), (side, side), interpolation=cv2.INTER_NEAREST)
        top = r * (side + label_px)
        canvas[top : top + side, c * side : (c + 1) * side] = patch
        text = f"{result.probability[i]:.2f}"
        cv2.putText(canvas, text, (c * side + 4, top + side + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    return canvas



def mitoses_section(
    result: MitosisResult, hotspot: np.ndarray, gallery: np.ndarray, subtype: str | None, grade: Grade | None
) -> Section:
    """The report section: counts per area, the hotspot, the FNCLCC mitotic score and the suggested grade."""
    c = result.counts
    facts = {
        "Mitoses per 10 HPF (hotspot)": f"{c.hotspot_per_10hpf:.1f} "
        f"({c.hotspot_count} in {c.hotspot_area_mm2:.3f} mm²)",
        "FNCLCC mitotic score": f"{c.mitotic_score} (0–9 → 1, 10–19 → 2, ≥ 20 → 3 per 10 HPF)",
        "Mitoses per 10 HPF (all tissue)": f"{c.per_10hpf:.1f}",
        "Mitoses per mm²": f"{c.per_mm2:.2f}",
        "Figures detected": f"{c.count} in {c.tissue_area_mm2:.2f} mm² of tissue",
        "HPF area": f"{c.hpf_area_mm2:.4f} mm² (10 HPF = {10 * c.hpf_area_mm2:.3f} mm²)",
        "Slide resolution": f"{result.slide_mpp:.4g} µm/px",
        "Detector": f"{result.detector['source']} ({result.detector['backbone']}, threshold "
        f"{result.detector['threshold']:.2f})",
    }
    if c.hotspot_note:
        facts["Hotspot note"] = c.hotspot_note
    if c.warning:
        facts["FNCLCC mitotic score"] = "not given (see the warning)"
    html = (
        (f'<div class="warn">{c.warning}</div>' if c.warning else "") + facts_table(facts) + _grade_html(subtype, grade)
    )
    if result.detector["source"].startswith("packaged"):
        html = (
            '<div class="warn">The packaged detector was trained on synthetic figures only: check every figure, '
            "or train one on annotated slides (<code>liposcope train-mitosis</code>).</div>" + html
        )
    images = {"Hotspot with detected figures ringed": hotspot, "Highest-scoring detections": gallery}
    prov = {"slide_path": result.slide_path, **result.provenance}
    return Section("mitoses", "Mitoses per 10 HPF", html, images, result.slide_id, prov)



def _grade_html(subtype: str | None, grade: Grade | None) -> str:
    if grade is None:
        necrosis = "the necrotic percentage (--necrosis-pct)"
        missing = necrosis if subtype else f"the subtype (run `liposcope predict` first, or --subtype) and {necrosis}"
        return f'<p class="note">FNCLCC grade: not suggested; it needs {missing}.</p>'
    facts = {
        "Differentiation score": f"{grade.differentiation} ({subtype})",
        "Mitotic score": grade.mitotic,
        "Necrosis score": grade.necrosis,
        "Suggested FNCLCC grade": f"{grade.grade} (total {grade.total})",
    }
    return "<h3>FNCLCC grade — suggested, to be confirmed by the pathologist</h3>" + facts_table(facts)
