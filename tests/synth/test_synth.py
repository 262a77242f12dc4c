"""Tests for liposcope.synth: pyramid writer, rendering, ground truth, subtypes and cohorts."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import openslide
import pytest

from liposcope.synth import (
    LABELS,
    StainStyle,
    he_style,
    load_truth,
    make_slide,
    write_cohort,
    write_pyramid,
    write_slide,
)
from liposcope.synth.stain import render_rgb


def _gradient(x0: int, y0: int, w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[y0 : y0 + h, x0 : x0 + w]
    return np.stack([(xx // 5) % 256, (yy // 3) % 256, ((xx + yy) // 11) % 256], -1).astype(np.uint8)


def test_pyramid_opens_in_openslide(tmp_path: Path) -> None:
    path = tmp_path / "g.tiff"
    write_pyramid(path, _gradient, 2600, 1900, 0.25, description="test")
    with openslide.OpenSlide(str(path)) as s:
        assert s.properties["openslide.vendor"] == "generic-tiff"
        assert s.level_count == 3
        assert s.level_dimensions[0] == (2600, 1900)
        assert s.level_downsamples[1] == pytest.approx(4.0)
        assert float(s.properties["openslide.mpp-x"]) == pytest.approx(0.25)
        assert float(s.properties["openslide.mpp-y"]) == pytest.approx(0.25)
        got = np.asarray(s.read_region((700, 900), 0, (300, 200)).convert("RGB")).astype(float)
        low = np.asarray(s.read_region((0, 0), 1, (650, 475)).convert("RGB")).astype(float)
    assert np.abs(got - _gradient(700, 900, 300, 200)).mean() < 3.0
    expected = _gradient(400, 400, 4, 4).reshape(-1, 3).mean(0)
    assert np.abs(low[100, 100] - expected).max() < 4.0
    assert not list(tmp_path.glob(".*"))  # temporaries cleaned up


def test_pyramid_cleans_up_on_error(tmp_path: Path) -> None:
    def bad(x0: int, y0: int, w: int, h: int) -> np.ndarray:
        return np.zeros((h, w), np.uint8)

    with pytest.raises(ValueError, match="render"):
        write_pyramid(tmp_path / "bad.tiff", bad, 600, 600, 0.5)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def ddlps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "case-1.tiff"
    write_slide(path, label="DDLPS", seed=3, width_px=2400, height_px=1800, mpp=0.5)
    return path


def test_slide_matches_renderer_and_truth(ddlps: Path) -> None:
    truth = load_truth(ddlps)
    slide = make_slide(label="DDLPS", seed=3, width_px=2400, height_px=1800, mpp=0.5)
    with openslide.OpenSlide(str(ddlps)) as s:
        assert float(s.properties["openslide.mpp-x"]) == pytest.approx(0.5)
        assert s.level_count >= 2
        got = np.asarray(s.read_region((900, 700), 0, (400, 300)).convert("RGB")).astype(float)
        thumb = np.asarray(s.read_region((0, 0), s.level_count - 1, s.level_dimensions[-1]).convert("RGB"))
    ref = slide.render(900, 700, 400, 300).astype(float)
    assert np.abs(got - ref).mean() < 6.0  # JPEG error on fine noise and nuclei
    blocks = (got - ref).reshape(75, 4, 100, 4, 3).mean(axis=(1, 3))
    assert np.abs(blocks).mean() < 2.0
    assert truth.label == "DDLPS"
    assert truth.slide_id == "case-1"
    assert truth.tissue_mask.shape == (-(-1800 // 16), -(-2400 // 16))
    assert 0.2 < truth.tissue_mask.mean() < 0.8
    assert truth.dediff_mask.any()
    assert not (truth.dediff_mask & ~truth.tissue_mask).any()
    assert truth.style == slide.style
    meta = json.loads(ddlps.with_name("case-1.truth.json").read_text())
    assert meta["tissue_mask"] == "case-1.tissue.png"
    assert meta["dediff_mask"] == "case-1.dediff.png"
    assert 0.0 <= truth.tissue_fraction(0, 0, 2400, 1800) - truth.tissue_mask.mean() < 0.05
    # Glass outside the (eroded) tissue mask is bright.
    ds = 2400 / thumb.shape[1]
    ys, xs = np.nonzero(~truth.tissue_mask)
    px = thumb[
        np.minimum((ys * 16 / ds).astype(int), thumb.shape[0] - 1),
        np.minimum((xs * 16 / ds).astype(int), thumb.shape[1] - 1),
    ]
    assert np.median(px.mean(axis=1)) > 200


def test_truth_box_fraction(ddlps: Path) -> None:
    truth = load_truth(ddlps)
    assert truth.tissue_fraction(0, 0, 16, 16) == float(truth.tissue_mask[0, 0])
    ys, xs = np.nonzero(truth.tissue_mask)
    assert truth.tissue_fraction(xs[0] * 16, ys[0] * 16, 16, 16) == 1.0
    with pytest.raises(ValueError, match="positive"):
        truth.tissue_fraction(0, 0, 0, 10)


def test_render_is_deterministic_and_tile_continuous() -> None:
    for label, mpp in (("WDLPS", 0.5), ("PLPS", 0.25), ("MLPS", 0.5), ("DDLPS", 0.25)):
        slide = make_slide(label=label, seed=9, width_px=3000, height_px=3000, mpp=mpp)
        whole = slide.render(1100, 1200, 300, 260).astype(int)
        again = make_slide(label=label, seed=9, width_px=3000, height_px=3000, mpp=mpp).render(1100, 1200, 300, 260)
        assert np.array_equal(whole, again)
        parts = np.zeros_like(whole)
        for y0, h in ((0, 117), (117, 143)):
            for x0, w in ((0, 171), (171, 129)):
                parts[y0 : y0 + h, x0 : x0 + w] = slide.render(1100 + x0, 1200 + y0, w, h)
        diff = np.abs(parts - whole)
        assert diff.mean() < 0.05, label
        assert np.percentile(diff, 99.9) <= 2, label


def _tissue_stats(label: str, seed: int) -> np.ndarray:
    slide = make_slide(label=label, seed=seed, width_px=2000, height_px=2000, mpp=0.5, style=he_style())
    img = slide.render(500, 500, 1000, 1000).reshape(-1, 3).astype(float)
    xs = np.asarray((np.arange(1000) + 500.5) * 0.5, np.float64)
    inside = slide.tissue.alpha(xs, xs).ravel() > 0.99
    return np.asarray(img[inside].mean(axis=0), np.float64)


def test_subtypes_differ_in_colour() -> None:
    stats = {label: _tissue_stats(label, 5) for label in LABELS}
    assert stats["WDLPS"].mean() > stats["PLPS"].mean() + 30
    assert stats["WDLPS"].mean() > stats["MLPS"].mean()
    blue_minus_red = {k: v[2] - v[0] for k, v in stats.items()}
    assert blue_minus_red["MLPS"] > blue_minus_red["PLPS"]


def test_stain_style_round_trip_and_validation() -> None:
    style = he_style(h_vector=(0.1, 0.2, 0.9), background=(250.0, 230.0, 200.0))
    assert StainStyle.from_dict(json.loads(json.dumps(style.to_dict()))) == style
    white = render_rgb({"H": np.zeros((4, 4), np.float32)}, style)
    assert tuple(white[0, 0]) == (250, 230, 200)
    with pytest.raises(ValueError, match="DAB"):
        render_rgb({"DAB": np.zeros((2, 2), np.float32)}, style)
    with pytest.raises(ValueError, match="label"):
        make_slide(label="MPLPS", seed=1, width_px=500, height_px=500)


def test_stain_style_round_trip_is_exact_for_any_vector() -> None:
    """Reading a style back must not renormalise its unit vectors again (that flipped last bits)."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        style = he_style(h_vector=tuple(rng.uniform(0.01, 2.0, 3)), e_vector=tuple(rng.uniform(0.01, 2.0, 3)))
        assert StainStyle.from_dict(json.loads(json.dumps(style.to_dict()))) == style


def test_cohort_is_balanced_with_second_slides(tmp_path: Path) -> None:
    labels_csv = write_cohort(tmp_path / "c", n_slides=10, seed=4, width_px=400, height_px=300, mpp=1.0)
    with labels_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["slide_id", "patient_id", "label"]
    assert [r["slide_id"] for r in rows] == [f"synth-4-{k:03d}" for k in range(10)]
    counts = Counter(r["label"] for r in rows)
    assert set(counts) == set(LABELS)
    assert max(counts.values()) - min(counts.values()) <= 1
    per_patient: dict[str, set[str]] = {}
    for r in rows:
        per_patient.setdefault(r["patient_id"], set()).add(r["label"])
    assert any(Counter(r["patient_id"] for r in rows)[p] == 2 for p in per_patient)
    assert all(len(v) == 1 for v in per_patient.values())
    for r in rows:
        assert (tmp_path / "c" / f"{r['slide_id']}.tiff").is_file()
        assert load_truth(tmp_path / "c" / f"{r['slide_id']}.tiff").label == r["label"]


def test_import_does_not_pull_torch() -> None:
    code = "import sys, liposcope.synth; sys.exit(int('torch' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.slow
def test_writer_memory_is_flat(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import resource, sys
        from liposcope.synth import write_slide
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        write_slide({str(tmp_path / "big.tiff")!r}, label="PLPS", seed=1, width_px=12000, height_px=12000)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    grew_mb = int(out.stdout.strip().splitlines()[-1])
    assert grew_mb < 12000 * 12000 * 3 / 2**20 / 4  # well under the 412 MB raw image
