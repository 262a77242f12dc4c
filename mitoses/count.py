"""Mitoses per area: global count per 10 HPF and per mm², and the hotspot (the square of 10 HPFs' area
over tissue with the most figures), whose count gives the FNCLCC mitotic score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liposcope.mitoses.fnclcc import mitotic_score, window_side_px
from liposcope.mitoses.settings import Counting
from liposcope.wsi.hotspot import square_windows
from liposcope.wsi.stream import Box
from liposcope.wsi.tissue import TissueMask


@dataclass(frozen=True)
class MitosisCount:
    """Counts over ``tissue_area_mm2`` and in the hotspot window (level-0 box)."""

    count: int
    tissue_area_mm2: float
    hpf_area_mm2: float
    hotspot_box: Box | None
    hotspot_count: int
    hotspot_area_mm2: float
    hotspot_tissue_fraction: float
    hotspot_note: str
    warning: str = ""

    @property
    def per_mm2(self) -> float:
        return self.count / self.tissue_area_mm2 if self.tissue_area_mm2 > 0 else 0.0

    @property
    def per_10hpf(self) -> float:
        return self.per_mm2 * 10 * self.hpf_area_mm2

    @property
    def hotspot_per_10hpf(self) -> float:
        """Figures in the hotspot scaled to 10 HPF (the window is 10 HPF unless the tissue is smaller)."""
        if self.hotspot_area_mm2 <= 0:
            return 0.0
        return self.hotspot_count * 10 * self.hpf_area_mm2 / self.hotspot_area_mm2

    @property
    def mitotic_score(self) -> int:
        """FNCLCC mitotic score from the hotspot count (check :attr:`warning` before using it)."""
        return mitotic_score(self.hotspot_per_10hpf)

    @property
    def reported_score(self) -> int | None:
        """The mitotic score, or ``None`` when the count carries a :attr:`warning`."""
        return None if self.warning else self.mitotic_score


def plausibility_warning(per_10hpf: float, probability: np.ndarray, limit: float) -> str:
    """A warning when the hotspot count exceeds ``limit`` per 10 HPF, a rate that points at ink, keratin,
    debris or a stain the detector does not know rather than at mitoses; empty otherwise.

    Example:
        >>> plausibility_warning(12.0, np.array([0.9]), 100.0)
        ''
    """
    if per_10hpf <= limit:
        return ""
    sure = float(np.mean(probability >= 0.99)) if len(probability) else 0.0
    return (
        f"{per_10hpf:.0f} figures per 10 HPF is implausible (above {limit:g}; {100 * sure:.0f} % of detections at "
        "p >= 0.99): likely ink, keratin, debris or an unfamiliar stain; no mitotic score is given, review the gallery"
    )


def count_mitoses(
    xy: np.ndarray, mask: TissueMask, box: Box, mpp: float, counting: Counting, tissue_area_mm2: float
) -> MitosisCount:
    """Count the figures ``xy`` (level-0 px, all on tissue inside ``box``) per physical area.

    The hotspot is the window of ``counting.hotspot_hpf`` HPFs' area, among windows that are at least
    ``hotspot_min_tissue`` tissue (the part of a window beyond the region counts as no tissue), holding the
    most figures (ties: more tissue). When the tissue is
    smaller than one window, the hotspot is all the tissue and its count is scaled to 10 HPF.

    Example:
        >>> c = count_mitoses(xy, mask, box, 0.25, load_settings().counting, 12.0)  # doctest: +SKIP
        >>> c.per_10hpf, c.mitotic_score  # doctest: +SKIP
    """
    hpf = counting.hpf_mm2
    window_mm2 = counting.hotspot_hpf * hpf
    if tissue_area_mm2 < window_mm2:
        note = f"tissue ({tissue_area_mm2:.2f} mm²) is smaller than {counting.hotspot_hpf} HPF: hotspot = all tissue"
        return MitosisCount(len(xy), tissue_area_mm2, hpf, box, len(xy), tissue_area_mm2, 1.0, note)
    side = window_side_px(window_mm2, mpp)
    windows = square_windows(xy, np.ones((len(xy), 1)), box, side, counting.hotspot_steps)
    corners = np.stack(np.meshgrid(windows.x, windows.y), axis=-1).reshape(-1, 2)
    inside = np.prod(np.clip(np.array(box[:2]) + box[2:] - corners, 0.0, side), axis=1) / side**2
    tissue = (mask.fraction_in_boxes(corners, round(side)) * inside).reshape(len(windows.y), len(windows.x))
    counts = windows.sums[..., 0]
    eligible = tissue >= counting.hotspot_min_tissue
    if not eligible.any():
        eligible = tissue >= tissue.max()
    rank = np.where(eligible, counts, -1.0)
    i, j = np.unravel_index(np.lexsort((tissue.ravel(), rank.ravel()))[-1], rank.shape)
    area = windows.width * windows.height * (mpp / 1000.0) ** 2
    box_ij = windows.box(int(i), int(j))
    return MitosisCount(len(xy), tissue_area_mm2, hpf, box_ij, int(counts[i, j]), area, float(tissue[i, j]), "")
