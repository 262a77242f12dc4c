"""Mitosis settings: ``configs/mitoses.yaml``, optionally updated by a user file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from liposcope.config import from_dict, load_yaml, merge
from liposcope.errors import ConfigError
from liposcope.mitoses.fnclcc import hpf_area_mm2


@dataclass(frozen=True)
class CandidateParams:
    """Stage 1: peaks of the smoothed haematoxylin amount (lengths in µm)."""

    smooth_um: float
    min_od: float
    min_distance_um: float


@dataclass(frozen=True)
class Counting:
    """HPF geometry and the hotspot search."""

    field_number: float
    hpf_area_mm2: float | None
    hotspot_hpf: int
    hotspot_steps: int
    hotspot_min_tissue: float
    plausible_max_per_10hpf: float = 100.0

    @property
    def hpf_mm2(self) -> float:
        """Area of one HPF: given directly, else from the field number (40x objective)."""
        return self.hpf_area_mm2 if self.hpf_area_mm2 is not None else hpf_area_mm2(self.field_number)


@dataclass(frozen=True)
class MitosisSettings:
    """Everything ``liposcope mitoses`` needs besides the model."""

    analysis_mpp: float
    tile_px: int
    candidates: CandidateParams
    patch_px: int
    batch_size: int
    nms_um: float
    counting: Counting
    gallery: int


def load_settings(path: str | Path | None = None, *, hpf_area_mm2: float | None = None) -> MitosisSettings:
    """The defaults, updated by the YAML file ``path`` and an explicit HPF area.

    Raises:
        ConfigError: unknown keys or values out of range.

    Example:
        >>> round(load_settings().counting.hpf_mm2, 4)
        0.2376
    """
    data = load_yaml("mitoses")
    if path is not None:
        data = merge(data, load_yaml(path))
    if hpf_area_mm2 is not None:
        data = merge(data, {"counting": {"hpf_area_mm2": hpf_area_mm2}})
    source = str(path or "configs/mitoses.yaml")
    settings = from_dict(MitosisSettings, data, source)
    _check(settings, source)
    return settings


def _check(s: MitosisSettings, source: str) -> None:
    c = s.counting
    problems = [
        (not 0.1 <= s.analysis_mpp <= 0.5, f"analysis_mpp {s.analysis_mpp} must lie in [0.1, 0.5] µm/px"),
        (s.patch_px < 16 or s.tile_px < 2 * s.patch_px, "need patch_px >= 16 and tile_px >= 2 × patch_px"),
        (c.hpf_area_mm2 is not None and not 0.01 <= c.hpf_area_mm2 <= 1.0, "hpf_area_mm2 must lie in [0.01, 1] mm²"),
        (not 10.0 <= c.field_number <= 30.0, f"field_number {c.field_number} must lie in [10, 30] mm"),
        (c.hotspot_hpf < 1 or c.hotspot_steps < 1, "hotspot_hpf and hotspot_steps must be >= 1"),
        (not 0.0 <= c.hotspot_min_tissue <= 1.0, "hotspot_min_tissue must lie in [0, 1]"),
        (c.plausible_max_per_10hpf <= 0, "plausible_max_per_10hpf must be > 0"),
        (s.nms_um <= 0 or s.batch_size < 1 or s.gallery < 0, "need nms_um > 0, batch_size >= 1, gallery >= 0"),
    ]
    bad = [message for failed, message in problems if failed]
    if bad:
        raise ConfigError(f"{source}: " + "; ".join(bad))


@dataclass(frozen=True)
class MitosisTrainConfig:
    """Training hyperparameters (``liposcope train-mitosis --help`` explains each)."""

    backbone: str = "lcnet_050"
    weights: str = "random"
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.25
    negatives_per_positive: float = 4.0
    pool_per_slide: int = 5000
    stain_jitter: float = 0.2
    scale_jitter: float = 0.2
    blur_px: float = 1.2
    noise: float = 6.0
    match_um: float = 7.5
    seed: int = 0
    device: str = "auto"
