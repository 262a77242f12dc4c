"""Tissue detection and tile grids against the synthetic slides' ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liposcope.errors import ConfigError, NoTissueError, SlideError
from liposcope.synth import load_truth, random_he_style, write_slide
from liposcope.wsi import Slide, TileGrid, TileReader, TileSpec, TissueMask, build_grid, detect_tissue, tiling_config
from liposcope.wsi.tissue import tissue_from_rgb

SUBTYPES = ("WDLPS", "DDLPS", "MLPS", "PLPS")


def grid_quality(slide_path: Path, spec: TileSpec) -> tuple[float, float]:
    """(share of true tissue covered by kept tiles, share of kept tiles lying on true tissue)."""
    truth = load_truth(slide_path)
    with Slide(slide_path) as slide:
        mask, _ = detect_tissue(slide)
        grid = build_grid(slide, mask, spec)
    true = TissueMask(truth.tissue_mask, truth.mpp * truth.mask_downsample, truth.mask_downsample, 0.0)
    on_tissue = float(np.mean(true.fraction_in_boxes(grid.coords_level0, grid.tile_size_level0) >= 0.5))
    covered = np.zeros_like(truth.tissue_mask)
    ds = truth.mask_downsample
    for x, y in grid.coords_level0:
        x0, y0 = round(x / ds), round(y / ds)
        side = round(grid.tile_size_level0 / ds)
        covered[y0 : y0 + side, x0 : x0 + side] = True
    coverage = float((covered & truth.tissue_mask).sum() / truth.tissue_mask.sum())
    return coverage, on_tissue


@pytest.mark.parametrize("label", SUBTYPES)
def test_grid_covers_tissue_on_every_subtype(he_slides: dict[str, Path], label: str) -> None:
    coverage, on_tissue = grid_quality(he_slides[label], TileSpec(0.5, 128, 0, 0.5))
    assert coverage >= 0.90, f"{label}: grid covers only {coverage:.1%} of the true tissue"
    assert on_tissue >= 0.95, f"{label}: only {on_tissue:.1%} of tiles lie on tissue"


@pytest.mark.parametrize("label", SUBTYPES)
def test_grid_on_unseen_seed_and_stain(tmp_path: Path, unseen_seed: int, label: str) -> None:
    rng = np.random.default_rng(unseen_seed)
    path = tmp_path / f"unseen-{label}.tiff"
    write_slide(
        path,
        label=label,
        seed=unseen_seed,
        width_px=4000,
        height_px=3200,
        mpp=0.5,
        style=random_he_style(rng, variation=1.5),
    )
    coverage, on_tissue = grid_quality(path, TileSpec(0.5, 128, 0, 0.5))
    assert coverage >= 0.90, f"seed {unseen_seed} {label}: coverage {coverage:.1%}"
    assert on_tissue >= 0.95, f"seed {unseen_seed} {label}: on tissue {on_tissue:.1%}"


@pytest.mark.realdata
def test_real_background_tile_has_no_tissue(shared_data: Path) -> None:
    import cv2

    params = tiling_config()[1]
    rgb = cv2.imread(str(shared_data / "he-tiles" / "histolab-no-tissue.png"))[..., ::-1]
    mask, _ = tissue_from_rgb(rgb, 4.0, params)
    assert mask.mean() < 0.02


@pytest.mark.realdata
def test_real_adipose_tile_is_tissue(shared_data: Path) -> None:
    """Mature fat (white adipocytes, thin septa) must not vanish."""
    import cv2

    params = tiling_config()[1]
    rgb = cv2.imread(str(shared_data / "he-tiles" / "histolab-low-nuclei-score-level0.png"))[..., ::-1]
    overview = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA)  # 0.5 µm/px tile seen at 4 µm/px
    mask, _ = tissue_from_rgb(np.pad(overview, ((32, 32), (32, 32), (0, 0)), constant_values=245), 4.0, params)
    assert mask[32:96, 32:96].mean() > 0.9
    assert mask[:16].mean() < 0.05  # the glass border stays background


def test_blank_glass_has_no_tissue(tmp_path: Path) -> None:
    from liposcope.synth import write_pyramid

    path = tmp_path / "glass.tiff"
    rng = np.random.default_rng(1)

    def glass(x0: int, y0: int, w: int, h: int) -> np.ndarray:
        return (np.array([238, 236, 242]) + rng.normal(0, 2, (h, w, 3))).clip(0, 255).astype(np.uint8)

    write_pyramid(path, glass, 2000, 1500, 0.5)
    with Slide(path) as slide, pytest.raises(NoTissueError, match=r"glass\.tiff: no tissue found"):
        detect_tissue(slide)


def test_tiles_cover_the_same_area_from_every_level(he_slides: dict[str, Path]) -> None:
    """A tile at the target mpp shows the same tissue whether read from level 0 or level 1."""
    with Slide(he_slides["DDLPS"]) as slide:
        target = 0.5 * slide.level_downsamples[1]  # level 1 exactly
        spec = TileSpec(target, 64, 0, 0.5)
        grid = build_grid(slide, detect_tissue(slide)[0], spec)
        assert grid.tile_size_level0 == round(64 * target / 0.5)
        from_0 = TileReader(slide, grid, level=0)
        from_1 = TileReader(slide, grid, level=1)
        assert from_1.level == 1
        for index in np.linspace(0, len(grid) - 1, 8).astype(int):
            a, b = from_0.read_tile(index).astype(float), from_1.read_tile(index).astype(float)
            assert a.shape == b.shape == (64, 64, 3)
            assert np.abs(a - b).mean() < 8.0
            # any shift would decorrelate the fine texture
            shifted = np.abs(a[:, 4:] - b[:, :-4]).mean()
            assert np.abs(a - b).mean() < shifted


def test_grid_geometry_and_overlap(he_slides: dict[str, Path]) -> None:
    with Slide(he_slides["MLPS"]) as slide:
        mask, _ = detect_tissue(slide)
        plain = build_grid(slide, mask, TileSpec(1.0, 100, 0, 0.0))
        overlapping = build_grid(slide, mask, TileSpec(1.0, 100, 50, 0.0))
    assert plain.tile_size_level0 == 200
    steps = np.diff(np.unique(plain.coords_level0[:, 0]))
    assert set(steps.tolist()) == {200}
    assert set(np.diff(np.unique(overlapping.coords_level0[:, 0])).tolist()) == {100}
    w, h = 4000, 3200
    assert (plain.coords_level0 >= 0).all()
    assert (plain.coords_level0[:, 0] + 200 <= w).all()
    assert (plain.coords_level0[:, 1] + 200 <= h).all()


def test_grid_round_trips_through_hdf5(he_slides: dict[str, Path], tmp_path: Path) -> None:
    with Slide(he_slides["PLPS"]) as slide:
        grid = build_grid(slide, detect_tissue(slide)[0], TileSpec(0.5, 256, 0, 0.5))
    grid.save(tmp_path / "tiles.h5")
    back = TileGrid.load(tmp_path / "tiles.h5")
    np.testing.assert_array_equal(back.coords_level0, grid.coords_level0)
    assert back.spec == grid.spec
    assert back.tile_size_level0 == 256
    with pytest.raises(SlideError, match="not a liposcope tile grid"):
        TileGrid.load(he_slides["PLPS"])


def test_tile_larger_than_slide(he_slides: dict[str, Path]) -> None:
    with Slide(he_slides["PLPS"]) as slide, pytest.raises(SlideError, match="smaller --tile-size"):
        build_grid(slide, detect_tissue(slide)[0], TileSpec(2.0, 1024, 0, 0.5))


def test_config_rejects_typos_and_bad_values(tmp_path: Path) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text("tile_szie: 512\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml: unknown key 'tile_szie' \(did you mean 'tile_px'\?\)"):
        tiling_config(user)
    user.write_text("tissue:\n  min_od: high\n")
    with pytest.raises(ConfigError, match="min_od"):
        tiling_config(user)
    with pytest.raises(ConfigError, match="overlap"):
        TileSpec(0.5, 256, 256, 0.5)
    assert tiling_config(target_mpp=0.25, tile_px=None)[0] == TileSpec(0.25, 256, 0, 0.5)
