"""Slide access: an openslide wrapper that knows its physical resolution.

``Slide`` only reads. Tissue detection, tile grids and features are free functions taking a ``Slide``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import openslide
import tifffile
from PIL import Image, UnidentifiedImageError

from liposcope.errors import MissingMPPError, SlideError, where
from liposcope.wsi.jpegtiff import JpegTiff
from liposcope.wsi.tiffcheck import truncation

log = logging.getLogger(__name__)

#: Level-0 µm/px outside this range is not a microscope scan (e.g. a 72-dpi TIFF tag) and is ignored.
PLAUSIBLE_MPP = (0.05, 20.0)
#: What openslide (and PIL, for plain images) raise on undecodable pixels.
READ_ERRORS = (openslide.OpenSlideError, OSError)
#: Most pixels a read may decode at once (level pixels): overviews of pyramid-less slides go in pieces this big.
READ_BUDGET_PX = 1 << 25
#: Most pixels of a slide's coarsest level: an overview of more would take hours; such files are refused.
MAX_COARSEST_PX = 1 << 31
PYRAMID_HINT = (
    "convert it to a tiled pyramidal TIFF, e.g. vips tiffsave IN OUT.tiff --tile --pyramid --compression jpeg"
)
FORMATS_HINT = (
    "use a format openslide reads (.svs, .ndpi, .mrxs, .scn, .bif, DICOM, tiled TIFF) or a PNG/JPEG/TIFF image"
)


@dataclass(frozen=True)
class MPP:
    """Level-0 microns per pixel and where the value came from (``openslide``, ``tiff`` or ``user``)."""

    value: float
    source: str


def slide_id_from_path(path: str | Path) -> str:
    """The slide's id: its file name without the extension.

    Example:
        >>> slide_id_from_path("/data/case 12.svs")
        'case 12'
    """
    return Path(path).stem


class Slide:
    """A whole-slide image opened with openslide, with mpp-aware reads.

    Args:
        path: slide file (any openslide format, or a plain PNG/JPEG/TIFF image).
        mpp: level-0 µm/px given by the user (``--slide-mpp``); it wins over the file's metadata.

    Raises:
        SlideError: the file is missing, empty, not a slide or cannot be opened.

    Example:
        >>> with Slide("case.svs") as s:  # doctest: +SKIP
        ...     tile = s.read_region_at_mpp((0, 0), (256, 256), target_mpp=0.5)
    """

    def __init__(self, path: str | Path, *, mpp: float | None = None) -> None:
        self.path = Path(path)
        self.slide_id = slide_id_from_path(self.path)
        self._osr = _open(self.path)
        # Metadata is read once: a failed pixel read makes some openslide handles unusable.
        self.dimensions: tuple[int, int] = (int(self._osr.dimensions[0]), int(self._osr.dimensions[1]))
        self.level_count = int(self._osr.level_count)
        self.level_dimensions = tuple((int(w), int(h)) for w, h in self._osr.level_dimensions)
        self.level_downsamples = tuple(float(d) for d in self._osr.level_downsamples)
        self.properties = dict(self._osr.properties)
        _check_size(self.path, self.level_dimensions)
        self._mpp, self.mpp_note = _resolve_mpp(self.path, self.properties, mpp)
        # JPEG-tiled TIFF levels are decoded directly (several times faster); openslide reads the rest.
        self._fast = JpegTiff.open(self.path, self._osr) if isinstance(self._osr, openslide.OpenSlide) else None

    # -- metadata ------------------------------------------------------------------------------
    @property
    def vendor(self) -> str:
        return self.properties.get(openslide.PROPERTY_NAME_VENDOR, "image")

    @property
    def objective_power(self) -> float | None:
        value = self.properties.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
        return float(value) if value else None

    # -- physical resolution -----------------------------------------------------------------
    @property
    def mpp(self) -> float:
        """Level-0 µm/px.

        Raises:
            MissingMPPError: neither the file nor the user gave one.
        """
        if self._mpp is None:
            msg = where(self.path, f"slide has no usable mpp ({self.mpp_note})", "pass --slide-mpp M (µm per pixel)")
            raise MissingMPPError(msg)
        return self._mpp.value

    @property
    def mpp_source(self) -> str | None:
        """``openslide``, ``tiff``, ``user`` or ``None`` when unknown."""
        return self._mpp.source if self._mpp else None

    def best_level_for_mpp(self, target_mpp: float) -> int:
        """The coarsest level that is still at least as fine as ``target_mpp`` (level 0 if none is)."""
        return self._level_for(target_mpp / self.mpp)

    def _level_for(self, downsample: float) -> int:
        return max((i for i, ds in enumerate(self.level_downsamples) if ds <= downsample * (1 + 1e-3)), default=0)

    # -- pixels ---------------------------------------------------------------------------------
    def read_region(self, xy_level0: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
        """RGB uint8 array (h × w × 3) of ``size`` level pixels at level-0 ``xy_level0``.

        Transparent pixels (outside the scanned area) come back white. Levels of JPEG-tiled TIFFs are
        decoded directly; there a level-0 position between level pixels is rounded to the nearest one
        (openslide interpolates).

        Raises:
            SlideError: openslide cannot decode the pixels (corrupt or truncated file).
        """
        if self._fast is not None and self._fast.serves(level):
            ds = self.level_downsamples[level]
            return self._fast.read_region(level, round(xy_level0[0] / ds), round(xy_level0[1] / ds), *size)
        try:
            rgba = np.asarray(self._osr.read_region(xy_level0, level, size))
        except READ_ERRORS as exc:
            msg = where(self.path, f"pixel data cannot be read ({exc})", "the file is corrupt or truncated; re-copy it")
            raise SlideError(msg) from exc
        return _on_white(rgba)

    def read_region_at_mpp(
        self, xy_level0: tuple[int, int], size_px: tuple[int, int], target_mpp: float, *, level: int | None = None
    ) -> np.ndarray:
        """RGB array of ``size_px`` (w, h) pixels at ``target_mpp``, its top-left at level-0 ``xy_level0``.

        Reads from ``level`` (default: the coarsest level not coarser than needed), then resizes.
        """
        return self._read_scaled(xy_level0, size_px, target_mpp / self.mpp, level)

    def _read_scaled(
        self, xy_level0: tuple[int, int], size_px: tuple[int, int], downsample: float, level: int | None = None
    ) -> np.ndarray:
        """Like ``read_region_at_mpp`` with the scale given as level-0 pixels per output pixel."""
        level = self._level_for(downsample) if level is None else level
        scale = downsample / self.level_downsamples[level]
        read = (max(1, round(size_px[0] * scale)), max(1, round(size_px[1] * scale)))
        return resize(self.read_region(xy_level0, level, read), size_px)

    def overview_strips(self, downsample: float, *, strip_px: int = 512) -> Iterator[np.ndarray]:
        """The whole slide shrunk ``downsample`` times, top to bottom in strips.

        Memory stays flat: no read decodes more than :data:`READ_BUDGET_PX` level pixels, so a slide without
        a pyramid is read in narrower strips and, if need be, in pieces across.
        """
        width0, height0 = self.dimensions
        out_w, out_h = max(1, math.floor(width0 / downsample)), max(1, math.floor(height0 / downsample))
        scale = downsample / self.level_downsamples[self._level_for(downsample)]  # level px per output px
        cost = scale * scale  # level pixels decoded per output pixel
        strip_px = max(1, min(strip_px, math.floor(READ_BUDGET_PX / (out_w * cost))))
        piece_w = max(1, min(out_w, math.floor(READ_BUDGET_PX / (strip_px * cost))))
        for row in range(0, out_h, strip_px):
            rows, y0 = min(strip_px, out_h - row), round(row * downsample)
            pieces = [
                self._read_scaled((round(col * downsample), y0), (min(piece_w, out_w - col), rows), downsample)
                for col in range(0, out_w, piece_w)
            ]
            yield pieces[0] if len(pieces) == 1 else np.hstack(pieces)

    def read_overview(self, target_mpp: float) -> np.ndarray:
        """The whole slide at a coarse ``target_mpp``."""
        return np.vstack(list(self.overview_strips(target_mpp / self.mpp)))

    def thumbnail(self, max_px: int = 1024) -> np.ndarray:
        """RGB thumbnail whose longer side is at most ``max_px`` (read in strips, any slide size)."""
        return np.vstack(list(self.overview_strips(max(1.0, max(self.dimensions) / max_px))))

    def describe(self) -> dict[str, Any]:
        """Facts about the slide for provenance records."""
        return {
            "slide_path": str(self.path.resolve()),
            "slide_id": self.slide_id,
            "vendor": self.vendor,
            "dimensions": list(self.dimensions),
            "level_downsamples": list(self.level_downsamples),
            "objective_power": self.objective_power,
            "slide_mpp": self._mpp.value if self._mpp else None,
            "mpp_source": self.mpp_source,
        }

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        self._osr.close()
        if self._fast is not None:
            self._fast.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Slide({str(self.path)!r}, dimensions={self.dimensions}, mpp={self._mpp})"


def open_slide(path: str | Path, *, mpp: float | None = None) -> Slide:
    """Open a slide (see :class:`Slide`).

    Example:
        >>> slide = open_slide("case.svs", mpp=None)  # doctest: +SKIP
    """
    return Slide(path, mpp=mpp)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (w, h): area averaging when shrinking, bilinear when enlarging."""
    h, w = image.shape[:2]
    if (w, h) == tuple(size):
        return image
    shrink = size[0] * size[1] < w * h
    resized: np.ndarray = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return resized


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite RGBA onto white and drop alpha."""
    alpha = rgba[..., 3]
    if alpha.min() == 255:
        rgb: np.ndarray = np.ascontiguousarray(rgba[..., :3])
        return rgb
    a = alpha[..., None].astype(np.float32) / 255.0
    blended: np.ndarray = (rgba[..., :3] * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)
    return blended


def _open(path: Path) -> openslide.AbstractSlide:
    if not path.exists():
        raise SlideError(where(path, "no such file", "check the path"))
    if path.is_dir():
        raise SlideError(where(path, "is a folder, not a slide file", "pass the slide file itself"))
    if path.stat().st_size == 0:
        raise SlideError(where(path, "file is empty (0 bytes)", "re-copy or re-export the slide"))
    if (cut := truncation(path)) is not None:
        raise SlideError(where(path, cut, "re-copy the slide from its source"))
    try:
        if openslide.OpenSlide.detect_format(str(path)) is not None:
            return openslide.OpenSlide(str(path))
        with Image.open(path) as image:
            _check_plain_image(path, image)
            image.verify()
        return openslide.ImageSlide(str(path))
    except Image.DecompressionBombError as exc:
        limit = (Image.MAX_IMAGE_PIXELS or MAX_COARSEST_PX) / 1e6
        problem = f"plain image is over the {limit:.0f}-megapixel limit for untiled images ({exc})"
        raise SlideError(where(path, problem, PYRAMID_HINT)) from exc
    except (UnidentifiedImageError, openslide.OpenSlideUnsupportedFormatError) as exc:
        raise SlideError(where(path, "not a slide or image that can be read", FORMATS_HINT)) from exc
    except (openslide.OpenSlideError, OSError, SyntaxError, ValueError) as exc:
        msg = where(path, f"cannot be opened ({exc})", "the file may be truncated or corrupt; re-copy or convert it")
        raise SlideError(msg) from exc


def _check_plain_image(path: Path, image: Image.Image) -> None:
    """Refuse a plain image whose pixels would not fit comfortably in memory (it is decoded whole)."""
    width, height = image.size
    limit = Image.MAX_IMAGE_PIXELS or MAX_COARSEST_PX
    if width * height > limit:
        problem = f"plain image of {width}x{height} px is over the {limit / 1e6:.0f}-megapixel limit for untiled images"
        raise SlideError(where(path, problem, PYRAMID_HINT))


def _check_size(path: Path, levels: tuple[tuple[int, int], ...]) -> None:
    """Refuse a slide whose smallest level is too large to read for an overview (a missing pyramid or bogus size)."""
    width, height = min(levels, key=lambda wh: wh[0] * wh[1])
    if width * height > MAX_COARSEST_PX:
        w0, h0 = levels[0]
        problem = (
            f"slide is {w0}x{h0} px and its smallest level {width}x{height} px "
            f"({width * height / 1e9:.1f} gigapixels) is too large to read an overview from"
        )
        raise SlideError(where(path, problem, PYRAMID_HINT))


def _resolve_mpp(path: Path, props: dict[str, str], user: float | None) -> tuple[MPP | None, str]:
    """Pick the level-0 mpp: the user's value, else openslide's properties, else TIFF resolution tags."""
    found: list[MPP] = []
    if openslide.PROPERTY_NAME_MPP_X in props:
        x, y = float(props[openslide.PROPERTY_NAME_MPP_X]), float(props.get(openslide.PROPERTY_NAME_MPP_Y, 0) or 0)
        if y and abs(x - y) > 0.01 * x:
            log.warning("%s: pixels are not square (mpp x %.4f, y %.4f); using x", path, x, y)
        found.append(MPP(x, "openslide"))
    elif (tag := _tiff_mpp(path)) is not None:
        found.append(MPP(tag, "tiff"))
    if user is not None:
        if user <= 0:
            raise SlideError(where(path, f"--slide-mpp {user} is not positive", "pass µm per pixel, e.g. 0.25"))
        if found and abs(found[0].value - user) > 0.05 * user:
            log.warning("%s: file says %.4f µm/px, using --slide-mpp %.4f", path, found[0].value, user)
        return MPP(user, "user"), "given by the user"
    if not found:
        return None, "none in the file's metadata"
    lo, hi = PLAUSIBLE_MPP
    if not lo <= found[0].value <= hi:
        return None, f"the file says {found[0].value:g} µm/px, not a microscope scale"
    return found[0], f"from {found[0].source}"


def _tiff_mpp(path: Path) -> float | None:
    """µm/px from a TIFF's XResolution/ResolutionUnit tags, if the file is a TIFF with them."""
    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags  # type: ignore[union-attr]
            unit, res = tags.get("ResolutionUnit"), tags.get("XResolution")
            if unit is None or res is None:
                return None
            num, den = res.value
            per_unit = {2: 25400.0, 3: 10000.0}.get(int(unit.value))
            return per_unit * den / num if per_unit and num else None
    except (tifffile.TiffFileError, OSError, ValueError, IndexError):
        return None
