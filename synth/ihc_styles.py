"""Named drawing styles of the synthetic IHC slides (:mod:`liposcope.synth.ihc`), and domain-randomised ones.

A style (:class:`IHCLook`) sets how nuclei, stroma and the optics look: nucleus size and elongation, outline
irregularity, crowding, chromatin (smooth, granular, vesicular) and nucleoli, stroma fibres, cytoplasm with faint
DAB, blur and out-of-focus areas, noise, uneven illumination, JPEG quality and stain-colour spread. Detector
settings are tuned on some styles and measured on the others (leave-one-style-out, ``bench/ihc_accuracy.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

CHROMATIN = ("smooth", "granular", "vesicular")


@dataclass(frozen=True)
class IHCLook:
    """How one synthetic IHC slide is drawn (lengths in µm; ranges are (low, high) of a uniform draw)."""

    diameter_um: tuple[float, float] = (6.0, 10.0)  # equivalent-circle diameter
    aspect: tuple[float, float] = (0.65, 1.0)  # short / long semi-axis
    irregular: float = 0.12  # outline wobble (share of the radius)
    cluster_p: float = 0.35  # share of dense-region nuclei that seed a touching pair or triple
    touch: tuple[float, float] = (0.78, 0.95)  # centre distance of touching nuclei / their reach
    chromatin: str = "granular"
    chromatin_amp: float = 0.35  # relative amplitude of the nuclear texture
    nucleoli: float = 0.0  # share of nuclei with a dark nucleolus
    stroma_h: tuple[float, float] = (0.03, 0.08)
    fibres: float = 0.6  # amplitude of the stroma fibre texture
    fibre_um: float = 5.0  # its scale
    cyto_p: float = 0.6  # share of cells with a tinted cytoplasm
    cyto_dab: float = 0.1  # cytoplasm DAB as a share of the nucleus's
    haze_max: tuple[float, float] = (0.02, 0.05)  # background DAB haze
    blur_um: float = 0.5  # optics
    defocus: float = 0.0  # share of the slide out of focus
    defocus_um: float = 1.2  # blur there
    noise: float = 1.0  # multiplier of the stain style's pixel noise
    uneven: float = 0.0  # illumination fall-off across the slide (share of the light)
    jpeg_quality: int = 90
    stain_variation: float = 1.0  # multiplier of the stain-colour spread

    def __post_init__(self) -> None:
        if self.chromatin not in CHROMATIN:
            msg = f"chromatin must be one of {', '.join(CHROMATIN)}, got {self.chromatin!r}"
            raise ValueError(msg)
        if not 0 <= self.defocus <= 1 or not 0 <= self.uneven < 1 or not 20 <= self.jpeg_quality <= 100:
            msg = "need defocus in [0, 1], uneven in [0, 1) and jpeg_quality in [20, 100]"
            raise ValueError(msg)


_REF = IHCLook()
STYLES: dict[str, IHCLook] = {
    "reference": _REF,
    "small-round": dataclasses.replace(
        _REF, diameter_um=(5.0, 7.0), aspect=(0.8, 1.0), irregular=0.06, chromatin="smooth", chromatin_amp=0.1
    ),
    "large-vesicular": dataclasses.replace(
        _REF, diameter_um=(9.0, 14.0), irregular=0.2, chromatin="vesicular", nucleoli=0.6, cyto_p=0.8
    ),
    "spindle": dataclasses.replace(
        _REF, diameter_um=(8.0, 12.0), aspect=(0.35, 0.6), irregular=0.1, fibres=1.0, fibre_um=3.0
    ),
    "crowded": dataclasses.replace(_REF, cluster_p=0.8, touch=(0.72, 0.88), diameter_um=(6.0, 11.0), nucleoli=0.3),
    "fibrous": dataclasses.replace(
        _REF, stroma_h=(0.06, 0.14), fibres=1.2, fibre_um=2.5, haze_max=(0.04, 0.08), cyto_p=0.9, cyto_dab=0.2
    ),
    "defocus-jpeg": dataclasses.replace(
        _REF, defocus=0.35, defocus_um=1.4, noise=2.0, uneven=0.12, jpeg_quality=60, stain_variation=1.5
    ),
}


def random_look(rng: np.random.Generator) -> IHCLook:
    """A domain-randomised style: every property drawn over the span of the named :data:`STYLES`."""
    looks = list(STYLES.values())
    fields: dict[str, object] = {}
    for f in dataclasses.fields(IHCLook):
        values = [getattr(look, f.name) for look in looks]
        if f.name == "chromatin":
            fields[f.name] = str(rng.choice(CHROMATIN))
        elif isinstance(values[0], tuple):
            lo = min(v[0] for v in values)
            hi = max(v[1] for v in values)
            a, b = sorted(rng.uniform(lo, hi, 2))
            fields[f.name] = (float(a), float(max(b, a + 0.1 * (hi - lo))))
        elif isinstance(values[0], int):
            fields[f.name] = int(rng.integers(min(values), max(values) + 1))
        else:
            fields[f.name] = float(rng.uniform(min(values), max(values)))
    return IHCLook(**fields)  # type: ignore[arg-type]


def look_named(name: str) -> IHCLook:
    """The named style (``random`` is not named: use :func:`random_look`)."""
    if name not in STYLES:
        msg = f"unknown IHC style {name!r}; use one of {', '.join(STYLES)}"
        raise ValueError(msg)
    return STYLES[name]
