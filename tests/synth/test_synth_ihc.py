"""Tests for liposcope.synth.ihc: synthetic H-DAB slides with nuclei ground truth."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from liposcope.synth import (
    IHCTruth,
    he_style,
    ihc_sidecar_paths,
    load_ihc_truth,
    make_ihc_slide,
    random_ihc_style,
    write_ihc_slide,
)
from liposcope.synth.ihc import GRADE_DAB
from liposcope.synth.ihc_styles import STYLES
from liposcope.wsi import Slide
from liposcope.wsi.stain import DAB, HEMATOXYLIN_HDAB, deconvolve, optical_density, stain_matrix

POSITIVE = 0.3


@pytest.fixture(scope="module", params=[(0.5, 1536, 1024), (0.25, 2048, 1536)], ids=["mpp0.5", "mpp0.25"])
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, IHCTruth]:
    mpp, width, height = request.param
    path = tmp_path_factory.mktemp("ihc") / "ki67-case.tiff"
    truth = write_ihc_slide(path, seed=11, width_px=width, height_px=height, mpp=mpp, positive_fraction=POSITIVE)
    return path, truth


def _radii_um(truth: IHCTruth) -> np.ndarray:
    return np.sqrt(truth.area_um2 / np.pi)


def test_slide_opens_and_truth_round_trips(written: tuple[Path, IHCTruth]) -> None:
    path, truth = written
    with Slide(path) as slide:
        assert slide.mpp == pytest.approx(truth.mpp)
        assert slide.dimensions == (truth.width, truth.height)
    loaded = load_ihc_truth(path)
    assert (loaded.slide_id, loaded.seed, loaded.mpp, loaded.mask_downsample) == ("ki67-case", 11, truth.mpp, 16)
    assert (loaded.width, loaded.height) == (truth.width, truth.height)
    for name in ("xy", "area_um2", "grade", "dab_od", "tissue_mask"):
        assert np.array_equal(getattr(loaded, name), getattr(truth, name)), name
    assert loaded.grade.dtype == np.int8
    assert [s.name for s in loaded.style.stains] == ["H", "DAB"]
    for got, want in zip(loaded.style.stains, truth.style.stains, strict=True):
        assert got.vector == pytest.approx(want.vector)
        assert got.scale == pytest.approx(want.scale)
    assert loaded.style.background == pytest.approx(truth.style.background)
    json_path, csv_path, png_path = ihc_sidecar_paths(path)
    meta = json.loads(json_path.read_text())
    assert meta["n_nuclei"] == len(truth.xy) > 100
    assert meta["labelling_index_pct"] == pytest.approx(truth.labelling_index_pct)
    assert meta["h_score"] == pytest.approx(truth.h_score)
    assert csv_path.read_text().splitlines()[0] == "x,y,area_um2,grade,dab_od"
    expected = {p.name for p in (path, json_path, csv_path, png_path)}
    assert {p.name for p in path.parent.iterdir()} == expected  # no temporaries left


def test_positive_share_grades_and_scores(written: tuple[Path, IHCTruth]) -> None:
    _, truth = written
    n = len(truth.grade)
    counts = np.bincount(truth.grade, minlength=4)
    assert len(counts) == 4
    assert abs(counts[1:].sum() - POSITIVE * n) <= 0.5
    assert counts.min() >= 5  # every grade present
    assert truth.labelling_index_pct == pytest.approx(100.0 * counts[1:].sum() / n)
    assert truth.h_score == pytest.approx(100.0 * (counts[1] + 2 * counts[2] + 3 * counts[3]) / n)
    assert sum(truth.percent_per_grade) == pytest.approx(100.0)
    for g, (lo, hi) in enumerate(GRADE_DAB):
        dab = truth.dab_od[truth.grade == g]
        assert dab.min() >= lo - 1 / 255, g
        assert dab.max() <= hi + 1 / 255, g


@pytest.mark.parametrize("fraction", [0.0, 0.55, 1.0])
def test_positive_fraction_is_exact(fraction: float) -> None:
    nuclei = make_ihc_slide(seed=4, width_px=1024, height_px=768, mpp=0.5, positive_fraction=fraction).nuclei
    assert len(nuclei) > 50
    assert abs(int((nuclei.grade > 0).sum()) - fraction * len(nuclei)) <= 0.5


def test_nuclei_in_tissue_sized_touching_and_separable(written: tuple[Path, IHCTruth]) -> None:
    _, truth = written
    ds = truth.mask_downsample
    col, row = (truth.xy // ds).astype(int).T
    assert truth.tissue_mask[row, col].all()
    diameters = 2.0 * _radii_um(truth)
    assert diameters.min() >= 5.8
    assert diameters.max() <= 10.2
    um = truth.xy * truth.mpp
    pairs = cKDTree(um).query_pairs(12.0, output_type="ndarray")
    dist = np.hypot(*(um[pairs[:, 0]] - um[pairs[:, 1]]).T)
    radii = _radii_um(truth)
    ratio = dist / (radii[pairs[:, 0]] + radii[pairs[:, 1]])
    assert ratio.min() >= 0.75  # a human can still tell them apart
    assert (ratio < 1.0).sum() >= 0.05 * len(um)  # touching pairs and clusters
    # dense and sparse regions: nuclei per 48 µm tissue box vary several-fold
    box = round(48 / truth.mpp)
    k = box // ds
    h, w = truth.height // box, truth.width // box
    in_tissue = truth.tissue_mask[: h * k, : w * k].reshape(h, k, w, k).all(axis=(1, 3))
    cells = (truth.xy // box).astype(int)
    ok = (cells[:, 0] < w) & (cells[:, 1] < h)
    per_box = np.zeros((h, w))
    np.add.at(per_box, (cells[ok, 1], cells[ok, 0]), 1)
    lo, hi = np.percentile(per_box[in_tissue], [10, 90])
    assert hi >= 2.5 * lo


def test_measured_dab_follows_grades(written: tuple[Path, IHCTruth]) -> None:
    path, truth = written
    with Slide(path) as slide:
        rgb = slide.read_region((0, 0), 0, (truth.width, truth.height))
    matrix = stain_matrix(truth.style.stain("H").vector, truth.style.stain("DAB").vector)
    conc = deconvolve(optical_density(rgb, truth.style.background), matrix)
    radius_px = 0.6 * _radii_um(truth) / truth.mpp
    measured = np.empty(len(truth.xy))
    for n, ((x, y), r) in enumerate(zip(truth.xy, radius_px, strict=True)):
        x0, y0 = int(x - r), int(y - r)
        window = conc[y0 : int(y + r) + 1, x0 : int(x + r) + 1]
        yy, xx = np.mgrid[: window.shape[0], : window.shape[1]]
        disc = np.hypot(xx + x0 + 0.5 - x, yy + y0 + 0.5 - y) <= r
        measured[n] = window[disc, 1].mean()
        assert window[disc, 0].mean() > 0.15  # haematoxylin counterstain in every nucleus
    medians = [float(np.median(measured[truth.grade == g])) for g in range(4)]
    assert np.all(np.diff(medians) > 0.15), medians  # strong > moderate > weak > negative
    assert np.median(np.abs(measured - truth.dab_od)) < 0.03
    binned = np.digitize(measured, [0.2, 0.4, 0.6])
    assert (binned == truth.grade).mean() >= 0.98


def test_deterministic_and_region_consistent(tmp_path: Path) -> None:
    pixels = []
    for name in ("a", "b"):
        write_ihc_slide(tmp_path / f"{name}.tiff", seed=3, width_px=768, height_px=512, mpp=0.5)
        with Slide(tmp_path / f"{name}.tiff") as slide:
            pixels.append(slide.read_region((0, 0), 0, (768, 512)))
    assert np.array_equal(pixels[0], pixels[1])
    model = make_ihc_slide(seed=3, width_px=768, height_px=512, mpp=0.5)
    whole = model.render(100, 50, 500, 400)
    halves = np.concatenate([model.render(100, 50, 230, 400), model.render(330, 50, 270, 400)], axis=1)
    assert np.array_equal(whole, halves)
    assert np.abs(pixels[0][50:450, 100:600].astype(float) - whole).mean() < 4.0  # only JPEG error
    other = make_ihc_slide(seed=4, width_px=768, height_px=512, mpp=0.5).render(100, 50, 500, 400)
    assert not np.array_equal(whole, other)


def test_random_ihc_style() -> None:
    ref = random_ihc_style(np.random.default_rng(0), variation=0.0)
    assert ref.stain("H").vector == pytest.approx(HEMATOXYLIN_HDAB / np.linalg.norm(HEMATOXYLIN_HDAB))
    assert ref.stain("DAB").vector == pytest.approx(DAB / np.linalg.norm(DAB))
    assert ref.stain("H").scale == ref.stain("DAB").scale == 1.0
    styles = [random_ihc_style(np.random.default_rng(s)) for s in range(20)]
    for style in styles:
        assert style.stain("DAB").scale == 1.0
        assert 0.5 < style.stain("H").scale < 2.0
        for name, reference in (("H", ref.stain("H").vector), ("DAB", ref.stain("DAB").vector)):
            assert 0.97 < float(np.dot(style.stain(name).vector, reference)) < 1.0
    assert len({s.background for s in styles}) == len(styles)


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive_fraction"):
        make_ihc_slide(seed=1, width_px=256, height_px=256, positive_fraction=1.5)
    with pytest.raises(ValueError, match="DAB"):
        make_ihc_slide(seed=1, width_px=256, height_px=256, style=he_style())
    with pytest.raises(ValueError, match="sidecars"):
        load_ihc_truth(tmp_path / "missing.tiff")


def test_named_and_random_looks_draw_what_they_say(tmp_path: Path) -> None:
    """Each named style renders, records its look, and keeps tumour nuclei at least 4.5 µm wide; a random look
    comes from the seed and stays inside the span of the named styles."""
    sizes = {}
    for name in STYLES:
        path = tmp_path / f"{name}.tiff"
        truth = write_ihc_slide(path, seed=21, width_px=768, height_px=768, mpp=0.5, look=name)
        meta = json.loads(ihc_sidecar_paths(path)[0].read_text())
        assert meta["look"]["chromatin"] == STYLES[name].chromatin
        sizes[name] = float(np.median(truth.area_um2))
        model = make_ihc_slide(seed=21, width_px=768, height_px=768, mpp=0.5, look=name)
        assert (2 * model.nuclei.ry >= 4.5 - 1e-9).all()
    assert sizes["large-vesicular"] > 2 * sizes["small-round"]
    a, b = (make_ihc_slide(seed=s, width_px=256, height_px=256, look="random").look for s in (3, 3))
    assert a == b
    looks = [make_ihc_slide(seed=s, width_px=256, height_px=256, look="random").look for s in range(8)]
    assert len({look.chromatin for look in looks}) > 1
    assert all(4.9 <= look.diameter_um[0] < look.diameter_um[1] <= 14.1 for look in looks)
    with pytest.raises(ValueError, match="unknown IHC style"):
        make_ihc_slide(seed=1, width_px=256, height_px=256, look="watercolour")


def test_defocus_blurs_and_vesicular_centres_are_pale() -> None:
    quiet = dataclasses.replace(STYLES["reference"], noise=0.0)  # pixel noise would hide the blur
    sharp = make_ihc_slide(seed=8, width_px=1024, height_px=1024, mpp=0.5, look=quiet)
    soft = make_ihc_slide(seed=8, width_px=1024, height_px=1024, mpp=0.5, look=dataclasses.replace(quiet, defocus=1.0))
    edges = [
        np.percentile(np.abs(np.diff(s.render(0, 0, 1024, 1024).astype(float), axis=1)), 99) for s in (sharp, soft)
    ]
    assert edges[1] < 0.8 * edges[0]
    ves = make_ihc_slide(seed=8, width_px=1024, height_px=1024, mpp=0.5, look=STYLES["large-vesicular"])
    rgb = ves.render(0, 0, 1024, 1024)
    h = deconvolve(optical_density(rgb), stain_matrix(HEMATOXYLIN_HDAB, DAB))[..., 0]
    n = ves.nuclei
    big = np.flatnonzero((n.grade == 0) & (n.ry > 4.0))[:20]
    assert len(big) >= 5
    centre = h[(n.pts.y[big] / 0.5).astype(int), (n.pts.x[big] / 0.5).astype(int)]
    rim_x = ((n.pts.x[big] + 0.8 * n.ry[big] * np.cos(n.angle[big] + np.pi / 2)) / 0.5).astype(int)
    rim_y = ((n.pts.y[big] + 0.8 * n.ry[big] * np.sin(n.angle[big] + np.pi / 2)) / 0.5).astype(int)
    assert np.median(h[rim_y, rim_x]) > np.median(centre)
