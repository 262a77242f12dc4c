"""``IHCResult``: what IHC scoring measured on one slide (level-0 px)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liposcope.ihc.marker import Marker
from liposcope.ihc.nuclei import Nuclei
from liposcope.ihc.score import HotspotResult

Box = tuple[float, float, float, float]



@dataclass(frozen=True)
class IHCResult:
    """Everything measured on one slide; nucleus positions in level-0 px."""

    slide_id: str
    slide_path: str
    slide_mpp: float
    marker: Marker
    region: Box
    area_mm2: float
    nuclei: Nuclei
    grades: np.ndarray
    hotspot: HotspotResult | None
    scores: dict[str, object]
    deconvolution: dict[str, object]
    provenance: dict[str, Any] = field(default_factory=dict)
