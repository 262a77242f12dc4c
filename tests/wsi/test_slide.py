"""Slide access on real files and synthetic pyramids: metadata, mpp, reads at a physical resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liposcope.errors import MissingMPPError, SlideError
from liposcope.wsi import Slide, open_slide, slide_id_from_path
from liposcope.wsi import slide as slide_module


@pytest.mark.realdata
def test_real_aperio_slide_metadata(shared_data: Path) -> None:
    with open_slide(shared_data / "slides" / "CMU-1-Small-Region.svs") as slide:
        assert slide.vendor == "aperio"
        assert slide.dimensions == (2220, 2967)
        assert slide.level_count == 1
        assert slide.mpp == pytest.approx(0.499)
        assert slide.mpp_source == "openslide"
        assert slide.objective_power == 20
        assert slide.slide_id == "CMU-1-Small-Region"
        assert slide.describe()["slide_mpp"] == pytest.approx(0.499)


@pytest.mark.realdata
def test_implausible_tiff_mpp_is_refused_until_user_gives_one(shared_data: Path) -> None:
    path = shared_data / "openslide-fixtures" / "boxes.tiff"
    slide = Slide(path)
    assert slide.level_count == 4
    with pytest.raises(MissingMPPError, match=r"boxes\.tiff: .*352\.778 .*--slide-mpp"):
        _ = slide.mpp
    assert Slide(path, mpp=0.5).mpp == 0.5
    assert Slide(path, mpp=0.5).mpp_source == "user"


@pytest.mark.realdata
def test_plain_image_needs_user_mpp(shared_data: Path) -> None:
    path = shared_data / "he-tiles" / "histolab-tcga-lung-rgb.png"
    with pytest.raises(MissingMPPError, match="--slide-mpp"):
        _ = Slide(path).mpp
    slide = Slide(path, mpp=0.25)
    assert slide.dimensions == (512, 512)
    region = slide.read_region_at_mpp((0, 0), (128, 128), 0.5)
    assert region.shape == (128, 128, 3)
    assert region.dtype == np.uint8


def test_tiff_resolution_tags_give_mpp(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "plain.tif"
    tifffile.imwrite(
        path, np.full((64, 64, 3), 200, np.uint8), resolution=(1e4 / 0.8, 1e4 / 0.8), resolutionunit="CENTIMETER"
    )
    slide = Slide(path)
    assert slide.mpp == pytest.approx(0.8, rel=1e-3)
    assert slide.mpp_source in ("openslide", "tiff")


def test_synthetic_pyramid_reads_at_target_mpp(he_slides: dict[str, Path]) -> None:
    with Slide(he_slides["WDLPS"]) as slide:
        assert slide.mpp == pytest.approx(0.5)
        assert slide.level_count >= 2
        ds1 = slide.level_downsamples[1]
        # the coarsest level not coarser than the target
        assert slide.best_level_for_mpp(0.5) == 0
        assert slide.best_level_for_mpp(0.5 * ds1) == 1
        assert slide.best_level_for_mpp(0.5 * ds1 * 0.99) == 0
        assert slide.best_level_for_mpp(0.1) == 0
        tile = slide.read_region_at_mpp((100, 200), (224, 160), 1.0)
        assert tile.shape == (160, 224, 3)


def test_slide_id_strips_only_the_extension() -> None:
    assert slide_id_from_path("/x/y/case-01.svs") == "case-01"
    assert slide_id_from_path("a.b.tiff") == "a.b"


@pytest.mark.parametrize(
    ("content", "match"),
    [(None, "no such file"), (b"", "file is empty"), (b"plain text, not an image", "not a slide or image")],
)
def test_bad_files_raise_clear_errors(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "bad.svs"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SlideError, match=match) as info:
        Slide(path)
    assert str(path) in str(info.value)


@pytest.mark.realdata
def test_overview_of_a_pyramid_less_slide_reads_in_bounded_pieces(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CMU-1-Small-Region has one level: its overview is read in pieces no larger than the budget."""

    path = shared_data / "slides" / "CMU-1-Small-Region.svs"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with Slide(path) as slide:
        whole = slide.read_overview(4.0)
        monkeypatch.setattr(slide_module, "READ_BUDGET_PX", 1 << 16)
        sizes: list[int] = []
        real = slide.read_region

        def spy(xy: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
            sizes.append(size[0] * size[1])
            return real(xy, level, size)

        monkeypatch.setattr(slide, "read_region", spy)
        pieces = slide.read_overview(4.0)
    assert slide.level_count == 1
    assert len(sizes) > 4
    assert max(sizes) <= (1 << 16) * 1.1
    assert pieces.shape == whole.shape
    assert np.abs(pieces.astype(np.int16) - whole).mean() < 2.0
