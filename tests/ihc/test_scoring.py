"""IHC scoring against synthetic H-DAB slides with known nuclei, and the pieces it is built from."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from liposcope.errors import ConfigError
from liposcope.ihc import grade, load_marker, score_slide
from liposcope.ihc.marker import Intensity
from liposcope.ihc.nuclei import detect_nuclei, make_deconvolver
from liposcope.ihc.score import find_hotspot
from liposcope.synth import load_ihc_truth, write_ihc_slide
from liposcope.wsi.hotspot import square_windows
from liposcope.wsi.points import f1_score, match_points
from liposcope.wsi.slide import Slide


def check_against_truth(path: Path, marker: str = "ki67", tolerance: tuple[float, float, float] = (2, 15, 0.9)) -> None:
    """Labelling index within ``tolerance[0]`` pp, H-score within ``tolerance[1]``, F1 (4 µm) at least ``[2]``."""
    truth = load_ihc_truth(path)
    result = score_slide(path, load_marker(marker))
    f1 = f1_score(*match_points(result.nuclei.xy, truth.xy, 4.0 / truth.mpp))
    li, h = result.scores["labelling_index_pct"], result.scores["h_score"]
    report = f"{path.name}: F1 {f1:.3f}, LI {li} vs {truth.labelling_index_pct:.1f}, H {h} vs {truth.h_score:.0f}"
    assert f1 >= tolerance[2], report
    assert abs(float(li) - truth.labelling_index_pct) <= tolerance[0], report  # type: ignore[arg-type]
    assert abs(float(h) - truth.h_score) <= tolerance[1], report  # type: ignore[arg-type]


@pytest.mark.parametrize(("fraction", "mpp", "seed"), [(0.02, 0.5, 901), (0.6, 0.25, 902)])
def test_extreme_positive_fractions(tmp_path: Path, fraction: float, mpp: float, seed: int) -> None:
    path = tmp_path / f"ihc-{seed}.tiff"
    write_ihc_slide(path, seed=seed, width_px=2048, height_px=2048, mpp=mpp, positive_fraction=fraction, variation=1.5)
    check_against_truth(path)


@pytest.mark.parametrize("mpp", [0.25, 0.5])
def test_unseen_seed_and_stain(tmp_path: Path, unseen_seed: int, mpp: float) -> None:
    """Fresh seed and stain colours each run (reference drawing style), against the issue-14 acceptance (LI ±3 pp,
    H-score ±20, F1 ≥ 0.85). The other styles and domain-randomised looks are measured in bench/README.md (two of
    the seven named styles, large-vesicular and fibrous, do not meet it yet)."""
    fraction = float(np.random.default_rng(unseen_seed).uniform(0.02, 0.6))
    path = tmp_path / f"ihc-unseen-{unseen_seed}.tiff"
    write_ihc_slide(path, seed=unseen_seed, width_px=2048, height_px=2048, mpp=mpp, positive_fraction=fraction)
    check_against_truth(path, "mdm2" if mpp == 0.5 else "ki67", (3, 20, 0.85))


def _hdab(h_od: np.ndarray) -> np.ndarray:
    """RGB of a haematoxylin-only optical density image (reference vector, white glass)."""
    vector = np.array([0.650, 0.704, 0.286]) / np.linalg.norm([0.650, 0.704, 0.286])
    return np.clip(255 * 10 ** (-h_od[..., None] * vector), 0, 255).astype(np.uint8)


def test_faint_nuclei_on_smooth_stroma_pass_the_image_floor() -> None:
    """The contrast floor follows the image's own texture (``texture_floor``); on a smooth stroma it must not
    rise above nuclei only 0.06 OD above it (DeepLIIF 799_2 has such nuclei)."""
    marker = load_marker("ki67")
    deconvolver = make_deconvolver(np.full((8, 8, 3), 255, np.uint8), np.ones((8, 8), bool), marker.stains)
    smooth = np.full((512, 512), 0.06, np.float32)
    centres = [(x, y) for x in range(64, 512, 96) for y in range(64, 512, 96)]
    for x, y in centres:
        cv2.circle(smooth, (x, y), 8, 0.12, -1)  # 8 µm nuclei at 0.5 µm/px
    found = detect_nuclei(_hdab(cv2.GaussianBlur(smooth, (0, 0), 1.0)), 0.5, deconvolver, marker.nuclei)
    assert match_points(found.xy, np.array(centres) + 0.5, 8.0)[0] >= 0.9 * len(centres)


def test_an_elongated_textured_nucleus_counts_once() -> None:
    """A large oval nucleus with a pale (vesicular) centre seeds twice; its pieces are merged into one."""
    marker = load_marker("mdm2")
    deconvolver = make_deconvolver(np.full((8, 8, 3), 255, np.uint8), np.ones((8, 8), bool), marker.stains)
    od = np.full((256, 256), 0.03, np.float32)
    centres = [(64, 64), (64, 192), (192, 64), (192, 192)]
    for k, (x, y) in enumerate(centres):
        cv2.ellipse(od, (x, y), (16, 8), 45 * k, 0, 360, 0.5, -1)  # 16 x 8 µm at 0.5 µm/px
        cv2.ellipse(od, (x, y), (10, 4), 45 * k, 0, 360, 0.25, -1)  # pale centre
    found = detect_nuclei(_hdab(cv2.GaussianBlur(od, (0, 0), 1.0)), 0.5, deconvolver, marker.nuclei)
    assert len(found) == len(centres), found.xy.round()


def test_tile_borders_count_each_nucleus_once(tmp_path: Path) -> None:
    path = tmp_path / "ihc-borders.tiff"
    write_ihc_slide(path, seed=903, width_px=1536, height_px=1536, mpp=0.5, positive_fraction=0.3)
    marker = load_marker("ki67")
    big = score_slide(path, marker)
    small = score_slide(path, dataclasses.replace(marker, tile_px=128))
    assert abs(len(small.nuclei) - len(big.nuclei)) <= 0.01 * len(big.nuclei)
    distances = np.linalg.norm(small.nuclei.xy[:, None] - small.nuclei.xy[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 1.0, "a nucleus was counted by two tiles"


def test_region_limits_the_count(tmp_path: Path) -> None:
    path = tmp_path / "ihc-region.tiff"
    truth = write_ihc_slide(path, seed=904, width_px=1536, height_px=1536, mpp=0.5, positive_fraction=0.3)
    region = (256.0, 256.0, 768.0, 512.0)
    result = score_slide(path, load_marker("ki67"), region=region)
    x, y = result.nuclei.xy.T
    assert (x >= 256).all()
    assert (x < 1024).all()
    assert (y >= 256).all()
    assert (y < 768).all()
    inside = (truth.xy[:, 0] >= 256) & (truth.xy[:, 0] < 1024) & (truth.xy[:, 1] >= 256) & (truth.xy[:, 1] < 768)
    assert abs(len(result.nuclei) - inside.sum()) <= 0.1 * inside.sum()
    with pytest.raises(ConfigError, match="not inside the slide"):
        score_slide(path, load_marker("ki67"), region=(1000.0, 0.0, 1000.0, 10.0))


def test_grades_follow_thresholds() -> None:
    dab = np.array([0.0, 0.199, 0.2, 0.39, 0.4, 0.59, 0.6, 2.0])
    assert grade(dab, Intensity(0.2, 0.4, 0.6)).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_square_windows_match_brute_force() -> None:
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 1000, (400, 2))
    windows = square_windows(xy, np.ones((400, 1)), (0, 0, 1000, 1000), side=200)
    for i in (0, 7, len(windows.y) - 1):
        for j in (0, 5, len(windows.x) - 1):
            x, y, w, h = windows.box(i, j)
            inside = (xy[:, 0] >= x) & (xy[:, 0] < x + w) & (xy[:, 1] >= y) & (xy[:, 1] < y + h)
            assert windows.sums[i, j, 0] == inside.sum()


def test_hotspot_needs_enough_nuclei() -> None:
    rng = np.random.default_rng(6)
    dense = rng.uniform(0, 400, (600, 2))  # 600 nuclei, 10 % positive
    sparse = rng.uniform(1200, 1600, (50, 2))  # 50 nuclei, all positive: too few to be a hotspot
    xy = np.vstack([dense, sparse])
    positive = np.r_[np.arange(600) < 60, np.ones(50, bool)]
    hotspot = load_marker("ki67").hotspot  # 0.2376 mm²: 975 px side at 0.5 µm/px
    found = find_hotspot(xy, positive, (0, 0, 2000, 2000), 0.5, hotspot)
    assert found is not None
    assert found.nuclei >= 500
    assert found.labelling_index_pct == pytest.approx(100 * found.positive / found.nuclei)
    assert found.labelling_index_pct < 20
    assert find_hotspot(sparse, np.ones(50, bool), (0, 0, 2000, 2000), 0.5, hotspot) is None


def test_marker_files(tmp_path: Path) -> None:
    assert load_marker("mdm2").intensity == load_marker("ki67").intensity  # shared ihc.yaml defaults
    custom = tmp_path / "cdk4.yaml"
    custom.write_text("name: CDK4\nstatus:\n  cutoff: 5\n")
    assert load_marker(custom).status.cutoff == 5.0
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: X\nintensty:\n  weak: 0.1\n")
    with pytest.raises(ConfigError, match="did you mean 'intensity'"):
        load_marker(typo)
    bad = tmp_path / "bad.yaml"
    bad.write_text("compartment: membrane\nintensity:\n  weak: 0.5\n")
    with pytest.raises(ConfigError, match=r"compartment 'membrane'.*weak < moderate"):
        load_marker(bad)
    with pytest.raises(ConfigError, match="unknown marker"):
        load_marker("ki-67")


def test_nuclei_cut_by_the_image_edge_are_counted(tmp_path: Path) -> None:
    """A nucleus halved by the edge of a plain image keeps its visible half (no width limit on a cut nucleus)."""
    slide = tmp_path / "ihc-edge.tiff"
    write_ihc_slide(slide, seed=911, width_px=1024, height_px=2048, mpp=0.5, positive_fraction=0.3)
    truth = load_ihc_truth(slide)
    with Slide(slide) as whole:
        rgb = whole.read_region_at_mpp((0, 0), (1024, 2048), 0.5)
    x0 = 500
    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), np.ascontiguousarray(rgb[:, x0:, ::-1]))
    result = score_slide(crop, load_marker("ki67"), slide_mpp=0.5)
    xy = truth.xy - [x0, 0]
    halved = xy[(xy[:, 0] > -2) & (xy[:, 0] < 3)]  # centres within 1 µm outside to 1.5 µm inside the edge
    nearest = np.linalg.norm(halved[:, None] - result.nuclei.xy[None], axis=2).min(axis=1) * truth.mpp
    assert len(halved) >= 8
    assert np.mean(nearest <= 4.0) >= 0.75, nearest.round(1)
