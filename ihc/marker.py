"""DAB marker presets: ``configs/ihc.yaml`` defaults, updated by ``ki67.yaml``, ``mdm2.yaml`` or a user file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from liposcope.config import from_dict, load_yaml, merge
from liposcope.errors import ConfigError, did_you_mean

PRESETS = ("ki67", "mdm2")
METRICS = ("labelling_index_pct", "h_score")


@dataclass(frozen=True)
class StainVectors:
    """RGB optical-density vectors for deconvolution; ``other`` empty means the residual (cross product)."""

    hematoxylin: tuple[float, ...]
    dab: tuple[float, ...]
    other: tuple[float, ...]
    fit_to_slide: bool


@dataclass(frozen=True)
class NucleusParams:
    """Nucleus detection settings (see ``configs/ihc.yaml``); lengths in µm."""

    smooth_um: float
    min_od: float
    seed_scales_um: tuple[float, float]
    seed_min_contrast: float
    min_distance_um: float
    reach_um: float
    merge_saddle: float
    edge_fraction: float
    min_area_um2: float
    max_area_um2: float
    min_width_um: float
    min_contrast_od: float
    texture_floor: float
    inset_um: float


@dataclass(frozen=True)
class Intensity:
    """Lower mean-nuclear-DAB-OD bounds of the weak, moderate and strong classes."""

    weak: float
    moderate: float
    strong: float


@dataclass(frozen=True)
class Hotspot:
    """Hotspot window area and the fewest nuclei a window must hold to count."""

    area_mm2: float
    min_nuclei: int


@dataclass(frozen=True)
class Status:
    """``metric`` at or above ``cutoff`` reads ``at_or_above``, else ``below``; ``source`` says where the cut-off
    comes from (filled in by :func:`load_marker` when the file does not say)."""

    metric: str
    cutoff: float
    at_or_above: str
    below: str
    source: str = ""


@dataclass(frozen=True)
class Marker:
    """One DAB marker: what is scored, how nuclei are found and how they are graded."""

    name: str
    compartment: str
    analysis_mpp: float
    tile_px: int
    stains: StainVectors
    nuclei: NucleusParams
    intensity: Intensity
    hotspot: Hotspot
    status: Status
    notes: tuple[str, ...] = ()  # lines every report of this marker states (e.g. what IHC cannot decide)


def load_marker(marker: str | Path) -> Marker:
    """A packaged preset (``ki67``, ``mdm2``) or a YAML file, over the ``ihc.yaml`` defaults.

    Raises:
        ConfigError: unknown preset, missing file, unknown keys or values out of range.

    Example:
        >>> load_marker("ki67").name
        'Ki-67'
    """
    text = str(marker)
    if not text.endswith((".yaml", ".yml")) and text not in PRESETS:
        hint = did_you_mean(text, PRESETS)
        msg = f"--marker {text}: unknown marker{hint}; use one of {', '.join(PRESETS)} or a path to a .yaml file"
        raise ConfigError(msg)
    own = load_yaml(marker)
    merged = merge(load_yaml("ihc"), own)
    if not merged["status"].get("source"):
        merged["status"]["source"] = _cutoff_source(text, "cutoff" in own.get("status", {}))
    result = from_dict(Marker, merged, text)
    _check(result, text)
    return result


def _cutoff_source(marker: str, own_cutoff: bool) -> str:
    """Where the status cut-off comes from, in words."""
    if not own_cutoff:
        return "the default of configs/ihc.yaml (a preset value, not a validated clinical threshold)"
    if marker in PRESETS:
        return f"the {marker} preset (configs/{marker}.yaml; a preset value, not a validated clinical threshold)"
    return f"the marker file {marker}"


def _check(m: Marker, source: str) -> None:
    problems = []
    if m.compartment != "nuclear":
        problems.append(f"compartment '{m.compartment}' is not implemented (use nuclear)")
    if not 0.1 <= m.analysis_mpp <= 1.0:
        problems.append(f"analysis_mpp {m.analysis_mpp} must lie in [0.1, 1.0] µm/px to resolve nuclei")
    if m.tile_px < 128:
        problems.append(f"tile_px {m.tile_px} must be at least 128")
    for name in ("hematoxylin", "dab"):
        if len(getattr(m.stains, name)) != 3:
            problems.append(f"stains.{name} must be 3 numbers (an RGB OD vector)")
    if len(m.stains.other) not in (0, 3):
        problems.append("stains.other must be [] or 3 numbers")
    if not 0 < m.intensity.weak < m.intensity.moderate < m.intensity.strong:
        problems.append("intensity thresholds must satisfy 0 < weak < moderate < strong")
    if not 0 < m.nuclei.min_area_um2 < m.nuclei.max_area_um2:
        problems.append("nuclei: need 0 < min_area_um2 < max_area_um2")
    if len(m.nuclei.seed_scales_um) != 2 or not 0 < m.nuclei.seed_scales_um[0] <= m.nuclei.seed_scales_um[1]:
        problems.append("nuclei.seed_scales_um must be [smallest, largest] with 0 < smallest <= largest")
    if not 0 < m.nuclei.edge_fraction < 1:
        problems.append("nuclei.edge_fraction must lie in (0, 1)")
    if m.hotspot.area_mm2 <= 0 or m.hotspot.min_nuclei < 1:
        problems.append("hotspot: area_mm2 must be > 0 and min_nuclei >= 1")
    if m.status.metric not in METRICS:
        problems.append(f"status.metric '{m.status.metric}' must be one of {', '.join(METRICS)}")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
