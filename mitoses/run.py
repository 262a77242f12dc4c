"""``mitoses_to_folder``: one slide in, ``OUT/<slide_id>/`` with every reviewable file out; resumable.

``mitoses.json`` is written last, with the manifest of :mod:`liposcope.resume`.
"""

from __future__ import annotations

import json
from pathlib import Path

from liposcope.config import to_dict
from liposcope.io import output_dir, write_json, write_png
from liposcope.mitoses.compute import detect_open_slide
from liposcope.mitoses.detect import Detector, packaged_model_dir
from liposcope.mitoses.export import (
    GALLERY_PNG,
    HOTSPOT_PNG,
    MITOSES_GEOJSON,
    MITOSES_JSON,
    mitoses_json,
    mitoses_section,
    render_gallery,
    render_hotspot,
    write_mitoses_geojson,
)
from liposcope.mitoses.fnclcc import fnclcc_grade
from liposcope.mitoses.result import MitosisResult
from liposcope.mitoses.settings import MitosisSettings, load_settings
from liposcope.models.card import model_hash
from liposcope.report import write_section
from liposcope.resume import RESUME_KEY, is_done, output_lock, resume_key
from liposcope.wsi.slide import Slide, slide_id_from_path
from liposcope.wsi.stream import Box


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
    already done with the same settings and model (returns ``None`` then; see :mod:`liposcope.resume`).

    ``subtype`` (else the ``call`` of a ``prediction.json`` in the folder) and
    ``necrosis_pct`` give the suggested FNCLCC grade.

    Example:
        >>> result, folder = mitoses_to_folder("case.svs", "out")  # doctest: +SKIP
    """
    settings = settings or load_settings()
    folder = Path(out) / slide_id_from_path(path)
    model_dir = Path(model) if model else packaged_model_dir()
    with output_lock(folder):
        subtype = subtype or _predicted_subtype(folder)
        params: dict[str, object] = {
            "settings": to_dict(settings),
            "model": str(model) if model else "packaged",
            "region": list(region) if region else None,
            "slide_mpp": slide_mpp,
            "subtype": subtype,
            "necrosis_pct": necrosis_pct,
        }
        key = resume_key(path, params, model_hash(model_dir))
        if is_done(folder / MITOSES_JSON, key):
            return None, folder
        with Slide(path, mpp=slide_mpp) as slide:
            result = detect_open_slide(slide, Detector.load(model_dir), settings, region)
            hotspot = render_hotspot(slide, result)
        gallery = render_gallery(result, settings.gallery)
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
            write_json(folder / MITOSES_JSON, {**mitoses_json(result, params, subtype, grade), RESUME_KEY: key})
    return result, folder


def _predicted_subtype(folder: Path) -> str | None:
    """The subtype call of a ``prediction.json`` in the folder (none when the model abstained)."""
    try:
        value = json.loads((folder / "prediction.json").read_text(encoding="utf-8")).get("call")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None
