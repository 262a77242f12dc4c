"""The direct JPEG decode path gives openslide's pixels, and falls back to openslide where it must."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import openslide
import pytest
import tifffile

from liposcope.errors import SlideError
from liposcope.wsi import Slide
from liposcope.wsi.jpegtiff import JpegTiff

MPP = 0.25
# Level 0 is 2000 x 1440: partial edge tiles; levels 1 and 2 are exact 4x and 16x downsamples.
SIZE = (2000, 1440)
# (x, y, w, h) in level pixels: inside one tile, across tile borders, over the image edge, outside it.
REGIONS = [(10, 20, 50, 40), (200, 230, 300, 100), (1900, 1380, 200, 100), (-30, -20, 90, 70), (3000, 10, 20, 20)]


def _openslide_rgb(osr: openslide.OpenSlide, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
    ds = round(osr.level_downsamples[level])
    rgba = np.asarray(osr.read_region((x * ds, y * ds), level, (w, h)))
    return np.where(rgba[..., 3:] == 0, 255, rgba[..., :3]).astype(np.uint8)


def _assert_same(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    assert ours.dtype == np.uint8
    diff = np.abs(ours.astype(np.int16) - ref)
    assert diff.mean() <= 0.5, f"mean abs difference {diff.mean():.3f}"  # identical with libjpeg-turbo on both


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generic tiled JPEG TIFF pyramid (3 levels, 4x apart) written with tifffile."""
    rng = np.random.default_rng(7)
    coarse = rng.integers(0, 256, (SIZE[1] // 40, SIZE[0] // 40, 3), dtype=np.uint8)
    image = cv2.resize(coarse, SIZE, interpolation=cv2.INTER_CUBIC)
    path = tmp_path_factory.mktemp("jpegtiff") / "pyramid.tiff"
    with tifffile.TiffWriter(path) as tif:
        for k in range(3):
            level = cv2.resize(image, (SIZE[0] // 4**k, SIZE[1] // 4**k), interpolation=cv2.INTER_AREA)
            tif.write(
                level,
                tile=(256, 256),
                compression="jpeg",
                compressionargs={"level": 90},
                photometric="rgb",
                resolution=(1e4 / (MPP * 4**k), 1e4 / (MPP * 4**k)),
                resolutionunit="CENTIMETER",
                subfiletype=0 if k == 0 else 1,
                metadata=None,
            )
    return path


@pytest.mark.parametrize("level", [0, 1, 2])
@pytest.mark.parametrize("region", REGIONS)
def test_synthetic_pyramid_matches_openslide(pyramid: Path, level: int, region: tuple[int, int, int, int]) -> None:
    with openslide.OpenSlide(str(pyramid)) as osr:
        assert osr.properties[openslide.PROPERTY_NAME_VENDOR] == "generic-tiff"
        fast = JpegTiff.open(pyramid, osr)
        assert fast is not None
        assert all(fast.serves(k) for k in range(osr.level_count))
        _assert_same(fast.read_region(level, *region), _openslide_rgb(osr, level, *region))
        fast.close()


def test_slide_uses_fast_path_with_same_pixels(pyramid: Path) -> None:
    with Slide(pyramid) as slide, openslide.OpenSlide(str(pyramid)) as osr:
        assert slide._fast is not None
        for level in range(slide.level_count):
            x, y, w, h = 150, 120, 300, 260
            ds = round(slide.level_downsamples[level])
            _assert_same(slide.read_region((x * ds, y * ds), level, (w, h)), _openslide_rgb(osr, level, x, y, w, h))


def test_missing_tile_is_white(pyramid: Path) -> None:
    with openslide.OpenSlide(str(pyramid)) as osr:
        fast = JpegTiff.open(pyramid, osr)
    assert fast is not None
    fast._levels[0].counts[0] = 0  # as if the file had no bytes for tile 0
    region = fast.read_region(0, 200, 0, 100, 10)
    assert (region[:, :56] == 255).all()
    assert not (region[:, 56:] == 255).all()
    fast.close()


def test_corrupt_tile_raises_slide_error(pyramid: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.tiff"
    shutil.copy(pyramid, broken)
    with openslide.OpenSlide(str(broken)) as osr:
        fast = JpegTiff.open(broken, osr)
    assert fast is not None
    with tifffile.TiffFile(broken) as tif:
        offset, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    with open(broken, "r+b") as f:
        f.seek(offset)
        f.write(b"\0" * count)
    with pytest.raises(SlideError, match=r"corrupt JPEG data in tile \(0, 0\) of level 0; re-copy or re-export"):
        fast.read_region(0, 0, 0, 64, 64)
    fast.close()


def _flip(path: Path, page: int, index: int) -> None:
    """Flip a few bytes in the middle of one tile's entropy-coded data (the tile stays a JPEG)."""
    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages[page].dataoffsets[index], tif.pages[page].databytecounts[index]
    with open(path, "r+b") as f:
        for k in range(5):
            f.seek(offset + count // 2 + 7 * k)
            byte = f.read(1)[0]
            f.seek(offset + count // 2 + 7 * k)
            f.write(bytes([byte ^ 0x5A]))


def test_flipped_bytes_are_read_errors_where_openslide_says_so(pyramid: Path, tmp_path: Path) -> None:
    """Decoder warnings are errors of that tile, on the same tiles as openslide (not grey or striped pixels)."""
    broken = tmp_path / "flipped.tiff"
    shutil.copy(pyramid, broken)
    with openslide.OpenSlide(str(pyramid)) as osr:
        fast = JpegTiff.open(pyramid, osr)
    assert fast is not None
    lv = fast._levels[0]
    fast.close()
    for index in range(1, lv.across * 4, 3):
        _flip(broken, 0, index)
    fast = JpegTiff(broken, {0: lv})
    errors = 0
    with openslide.OpenSlide(str(broken)) as osr:
        for index in range(len(lv.counts)):
            ty, tx = divmod(index, lv.across)
            box = (tx * lv.tile_w, ty * lv.tile_h, min(lv.tile_w, lv.width - tx * lv.tile_w), 16)
            try:
                _openslide_rgb(osr, 0, *box)
                openslide_failed = False
            except openslide.OpenSlideError:
                openslide_failed = True
                osr = openslide.OpenSlide(str(broken))  # openslide errors are sticky
            message = ""
            try:
                fast.read_region(0, *box)
            except SlideError as exc:
                message = str(exc)
            failed = bool(message)
            assert not failed or f"corrupt JPEG data in tile ({tx}, {ty}) of level 0; re-copy or re-export" in message
            assert failed == openslide_failed, f"tile {index}: ours {failed}, openslide {openslide_failed}"
            errors += failed
    assert errors >= 3
    fast.close()


def test_open_checks_more_than_one_tile(pyramid: Path, tmp_path: Path) -> None:
    """A corrupt last tile (the middle one is fine) is caught when opening: openslide serves the slide."""
    broken = tmp_path / "last.tiff"
    shutil.copy(pyramid, broken)
    with tifffile.TiffFile(broken) as tif:
        last = len(tif.pages[0].dataoffsets) - 1
    _flip(broken, 0, last)
    with openslide.OpenSlide(str(broken)) as osr:
        assert JpegTiff.open(broken, osr) is None


@pytest.mark.realdata
def test_aperio_svs_matches_openslide(shared_data: Path) -> None:
    path = shared_data / "slides" / "CMU-1-Small-Region.svs"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with openslide.OpenSlide(str(path)) as osr:
        fast = JpegTiff.open(path, osr)
        assert fast is not None
        assert fast.serves(0)
        width, height = osr.dimensions
        for region in [(0, 0, 240, 240), (100, 200, 500, 300), (width - 150, height - 100, 300, 200)]:
            _assert_same(fast.read_region(0, *region), _openslide_rgb(osr, 0, *region))
        fast.close()


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["boxes.tiff", "boxes.png"])
def test_not_jpeg_tiled_gives_none(shared_data: Path, name: str) -> None:
    path = shared_data / "openslide-fixtures" / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with Slide(path) as slide:
        assert slide._fast is None
        assert JpegTiff.open(path, slide._osr) is None
        assert slide.read_region((0, 0), 0, (16, 16)).shape == (16, 16, 3)


@pytest.mark.realdata
def test_unreadable_svs_is_a_slide_error(shared_data: Path) -> None:
    path = shared_data / "openslide-fixtures" / "unreadable.svs"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with pytest.raises(SlideError, match="pixel data cannot be read"), Slide(path, mpp=0.5) as slide:
        slide.read_region((0, 0), 0, (16, 16))
