"""FNCLCC arithmetic and HPF geometry against the numbers in DOMAIN.md, computed by hand."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from liposcope.errors import ConfigError
from liposcope.mitoses.fnclcc import (
    DEFAULT_FIELD_NUMBER,
    Grade,
    differentiation_score,
    fnclcc_grade,
    hpf_area_mm2,
    mitotic_score,
    necrosis_score,
    window_side_px,
)


def test_hpf_area() -> None:
    assert hpf_area_mm2() == pytest.approx(math.pi * (22 / 80) ** 2)
    assert round(hpf_area_mm2(DEFAULT_FIELD_NUMBER), 4) == 0.2376
    assert round(hpf_area_mm2(20.0), 3) == 0.196
    assert hpf_area_mm2(22.0, objective=20.0) == pytest.approx(4 * hpf_area_mm2(22.0))


def test_window_side_for_10_hpf() -> None:
    area = 10 * math.pi * (22 / 80) ** 2  # 2.376 mm²
    side_mm = math.sqrt(area)  # 1.5414 mm
    assert round(side_mm, 4) == 1.5414
    assert window_side_px(area, 0.25) == pytest.approx(side_mm * 1000 / 0.25)
    # DOMAIN.md's 6165.6 px is 1.5414 mm (rounded) × 4000 px/mm; unrounded it is 6165.49 px.
    assert window_side_px(area, 0.25) == pytest.approx(1.5414 * 4000, abs=0.2)
    assert window_side_px(area, 0.5) == pytest.approx(window_side_px(area, 0.25) / 2)


@pytest.mark.parametrize(("count", "score"), [(0, 1), (9, 1), (9.9, 1), (10, 2), (19, 2), (19.99, 2), (20, 3), (45, 3)])
def test_mitotic_score_boundaries(count: float, score: int) -> None:
    assert mitotic_score(count) == score


@pytest.mark.parametrize(("pct", "score"), [(0, 0), (0.5, 1), (49.9, 1), (50, 2), (100, 2)])
def test_necrosis_score(pct: float, score: int) -> None:
    assert necrosis_score(pct) == score


def test_differentiation() -> None:
    assert {s: differentiation_score(s) for s in ("WDLPS", "DDLPS", "MLPS", "PLPS")} == {
        "WDLPS": 1,
        "DDLPS": 3,
        "MLPS": 2,
        "PLPS": 3,
    }
    assert differentiation_score("MLPS", round_cell=True) == 3
    assert differentiation_score(" mlps ") == 2


@pytest.mark.parametrize(("total", "grade"), [(2, 1), (3, 1), (4, 2), (5, 2), (6, 3), (7, 3), (8, 3)])
def test_every_grade_boundary(total: int, grade: int) -> None:
    # Spread the total over the components: differentiation 1–3, mitotic 1–3, necrosis 0–2.
    differentiation = min(3, total - 1)
    mitotic = min(3, total - differentiation)
    necrosis = total - differentiation - mitotic
    g = Grade(differentiation, mitotic, necrosis)
    assert (g.total, g.grade) == (total, grade)


def test_fnclcc_grade_and_dict() -> None:
    g = fnclcc_grade("WDLPS", 3, 0)
    assert (g.differentiation, g.mitotic, g.necrosis, g.total, g.grade) == (1, 1, 0, 2, 1)
    assert fnclcc_grade("MLPS", 12, 10, round_cell=True).to_dict() == {
        "differentiation": 3,
        "mitotic": 2,
        "necrosis": 1,
        "total": 6,
        "grade": 3,
        "note": "suggested, to be confirmed by the pathologist",
    }
    assert fnclcc_grade("DDLPS", 25, 60).grade == 3


@pytest.mark.parametrize(
    "call",
    [
        lambda: hpf_area_mm2(0),
        lambda: hpf_area_mm2(22, -40),
        lambda: window_side_px(0, 0.25),
        lambda: window_side_px(2.376, 0),
        lambda: window_side_px(2.376, math.nan),
        lambda: mitotic_score(-1),
        lambda: mitotic_score(math.nan),
        lambda: necrosis_score(-0.1),
        lambda: necrosis_score(100.5),
        lambda: necrosis_score(math.nan),
        lambda: Grade(0, 1, 0),
        lambda: Grade(1, 4, 0),
        lambda: Grade(1, 1, 3),
    ],
)
def test_bad_numbers_raise_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        call()


def test_bad_subtype_raises_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^subtype: unknown subtype 'LIPOMA'; pass one of WDLPS, DDLPS, MLPS, PLPS"):
        differentiation_score("LIPOMA")
    with pytest.raises(ConfigError, match="round_cell"):
        fnclcc_grade("WDLPS", 0, 0, round_cell=True)
