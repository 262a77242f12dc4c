"""FNCLCC grading arithmetic and high-power-field geometry (pure functions, no I/O).

Grade = differentiation + mitotic + necrosis score; totals 2–3 → grade 1, 4–5 → grade 2, 6–8 → grade 3.
The result is a suggestion for the pathologist, never a diagnosis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from liposcope.errors import ConfigError, where

DEFAULT_FIELD_NUMBER = 22.0

DIFFERENTIATION: dict[str, int] = {"WDLPS": 1, "DDLPS": 3, "MLPS": 2, "PLPS": 3}
ROUND_CELL_DIFFERENTIATION = 3


def hpf_area_mm2(field_number: float = DEFAULT_FIELD_NUMBER, objective: float = 40.0) -> float:
    """Area in mm² of one high-power field: a disc of diameter ``field_number / objective`` mm.

    Example:
        >>> round(hpf_area_mm2(22.0), 4)
        0.2376
    """
    if not (field_number > 0 and objective > 0 and math.isfinite(field_number) and math.isfinite(objective)):
        msg = f"field number and objective must be positive, got {field_number} and {objective}"
        raise ValueError(msg)
    return math.pi * (field_number / objective / 2) ** 2


def window_side_px(area_mm2: float, mpp: float) -> float:
    """Side in level-0 pixels of a square of ``area_mm2`` at ``mpp`` µm per pixel.

    Example:
        >>> round(window_side_px(10 * hpf_area_mm2(), 0.25), 1)
        6165.5
    """
    if not (area_mm2 > 0 and mpp > 0 and math.isfinite(area_mm2) and math.isfinite(mpp)):
        msg = f"area and mpp must be positive, got {area_mm2} mm² and {mpp} µm/px"
        raise ValueError(msg)
    return 1000.0 * math.sqrt(area_mm2) / mpp


def mitotic_score(per_10hpf: float) -> int:
    """FNCLCC mitotic score of a count per 10 HPF: < 10 → 1, < 20 → 2, otherwise 3.

    The table's "0–9" and "10–19" are read as half-open intervals, so a non-integer count such as 9.9
    (e.g. scaled from another area) scores 1 and 19.5 scores 2.

    Example:
        >>> mitotic_score(9.9), mitotic_score(10), mitotic_score(20)
        (1, 2, 3)
    """
    if not (per_10hpf >= 0 and math.isfinite(per_10hpf)):
        msg = f"mitotic count per 10 HPF must be a finite number >= 0, got {per_10hpf}"
        raise ValueError(msg)
    if per_10hpf < 10:
        return 1
    return 2 if per_10hpf < 20 else 3


def differentiation_score(subtype: str, *, round_cell: bool = False) -> int:
    """FNCLCC differentiation score of a liposarcoma subtype; MLPS with round-cell areas scores 3.

    Raises:
        ConfigError: Unknown subtype, or ``round_cell`` for a subtype other than MLPS.

    Example:
        >>> differentiation_score("MLPS", round_cell=True)
        3
    """
    key = subtype.strip().upper()
    if key not in DIFFERENTIATION:
        raise ConfigError(where("subtype", f"unknown subtype {subtype!r}", f"pass one of {', '.join(DIFFERENTIATION)}"))
    if round_cell and key != "MLPS":
        msg = where("round_cell", f"round-cell areas apply to MLPS only, not {key}", "drop round_cell or pass MLPS")
        raise ConfigError(msg)
    return ROUND_CELL_DIFFERENTIATION if round_cell else DIFFERENTIATION[key]


def necrosis_score(necrosis_pct: float) -> int:
    """FNCLCC necrosis score of the necrotic percentage of the tumour: none → 0, < 50 % → 1, ≥ 50 % → 2.

    Example:
        >>> necrosis_score(0), necrosis_score(10), necrosis_score(50)
        (0, 1, 2)
    """
    if not 0 <= necrosis_pct <= 100:
        msg = f"necrosis must be a percentage in [0, 100], got {necrosis_pct}"
        raise ValueError(msg)
    if necrosis_pct == 0:
        return 0
    return 1 if necrosis_pct < 50 else 2


@dataclass(frozen=True)
class Grade:
    """The three FNCLCC component scores and the grade they give.

    Example:
        >>> Grade(differentiation=3, mitotic=2, necrosis=1).grade
        3
    """

    differentiation: int
    mitotic: int
    necrosis: int

    def __post_init__(self) -> None:
        if self.differentiation not in (1, 2, 3) or self.mitotic not in (1, 2, 3) or self.necrosis not in (0, 1, 2):
            msg = f"scores out of range (differentiation 1–3, mitotic 1–3, necrosis 0–2): {self}"
            raise ValueError(msg)

    @property
    def total(self) -> int:
        """Sum of the three scores, 2 to 8."""
        return self.differentiation + self.mitotic + self.necrosis

    @property
    def grade(self) -> int:
        """FNCLCC grade: total 2–3 → 1, 4–5 → 2, 6–8 → 3."""
        if self.total <= 3:
            return 1
        return 2 if self.total <= 5 else 3

    def to_dict(self) -> dict[str, object]:
        """The components, total and grade, marked as a suggestion for the pathologist."""
        return {
            "differentiation": self.differentiation,
            "mitotic": self.mitotic,
            "necrosis": self.necrosis,
            "total": self.total,
            "grade": self.grade,
            "note": "suggested, to be confirmed by the pathologist",
        }


def fnclcc_grade(subtype: str, per_10hpf: float, necrosis_pct: float, *, round_cell: bool = False) -> Grade:
    """Suggested FNCLCC grade from subtype, mitoses per 10 HPF and necrotic percentage.

    Example:
        >>> fnclcc_grade("DDLPS", 12, 0).to_dict()["grade"]
        2
    """
    return Grade(
        differentiation=differentiation_score(subtype, round_cell=round_cell),
        mitotic=mitotic_score(per_10hpf),
        necrosis=necrosis_score(necrosis_pct),
    )
