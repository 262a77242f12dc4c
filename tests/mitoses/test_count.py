"""Counting by physical area: HPF geometry, the hotspot window and the refusal of slides without mpp."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from liposcope.cli import main
from liposcope.errors import MissingMPPError
from liposcope.mitoses.compute import detect_mitoses
from liposcope.mitoses.count import MitosisCount, count_mitoses, plausibility_warning
from liposcope.mitoses.settings import Counting, load_settings
from liposcope.wsi.tissue import TissueMask


def _counting(field_number: float = 22.0, hpf_area_mm2: float | None = None) -> Counting:
    return Counting(field_number, hpf_area_mm2, hotspot_hpf=10, hotspot_steps=4, hotspot_min_tissue=0.5)


def _full_mask(width_px: int, height_px: int, mpp: float, downsample: int = 16) -> TissueMask:
    shape = (math.ceil(height_px / downsample), math.ceil(width_px / downsample))
    return TissueMask(np.ones(shape, bool), mpp * downsample, downsample, 0.1)


@pytest.mark.parametrize(("field_number", "mpp"), [(22.0, 0.25), (20.0, 0.5), (26.5, 0.2428)])
def test_hotspot_window_is_ten_hpf_from_mpp_and_field_number(field_number: float, mpp: float) -> None:
    hpf_mm2 = math.pi * (field_number / 40 / 2) ** 2  # a 40x field of view: diameter FN/40 mm
    side_px = math.sqrt(10 * hpf_mm2) * 1000 / mpp  # a square of 10 HPF, in level-0 px
    size = round(2.5 * side_px)
    rng = np.random.default_rng(0)
    cluster = rng.uniform(0.2 * side_px, 0.9 * side_px, (30, 2)) + size / 2  # 30 figures, all inside one window
    sparse = rng.uniform(0, size / 2 - side_px * 0.05, (8, 2))
    xy = np.concatenate([cluster, sparse])
    area_mm2 = (size * mpp / 1000) ** 2
    mask = _full_mask(size, size, mpp)
    counts = count_mitoses(xy, mask, (0.0, 0.0, size, size), mpp, _counting(field_number), area_mm2)
    assert counts.hpf_area_mm2 == pytest.approx(hpf_mm2)
    assert counts.hotspot_area_mm2 == pytest.approx(10 * hpf_mm2, rel=1e-6)
    _x, _y, w, h = counts.hotspot_box or (0, 0, 0, 0)
    assert w == pytest.approx(side_px)
    assert h == pytest.approx(side_px)
    assert counts.hotspot_count >= 30
    assert counts.hotspot_per_10hpf == pytest.approx(counts.hotspot_count)  # the window is exactly 10 HPF
    assert counts.mitotic_score == 3


def test_global_rates_follow_the_tissue_area() -> None:
    counting = _counting(hpf_area_mm2=0.1734)
    xy = np.random.default_rng(1).uniform(0, 20_000, (42, 2))
    counts = count_mitoses(xy, _full_mask(20_000, 20_000, 0.25), (0, 0, 20_000, 20_000), 0.25, counting, 25.0)
    assert counts.per_mm2 == pytest.approx(42 / 25.0)
    assert counts.per_10hpf == pytest.approx(42 / 25.0 * 1.734)


def test_no_figures_on_a_large_section() -> None:
    size, mpp = 16_000, 0.25  # 16 mm², well over 10 HPF
    counts = count_mitoses(np.zeros((0, 2)), _full_mask(size, size, mpp), (0, 0, size, size), mpp, _counting(), 16.0)
    assert counts.count == 0
    assert counts.hotspot_count == 0
    assert counts.hotspot_area_mm2 == pytest.approx(2.376, abs=1e-3)
    assert counts.mitotic_score == 1


def test_tissue_smaller_than_ten_hpf_is_its_own_hotspot() -> None:
    xy = np.array([[100.0, 100.0], [300.0, 200.0], [900.0, 900.0]])
    counts = count_mitoses(xy, _full_mask(1000, 1000, 0.25), (0, 0, 1000, 1000), 0.25, _counting(), 0.0625)
    assert "smaller than 10 HPF" in counts.hotspot_note
    assert counts.hotspot_count == 3
    assert counts.hotspot_per_10hpf == pytest.approx(3 * 2.376 / 0.0625, rel=1e-3)


def test_hotspot_skips_windows_mostly_off_tissue() -> None:
    mpp, size = 0.5, 12_000
    mask = _full_mask(size, size, mpp)
    mask.mask[:, : mask.mask.shape[1] * 3 // 4] = False  # tissue only in the right quarter: < half of any window
    mask.mask[:, -mask.mask.shape[1] // 2 :] = True  # now the right half is tissue
    xy = np.array([[500.0 + 10 * k, 500.0] for k in range(5)] + [[9000.0, 6000.0]])  # 5 on glass side, 1 on tissue
    counts = count_mitoses(xy, mask, (0, 0, size, size), mpp, _counting(), 36.0)
    x, _, w, _ = counts.hotspot_box or (0, 0, 0, 0)
    assert counts.hotspot_tissue_fraction >= 0.5
    assert x + w > 6000  # the window lies over the tissue, not over the 5 points on the left


def test_slide_without_mpp_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "field.png"
    cv2.imwrite(str(png), np.full((256, 256, 3), 200, np.uint8))
    with pytest.raises(MissingMPPError):
        detect_mitoses(png)
    out = tmp_path / "out"
    assert main(["mitoses", str(png), "--out", str(out), "-q"]) == 2
    assert "--slide-mpp" in capsys.readouterr().out
    assert not (out / "field").exists()


def test_hpf_area_option_and_config_checks() -> None:
    assert load_settings().counting.hpf_mm2 == pytest.approx(0.2376, abs=1e-4)
    assert load_settings(hpf_area_mm2=0.196).counting.hpf_mm2 == 0.196
    from liposcope.errors import ConfigError

    with pytest.raises(ConfigError, match="hpf_area_mm2"):
        load_settings(hpf_area_mm2=5.0)


def test_implausible_count_carries_a_warning_not_a_score() -> None:
    assert plausibility_warning(60.0, np.full(10, 0.999), 100.0) == ""
    text = plausibility_warning(340.0, np.array([0.999, 0.995, 0.6]), 100.0)
    assert "implausible" in text
    assert "67 %" in text
    c = MitosisCount(800, 2.0, 0.2376, None, 800, 2.376, 1.0, "")
    assert c.reported_score == 3
    assert replace(c, warning=text).reported_score is None
