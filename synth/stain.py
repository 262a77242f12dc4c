"""Beer-Lambert rendering of stain concentration maps to RGB, with per-slide stain styles.

A pixel with concentrations ``c_s`` of stains with unit optical-density vectors ``v_s`` and
intensity scales ``k_s`` has intensity ``I = I0 * 10 ** -(sum_s k_s * c_s * v_s)``, with ``I0``
the glass (background) colour. The stain list is open, so a DAB stain can be added for IHC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from liposcope.synth.fields import FloatArray

Vector = tuple[float, float, float]

HEMATOXYLIN: Vector = (0.644, 0.717, 0.267)
EOSIN: Vector = (0.093, 0.954, 0.283)
DAB: Vector = (0.268, 0.570, 0.776)
_LN10 = float(np.log(10.0))


def normalise(vector: tuple[float, ...]) -> Vector:
    """Return ``vector`` scaled to unit length; raise ValueError for a zero or negative vector.

    A vector already of unit length (to 1e-12) comes back unchanged: dividing it by its norm again could
    change its last bit, and a style read back from JSON would then differ from the one written.
    """
    v = np.asarray(vector, np.float64)
    if v.shape != (3,) or np.any(v < 0) or not np.any(v > 0):
        msg = f"stain vector must be 3 non-negative components, not all zero: {vector!r}"
        raise ValueError(msg)
    norm = float(np.linalg.norm(v))
    if abs(norm - 1.0) > 1e-12:
        v = v / norm
    return (float(v[0]), float(v[1]), float(v[2]))


@dataclass(frozen=True)
class Stain:
    """One stain: name, unit RGB optical-density vector and intensity scale."""

    name: str
    vector: Vector
    scale: float = 1.0


@dataclass(frozen=True)
class StainStyle:
    """Per-slide appearance: stains, glass colour ``background`` (I0, RGB 0-255) and noise level.

    Build one directly to force colours never seen in training, or use :func:`random_he_style`.
    """

    stains: tuple[Stain, ...]
    background: Vector = (242.0, 240.0, 244.0)
    noise_sigma: float = 2.0

    def __post_init__(self) -> None:
        names = [s.name for s in self.stains]
        if not names or len(set(names)) != len(names):
            msg = f"StainStyle needs at least one stain and unique stain names, got {names}"
            raise ValueError(msg)
        if not all(0.0 < b <= 255.0 for b in self.background):
            msg = f"background must be in (0, 255], got {self.background}"
            raise ValueError(msg)

    def stain(self, name: str) -> Stain:
        """Stain by name (ValueError if absent)."""
        for s in self.stains:
            if s.name == name:
                return s
        msg = f"stain {name!r} not in style (have {[s.name for s in self.stains]})"
        raise ValueError(msg)

    def with_stain(self, stain: Stain) -> StainStyle:
        """Copy with ``stain`` added or replaced (for example a DAB stain for IHC)."""
        others = tuple(s for s in self.stains if s.name != stain.name)
        return replace(self, stains=(*others, stain))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "stains": [{"name": s.name, "vector": list(s.vector), "scale": s.scale} for s in self.stains],
            "background": list(self.background),
            "noise_sigma": self.noise_sigma,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StainStyle:
        """Inverse of :meth:`to_dict`."""
        stains = tuple(Stain(str(s["name"]), normalise(tuple(s["vector"])), float(s["scale"])) for s in data["stains"])
        bg = tuple(float(b) for b in data["background"])
        return cls(stains, (bg[0], bg[1], bg[2]), float(data["noise_sigma"]))


def he_style(
    h_vector: Vector = HEMATOXYLIN,
    e_vector: Vector = EOSIN,
    h_scale: float = 1.0,
    e_scale: float = 1.0,
    background: Vector = (242.0, 240.0, 244.0),
    noise_sigma: float = 2.0,
) -> StainStyle:
    """H&E style with explicit parameters (defaults: DOMAIN.md reference vectors)."""
    return StainStyle(
        (Stain("H", normalise(h_vector), h_scale), Stain("E", normalise(e_vector), e_scale)),
        background,
        noise_sigma,
    )


def perturb(rng: np.random.Generator, vector: Vector, sigma: float) -> Vector:
    """``vector`` plus Gaussian noise of ``sigma`` per component, kept positive and renormalised."""
    v = np.asarray(vector) + rng.normal(0.0, sigma, 3)
    return normalise(tuple(np.clip(v, 0.02, None)))


def random_he_style(rng: np.random.Generator, variation: float = 1.0) -> StainStyle:
    """Random H&E style around the reference vectors.

    Args:
        rng: Random generator (per slide).
        variation: Spread multiplier; 0 gives the reference style, 1 the default lab-to-lab range.
    """
    if variation < 0:
        msg = f"variation must be >= 0, got {variation}"
        raise ValueError(msg)
    brightness = 244.0 - variation * rng.uniform(0.0, 30.0)
    tint = rng.normal(0.0, 4.0 * variation, 3)
    background = tuple(float(np.clip(brightness + t, 150.0, 255.0)) for t in tint)
    return he_style(
        h_vector=perturb(rng, HEMATOXYLIN, 0.08 * variation),
        e_vector=perturb(rng, EOSIN, 0.08 * variation),
        h_scale=float(np.exp(rng.normal(0.0, 0.25 * variation))),
        e_scale=float(np.exp(rng.normal(0.0, 0.3 * variation))),
        background=(background[0], background[1], background[2]),
        noise_sigma=float(1.0 + variation * rng.uniform(0.0, 2.5)),
    )


def render_rgb(
    concentrations: Mapping[str, FloatArray], style: StainStyle, noise: FloatArray | None = None
) -> NDArray[np.uint8]:
    """Beer-Lambert composite of concentration maps (all the same 2-D shape) to uint8 RGB.

    Args:
        concentrations: Stain name -> concentration map (OD at unit scale). Stains of the
            style missing here count as zero.
        style: Stain vectors, scales and background.
        noise: Optional additive intensity noise (unit std, same shape); scaled by ``style.noise_sigma``.
    """
    if not concentrations:
        msg = "render_rgb needs at least one concentration map"
        raise ValueError(msg)
    shape = next(iter(concentrations.values())).shape
    if any(c.shape != shape for c in concentrations.values()) or len(shape) != 2:
        msg = "concentration maps must be 2-D and share one shape"
        raise ValueError(msg)
    stains = [(style.stain(name), c) for name, c in concentrations.items()]
    out = np.empty((*shape, 3), np.uint8)
    od = np.empty(shape, np.float32)
    tmp = np.empty(shape, np.float32)
    for ch in range(3):
        od.fill(0.0)
        for stain, conc in stains:
            np.multiply(conc, np.float32(-_LN10 * stain.scale * stain.vector[ch]), out=tmp)
            od += tmp
        np.exp(od, out=od)
        od *= np.float32(style.background[ch])
        if noise is not None:
            od += noise * np.float32(style.noise_sigma)
        np.clip(od, 0.0, 255.0, out=od)
        out[..., ch] = od + 0.5
    return out
