"""``MitosisResult``: the mitotic figures and counts of one slide (level-0 px)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liposcope.mitoses.count import MitosisCount
from liposcope.wsi.stream import Box


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
