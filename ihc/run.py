"""``ihc_to_folder``: one slide in, ``OUT/<slide_id>/`` with every reviewable file out; resumable.

``ihc.json`` is written last, with the manifest of :mod:`liposcope.resume`.
"""

from __future__ import annotations

from pathlib import Path

from liposcope.config import to_dict
from liposcope.ihc.compute import score_open_slide
from liposcope.ihc.export import (
    IHC_JSON,
    NUCLEI_GEOJSON,
    OVERLAY_PNG,
    OVERVIEW_PNG,
    ihc_json,
    ihc_section,
    overlay_window,
    render_overlay,
    render_overview,
    write_nuclei_geojson,
)
from liposcope.ihc.marker import Marker
from liposcope.ihc.result import Box, IHCResult
from liposcope.io import output_dir, write_json, write_png
from liposcope.report import write_section
from liposcope.resume import RESUME_KEY, is_done, output_lock, resume_key
from liposcope.wsi.slide import Slide, slide_id_from_path
from liposcope.wsi.tissue import TissueParams


def ihc_to_folder(
    path: str | Path, marker: Marker, out: str | Path, *, slide_mpp: float | None = None, region: Box | None = None
) -> tuple[IHCResult | None, Path]:
    """Score ``path`` and write its outputs under ``out/<slide_id>/``; skip a slide already done with the same
    marker settings, region and tissue detection (returns ``None`` then; see :mod:`liposcope.resume`).

    Example:
        >>> result, folder = ihc_to_folder("ki67.svs", load_marker("ki67"), "out")  # doctest: +SKIP
    """
    folder = Path(out) / slide_id_from_path(path)
    tissue = TissueParams.default()
    settings: dict[str, object] = {
        "marker": to_dict(marker),
        "region": list(region) if region else None,
        "slide_mpp": slide_mpp,
        "tissue": to_dict(tissue),
    }
    key = resume_key(path, settings)
    with output_lock(folder):
        if is_done(folder / IHC_JSON, key):
            return None, folder
        with Slide(path, mpp=slide_mpp) as slide:
            result = score_open_slide(slide, marker, region, tissue)
            window = overlay_window(result)
            overlay = render_overlay(slide, result, window)
            overview = render_overview(slide, result, window)
        with output_dir(folder):
            write_png(folder / OVERLAY_PNG, overlay)
            write_png(folder / OVERVIEW_PNG, overview)
            write_nuclei_geojson(folder / NUCLEI_GEOJSON, result)
            write_section(folder, ihc_section(result, overlay, overview))
            write_json(folder / IHC_JSON, {**ihc_json(result, settings), RESUME_KEY: key})
    return result, folder
