"""``score_slide``: an H-DAB slide in, nuclei and marker scores out, streamed tile by tile."""

from __future__ import annotations

import math
from pathlib import Path

from liposcope.errors import SlideError, where
from liposcope.ihc.marker import Marker
from liposcope.ihc.nuclei import Deconvolver, Nuclei, context_um, detect_nuclei, make_deconvolver
from liposcope.ihc.result import Box, IHCResult
from liposcope.ihc.score import find_hotspot, grade, summarise
from liposcope.io import provenance
from liposcope.wsi.slide import Slide
from liposcope.wsi.stream import check_region, core_tiles, in_box, tissue_mm2
from liposcope.wsi.tissue import TissueMask, TissueParams, detect_tissue

MAX_MPP = 1.0  # µm/px; coarser images cannot show single nuclei



def score_slide(
    path: str | Path,
    marker: Marker,
    *,
    slide_mpp: float | None = None,
    region: Box | None = None,
    tissue: TissueParams | None = None,
) -> IHCResult:
    """Detect and grade every nucleus in the tissue of ``path`` (or of ``region``, level-0 x, y, w, h).

    Raises:
        LiposcopeError: unreadable slide, unknown mpp, region outside the slide, or no tissue.

    Example:
        >>> result = score_slide("ki67.svs", load_marker("ki67"))  # doctest: +SKIP
        >>> result.scores["labelling_index_pct"]  # doctest: +SKIP
        12.4
    """
    with Slide(path, mpp=slide_mpp) as slide:
        return score_open_slide(slide, marker, region, tissue)



def score_open_slide(slide: Slide, marker: Marker, region: Box | None, tissue: TissueParams | None) -> IHCResult:
    """:func:`score_slide` on a slide already open (the caller goes on to draw from it)."""
    if slide.mpp > MAX_MPP:
        msg = where(
            slide.path,
            f"{slide.mpp:g} µm/px is too coarse to resolve nuclei (need ≤ {MAX_MPP:g})",
            "scan at 20x or 40x, or pass the true --slide-mpp",
        )
        raise SlideError(msg)
    box = check_region(slide, region)
    mask, thumbnail = detect_tissue(slide, tissue, he=False)
    deconvolver = make_deconvolver(thumbnail, mask.resized(thumbnail.shape[:2]), marker.stains)
    nuclei = _stream_nuclei(slide, mask, box, marker, deconvolver)
    grades = grade(nuclei.dab_od, marker.intensity)
    hotspot = find_hotspot(nuclei.xy, grades > 0, box, slide.mpp, marker.hotspot)
    area = tissue_mm2(mask, box)
    return IHCResult(
        slide.slide_id,
        str(slide.path.resolve()),
        slide.mpp,
        marker,
        box,
        area,
        nuclei,
        grades,
        hotspot,
        summarise(grades, hotspot, marker),
        deconvolver.to_dict(),
        provenance(slide=slide.describe()),
    )



def _stream_nuclei(slide: Slide, mask: TissueMask, box: Box, marker: Marker, deconvolver: Deconvolver) -> Nuclei:
    """Nuclei of every tissue tile in ``box``, each counted once (by the tile whose core holds it)."""
    mpp = max(marker.analysis_mpp, slide.mpp)
    margin = math.ceil(context_um(marker.nuclei) / mpp)
    parts = []
    for tile in core_tiles(slide, mask, box, mpp, marker.tile_px, margin, desc=f"{slide.slide_id} nuclei"):
        found = detect_nuclei(tile.rgb, mpp, deconvolver, marker.nuclei, tile.beyond(*slide.dimensions))
        found = found.select(tile.in_core(found.xy))
        parts.append(Nuclei(tile.to_level0(found.xy), found.area_um2, found.dab_od, found.h_od))
    nuclei = Nuclei.concat(parts)
    keep = in_box(nuclei.xy, box) & mask.at(nuclei.xy)
    return nuclei.select(keep)
