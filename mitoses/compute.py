"""``detect_mitoses``: an H&E slide in, mitotic figures and counts per area out, streamed tile by tile."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from liposcope.config import to_dict
from liposcope.errors import SlideError, where
from liposcope.io import provenance
from liposcope.mitoses.count import count_mitoses, plausibility_warning
from liposcope.mitoses.detect import Candidates, Detector, stream_candidates, suppress
from liposcope.mitoses.result import MitosisResult
from liposcope.mitoses.settings import MitosisSettings, load_settings
from liposcope.wsi.slide import Slide
from liposcope.wsi.stain import estimate_background
from liposcope.wsi.stream import Box, check_region, tissue_mm2
from liposcope.wsi.tissue import detect_tissue

_MPP_TOLERANCE = 1.3  # a slide may be this much coarser than the model's patches (e.g. 0.32 for 0.25)



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
        return detect_open_slide(slide, detector, settings or load_settings(), region)



def detect_open_slide(
    slide: Slide, detector: Detector | None, settings: MitosisSettings, region: Box | None
) -> MitosisResult:
    """:func:`detect_mitoses` on a slide already open (the caller goes on to draw from it)."""
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
    # patches are cut and tissue found the way the model was trained: its card wins over the config
    settings = replace(settings, analysis_mpp=needed, patch_px=detector.card.tiling.tile_px)
    box = check_region(slide, region)
    mask, thumbnail = detect_tissue(slide, detector.card.tissue_settings)
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
