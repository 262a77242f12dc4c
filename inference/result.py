"""``SlidePrediction``: what ``predict_slide`` returns and every writer (JSON, PNG, GeoJSON, HTML) formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SlidePrediction:
    """One slide's subtype prediction with the evidence a pathologist needs to check it.

    Attributes:
        slide_path, slide_id: the slide.
        classes: class names, in the model's output order.
        probabilities: C calibrated slide-level probabilities.
        coords_level0: N × 2 level-0 (x, y) of each analysed tile's top-left corner.
        tile_size_level0: tile side in level-0 pixels.
        tile_px: tile side in pixels at the model's mpp (for reading tiles back).
        target_mpp: the model's tile resolution in µm/px.
        attention: N attention weights (sum to 1): where the model looked.
        tile_scores: N × C per-tile class probabilities (each tile scored alone by the head).
        tissue_area_mm2: tissue found on the slide.
        slide_dimensions: level-0 (width, height).
        slide_mpp, mpp_source: level-0 µm/px and where it came from.
        thumbnail: RGB overview of the whole slide; ``thumbnail_downsample`` level-0 px per thumbnail px.
        warnings: reasons not to trust this prediction, for the pathologist.
        abstain_reasons: why the model gives no call (out of distribution, or a calibrated top
            probability below the card's ``min_confidence``); empty when it makes a call.
        model: model folder, card summary and hashes.
        provenance: liposcope version, command, time, config.
    """

    slide_path: str
    slide_id: str
    classes: tuple[str, ...]
    probabilities: np.ndarray
    coords_level0: np.ndarray
    tile_size_level0: int
    tile_px: int
    target_mpp: float
    attention: np.ndarray
    tile_scores: np.ndarray
    tissue_area_mm2: float
    slide_dimensions: tuple[int, int]
    slide_mpp: float
    mpp_source: str
    thumbnail: np.ndarray = field(repr=False)
    thumbnail_downsample: float
    warnings: tuple[str, ...] = ()
    abstain_reasons: tuple[str, ...] = ()
    model: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def predicted_class(self) -> str:
        """The most probable class (shown, but not called, when the model abstains)."""
        return self.classes[int(np.argmax(self.probabilities))]

    @property
    def abstained(self) -> bool:
        """Whether the model declines to call this slide (see ``abstain_reasons``)."""
        return bool(self.abstain_reasons)

    @property
    def call(self) -> str | None:
        """The predicted class, or ``None`` when the model abstains."""
        return None if self.abstained else self.predicted_class

    @property
    def confidence(self) -> float:
        """Probability of the predicted class."""
        return float(np.max(self.probabilities))

    def top_tiles(self, k: int = 8) -> np.ndarray:
        """Indices of the ``k`` highest-attention tiles, highest first."""
        return np.argsort(-self.attention, kind="stable")[:k]
