"""From nuclei to the numbers a report states: intensity classes, labelling index, H-score, hotspot, status."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liposcope.ihc.marker import Hotspot, Intensity, Marker
from liposcope.wsi.hotspot import square_windows

CLASSES = ("Negative", "Weak", "Moderate", "Strong")


def grade(dab_od: np.ndarray, intensity: Intensity) -> np.ndarray:
    """Intensity class per nucleus: 0 negative, 1 weak, 2 moderate, 3 strong (int8).

    Example:
        >>> grade(np.array([0.1, 0.2, 0.5, 0.9]), Intensity(0.2, 0.4, 0.6)).tolist()
        [0, 1, 2, 3]
    """
    bounds = [intensity.weak, intensity.moderate, intensity.strong]
    out: np.ndarray = np.searchsorted(bounds, dab_od, side="right").astype(np.int8)
    return out


@dataclass(frozen=True)
class HotspotResult:
    """The hotspot window (level-0 px box) and what it holds."""

    box: tuple[float, float, float, float]
    area_mm2: float
    nuclei: int
    positive: int

    @property
    def labelling_index_pct(self) -> float:
        return 100.0 * self.positive / self.nuclei


def find_hotspot(
    xy: np.ndarray, positive: np.ndarray, bounds: tuple[float, float, float, float], mpp: float, hotspot: Hotspot
) -> HotspotResult | None:
    """The window of ``hotspot.area_mm2`` with the highest labelling index among windows holding at
    least ``hotspot.min_nuclei`` nuclei (ties: more nuclei); ``None`` if no window holds that many."""
    side = 1000.0 * np.sqrt(hotspot.area_mm2) / mpp
    windows = square_windows(xy, np.stack([np.ones(len(xy)), positive], axis=1), bounds, side)
    total, pos = windows.sums[..., 0], windows.sums[..., 1]
    eligible = total >= hotspot.min_nuclei
    if not eligible.any():
        return None
    index = np.where(eligible, pos / np.maximum(total, 1), -1.0)
    best = np.lexsort((total.ravel(), index.ravel()))[-1]
    i, j = np.unravel_index(best, index.shape)
    area = windows.width * windows.height * (mpp / 1000.0) ** 2
    return HotspotResult(windows.box(int(i), int(j)), float(area), int(total[i, j]), int(pos[i, j]))


def summarise(grades: np.ndarray, hotspot: HotspotResult | None, marker: Marker) -> dict[str, object]:
    """The ``ihc.json`` numbers: counts, labelling index, intensity split, H-score, hotspot and status."""
    n = len(grades)
    share = [100.0 * float(np.mean(grades == g)) if n else 0.0 for g in range(4)]
    positive = int((grades > 0).sum())
    scores: dict[str, object] = {
        "nuclei_total": n,
        "nuclei_positive": positive,
        "labelling_index_pct": round(100.0 * positive / n, 2) if n else None,
        "hotspot_labelling_index_pct": round(hotspot.labelling_index_pct, 2) if hotspot else None,
        "percent_negative": round(share[0], 2),
        "percent_weak": round(share[1], 2),
        "percent_moderate": round(share[2], 2),
        "percent_strong": round(share[3], 2),
        "h_score": round(share[1] + 2 * share[2] + 3 * share[3], 1),
    }
    value = scores[marker.status.metric]
    rule = marker.status
    scores["status"] = None if value is None else (rule.at_or_above if float(value) >= rule.cutoff else rule.below)  # type: ignore[arg-type]
    return scores
