"""Accuracy of a detector on a slide with known figures: MIDOG matching (7.5 µm), counts per 10 HPF and the
FNCLCC mitotic score against the same count of the true figures (same tissue mask, same hotspot search)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liposcope.mitoses.compute import detect_mitoses
from liposcope.mitoses.count import count_mitoses
from liposcope.mitoses.detect import Detector
from liposcope.mitoses.settings import MitosisSettings, load_settings
from liposcope.wsi.points import f1_score, match_points
from liposcope.wsi.slide import Slide
from liposcope.wsi.tissue import detect_tissue

MATCH_UM = 7.5


@dataclass(frozen=True)
class Outcome:
    """One slide: matched, false and missed figures, counts and scores (detected and true)."""

    tp: int
    fp: int
    fn: int
    per_10hpf: float
    true_per_10hpf: float
    score: int | None
    true_score: int

    @property
    def count_ok(self) -> bool:
        """Within ±30 %, or ±3 below 10 per 10 HPF (the acceptance tolerance)."""
        tolerance = 3.0 if self.true_per_10hpf < 10 else 0.3 * self.true_per_10hpf
        return abs(self.per_10hpf - self.true_per_10hpf) <= tolerance


def evaluate_slide(
    path: Path,
    true_xy: np.ndarray,
    detector: Detector | None = None,
    settings: MitosisSettings | None = None,
) -> Outcome:
    """Detect on ``path`` and compare with the true figures ``true_xy`` (level-0 px); figures off the tissue
    mask are left out of the truth, as a pathologist would not count them."""
    settings = settings or load_settings()
    result = detect_mitoses(path, detector=detector, settings=settings)
    with Slide(path) as slide:
        mask, _ = detect_tissue(slide)
        mpp = slide.mpp
    true_xy = true_xy[mask.at(true_xy)] if len(true_xy) else true_xy.reshape(0, 2)
    true = count_mitoses(true_xy, mask, result.region, mpp, settings.counting, result.counts.tissue_area_mm2)
    tp, fp, fn = match_points(result.xy * mpp, true_xy * mpp, MATCH_UM)
    c = result.counts
    return Outcome(tp, fp, fn, c.per_10hpf, true.per_10hpf, c.reported_score, true.mitotic_score)


def summarise(outcomes: list[Outcome]) -> dict[str, float | int]:
    """Pooled F1, slides with the count within tolerance and with the right mitotic score."""
    tp, fp, fn = (sum(getattr(o, f) for o in outcomes) for f in ("tp", "fp", "fn"))
    return {
        "slides": len(outcomes),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "f1": round(f1_score(tp, fp, fn), 3),
        "counts_ok": sum(o.count_ok for o in outcomes),
        "score_ok": sum(o.score == o.true_score for o in outcomes),
    }
