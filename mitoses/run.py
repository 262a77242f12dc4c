"""``detect_mitoses``: an H&E slide in, mitotic figures and counts per area out, streamed tile by tile.

``mitoses_to_folder`` writes ``OUT/<slide_id>/{mitoses.json, mitoses.geojson, hotspot.png,
mitoses_gallery.png}`` and the mitoses section of ``report.html``; ``mitoses.json`` is written last
and makes a rerun skip the slide.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from liposcope.config import to_dict
from liposcope.errors import SlideError, where
from liposcope.io import finished_with, output_dir, provenance, write_json, write_png
from liposcope.mitoses.count import MitosisCount, count_mitoses, plausibility_warning
from liposcope.mitoses.detect import Candidates, Detector, stream_candidates, suppress
from liposcope.mitoses.fnclcc import Grade, fnclcc_grade
from liposcope.mitoses.settings import MitosisSettings, load_settings
from liposcope.report import Section, facts_table, write_section
from liposcope.wsi.geojson import feature_collection, point_features, write_geojson
from liposcope.wsi.slide import Slide, slide_id_from_path
from liposcope.wsi.stain import estimate_background
from liposcope.wsi.stream import Box, check_region, in_box, tissue_mm2
from liposcope.wsi.tissue import detect_tissue

MITOSES_JSON, MITOSES_GEOJSON, HOTSPOT_PNG, GALLERY_PNG = (
    "mitoses.json",
    "mitoses.geojson",
    "hotspot.png",
    "mitoses_gallery.png",
)
_MPP_TOLERANCE = 1.3  # a slide may be this much coarser than the model's patches (e.g. 0.32 for 0.25)


@dataclass(frozen=True)
class MitosisResult:
    """Figures (level-0 px, probability, patch) and counts of one slide."""

    slide_id: str
    slide_path: str
    slide_mpp: float
    region: Box
    xy: np.ndarray
    probability: np.ndarray
    patches: np.ndarray
    candidates: int
    counts: MitosisCount
    detector: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)


def detect_mitoses(
    path: str | Path,
    *,
    detector: Detector | None = None,
    settings: MitosisSettings | None = None,
    slide_mpp: float | None = None,
    region: Box | None = None,
) -> MitosisResult:
    """Find and count the mitotic figures in the tissue of ``path`` (or of ``region``, level-0 x, y, w, h).

    Raises:
        LiposcopeError: unreadable slide, unknown or too coarse mpp, region outside the slide, no tissue.

    Example:
        >>> result = detect_mitoses("case.svs")  # doctest: +SKIP
        >>> result.counts.per_10hpf, result.counts.mitotic_score  # doctest: +SKIP
    """
    with Slide(path, mpp=slide_mpp) as slide:
        return _detect(slide, detector, settings or load_settings(), region)


def _detect(slide: Slide, detector: Detector | None, settings: MitosisSettings, region: Box | None) -> MitosisResult:
    slide_mpp = slide.mpp  # refuses a slide without mpp before anything else
    detector = detector or Detector.load()
    needed = detector.card.tiling.target_mpp
    if slide_mpp > needed * _MPP_TOLERANCE:
        msg = where(
            slide.path,
            f"{slide.mpp:g} µm/px is too coarse for mitoses (the detector reads {needed:g} µm/px, about 40x; "
            "a 0.5 µm/px variant trained the same way found too few figures: mitoses/model/README.md)",
            "use a 40x scan, or pass the true --slide-mpp if the file's is wrong",
        )
        raise SlideError(msg)
    # patches are cut the way the model was trained: its patch size and mpp win over the config
    settings = replace(settings, analysis_mpp=needed, patch_px=detector.card.tiling.tile_px)
    box = check_region(slide, region)
    mask, thumbnail = detect_tissue(slide)
    background = estimate_background(thumbnail)
    hits, probabilities, total = [], [], 0
    for found in stream_candidates(slide, mask, box, settings, background, desc=f"{slide.slide_id} mitoses"):
        p = detector.score(found.patches, settings.batch_size)
        hit = p >= detector.threshold
        hits.append(found.select(hit))
        probabilities.append(p[hit])
        total += len(p)
    figures = Candidates.concat(hits, settings.patch_px)
    probability = np.concatenate(probabilities) if probabilities else np.zeros(0)
    keep = suppress(figures.xy * slide.mpp, probability, settings.nms_um)
    figures, probability = figures.select(keep), probability[keep]
    counts = count_mitoses(figures.xy, mask, box, slide.mpp, settings.counting, tissue_mm2(mask, box))
    limit = settings.counting.plausible_max_per_10hpf
    counts = replace(counts, warning=plausibility_warning(counts.hotspot_per_10hpf, probability, limit))
    info = {
        "source": detector.source,
        "backbone": detector.card.backbone.name,
        "threshold": detector.threshold,
        "weights_sha256": detector.card.backbone.weights_sha256,
    }
    return MitosisResult(
        slide.slide_id,
        str(slide.path.resolve()),
        slide.mpp,
        box,
        figures.xy,
        probability,
        figures.patches,
        total,
        counts,
        info,
        provenance(slide=slide.describe(), model=info, config=to_dict(settings)),
    )


# -- outputs -----------------------------------------------------------------------------------


def mitoses_to_folder(
    path: str | Path,
    out: str | Path,
    *,
    model: str | Path | None = None,
    settings: MitosisSettings | None = None,
    slide_mpp: float | None = None,
    region: Box | None = None,
    subtype: str | None = None,
    necrosis_pct: float | None = None,
) -> tuple[MitosisResult | None, Path]:
    """Detect and count mitoses in ``path`` and write the outputs under ``out/<slide_id>/``; skip a slide
    already done with the same settings (returns ``None`` then).

    ``subtype`` (else the ``predicted_class`` of a ``prediction.json`` in the folder) and
    ``necrosis_pct`` give the suggested FNCLCC grade.

    Example:
        >>> result, folder = mitoses_to_folder("case.svs", "out")  # doctest: +SKIP
    """
    settings = settings or load_settings()
    folder = Path(out) / slide_id_from_path(path)
    params: dict[str, object] = {
        "settings": to_dict(settings),
        "model": str(model) if model else "packaged",
        "region": list(region) if region else None,
        "slide_mpp": slide_mpp,
        "subtype": subtype,
        "necrosis_pct": necrosis_pct,
    }
    if finished_with(folder / MITOSES_JSON, path, params):
        return None, folder
    with Slide(path, mpp=slide_mpp) as slide:
        result = _detect(slide, Detector.load(model) if model else None, settings, region)
        hotspot = render_hotspot(slide, result)
    gallery = render_gallery(result, settings.gallery)
    subtype = subtype or _predicted_subtype(folder)
    grade = (
        fnclcc_grade(subtype, result.counts.hotspot_per_10hpf, necrosis_pct)
        if subtype and necrosis_pct is not None and not result.counts.warning
        else None
    )
    with output_dir(folder):
        write_png(folder / HOTSPOT_PNG, hotspot)
        write_png(folder / GALLERY_PNG, gallery)
        write_mitoses_geojson(folder / MITOSES_GEOJSON, result)
        write_section(folder, mitoses_section(result, hotspot, gallery, subtype, grade))
        write_json(folder / MITOSES_JSON, mitoses_json(result, params, subtype, grade))
    return result, folder


def _predicted_subtype(folder: Path) -> str | None:
    try:
        value = json.loads((folder / "prediction.json").read_text(encoding="utf-8")).get("predicted_class")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


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
