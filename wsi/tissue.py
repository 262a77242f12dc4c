"""Tissue detection on a low-resolution overview of the slide.

Optical density against the slide's own glass (scanner padding, flat white or black, is not glass),
an Otsu threshold kept inside a band that keeps pale fat and myxoid stroma, closing to join fat septa,
filling adipocyte-sized holes and dropping specks. Pen ink (blue, green, red, black) and padding are
never tissue: their colours lie outside what haematoxylin and eosin can make (see :func:`artefacts`).
Parameters live in ``configs/tiling.yaml`` (section ``tissue``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from liposcope.config import from_dict, load_yaml
from liposcope.errors import NoTissueError, SlideError, where
from liposcope.wsi.slide import Slide
from liposcope.wsi.stain import estimate_background, od_table


@dataclass(frozen=True)
class TissueParams:
    """Tissue-detector settings (see ``configs/tiling.yaml``)."""

    mask_mpp: float
    median_px: int
    min_od: float
    max_od: float
    close_um: float
    max_hole_mm2: float
    min_object_mm2: float

    @classmethod
    def default(cls) -> TissueParams:
        """The packaged defaults from ``configs/tiling.yaml``."""
        return from_dict(cls, load_yaml("tiling")["tissue"], "configs/tiling.yaml: tissue")


@dataclass(frozen=True)
class TissueMask:
    """Boolean tissue mask at ``mpp`` µm/px; mask pixel (i, j) covers level-0 pixels × ``downsample``."""

    mask: np.ndarray
    mpp: float
    downsample: float
    threshold_od: float

    @property
    def area_mm2(self) -> float:
        """Tissue area in mm²."""
        return float(self.mask.sum()) * (self.mpp / 1000.0) ** 2

    def resized(self, shape: tuple[int, int]) -> np.ndarray:
        """The mask as a bool array of ``shape`` (h, w), e.g. to overlay a thumbnail."""
        out: np.ndarray = cv2.resize(self.mask.astype(np.uint8), shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        return out

    def at(self, xy_level0: np.ndarray) -> np.ndarray:
        """Whether each level-0 point (N × 2, x y) lies on tissue."""
        rows, cols = self.mask.shape
        i = np.clip((xy_level0[:, 1] / self.downsample).astype(np.int64), 0, rows - 1)
        j = np.clip((xy_level0[:, 0] / self.downsample).astype(np.int64), 0, cols - 1)
        out: np.ndarray = self.mask[i, j]
        return out

    def fraction_in_boxes(self, xy_level0: np.ndarray, size_level0: int) -> np.ndarray:
        """Tissue fraction of each square level-0 box (N × 2 top-left corners, common side)."""
        h, w = self.mask.shape
        lo = np.clip(np.rint(np.asarray(xy_level0, np.float64) / self.downsample), 0, [w, h]).astype(np.int64)
        hi = np.clip(np.rint((np.asarray(xy_level0, np.float64) + size_level0) / self.downsample), 0, [w, h])
        hi = hi.astype(np.int64)
        out = np.zeros(len(lo), np.float32)
        rows = np.stack([lo[:, 1], hi[:, 1]], axis=1)
        for y0, y1 in np.unique(rows, axis=0):  # one strip of mask rows per grid row: memory stays small
            pick = np.flatnonzero((rows[:, 0] == y0) & (rows[:, 1] == y1))
            columns = np.concatenate([[0], np.cumsum(self.mask[y0:y1].sum(axis=0, dtype=np.int64))])
            inside = columns[hi[pick, 0]] - columns[lo[pick, 0]]
            area = np.maximum((hi[pick, 0] - lo[pick, 0]) * (y1 - y0), 1)
            out[pick] = inside / area
        return out


def detect_tissue(
    slide: Slide, params: TissueParams | None = None, *, he: bool = True
) -> tuple[TissueMask, np.ndarray]:
    """Find tissue at ``params.mask_mpp``; the overview is read in strips and kept only as uint8 OD. ``he``:
    the slide is H&E, so ink drawn over tissue can be told by colour (see :func:`artefacts`).

    Returns:
        The mask and an RGB thumbnail of the slide (for drawing).

    Raises:
        MissingMPPError: the slide's mpp is unknown.
        NoTissueError: nothing that looks like tissue was found.

    Example:
        >>> mask, thumbnail = detect_tissue(open_slide("case.svs"))  # doctest: +SKIP
        >>> round(mask.area_mm2, 1)  # doctest: +SKIP
        41.3
    """
    params = params or TissueParams.default()
    mask_mpp = max(params.mask_mpp, slide.mpp)
    width_mm, height_mm = (d * slide.mpp / 1000.0 for d in slide.dimensions)
    if width_mm * height_mm > MAX_SLIDE_MM2:
        problem = (
            f"slide would be {width_mm:.0f} x {height_mm:.0f} mm at {slide.mpp:g} µm/px, larger than any glass slide"
        )
        raise SlideError(where(slide.path, problem, "check --slide-mpp and the file's dimensions"))
    thumbnail = slide.thumbnail(1600)
    table = od_table(glass_background(thumbnail))
    strips = [
        (_od8(strip, table), artefacts(strip, table, he=he))
        for strip in slide.overview_strips(mask_mpp / slide.mpp)
    ]
    od8, exclude = np.vstack([od for od, _ in strips]), np.vstack([ex for _, ex in strips])
    mask, threshold = mask_from_od8(od8, mask_mpp, params, exclude)
    if not mask.any():
        msg = where(
            slide.path, "no tissue found", "check the slide, or lower tissue.min_od / min_object_mm2 with --config"
        )
        raise NoTissueError(msg)
    return TissueMask(mask, mask_mpp, mask_mpp / slide.mpp, threshold), thumbnail


def tissue_from_rgb(rgb: np.ndarray, mpp: float, params: TissueParams) -> tuple[np.ndarray, float]:
    """Tissue mask of an RGB image at ``mpp`` µm/px, and the OD threshold used."""
    table = od_table(glass_background(rgb))
    return mask_from_od8(_od8(rgb, table), mpp, params, artefacts(rgb, table))


#: Largest scanned area accepted (mm²): whole-mount glass is 75 x 50 mm; the mask stays under ~1 GB.
MAX_SLIDE_MM2 = 200.0 * 200.0
#: Scanner padding: flat pure white or black, never glass or tissue.
PADDING_WHITE, PADDING_BLACK = 254, 1
#: Padding must cover this share of the overview before the glass is estimated without it.
PADDING_MIN_SHARE = 0.01
#: Pixels of less total OD carry too little colour to call ink.
INK_MIN_OD = 0.3
#: Total OD no stained section reaches at 4 µm/px (real H&E ≤ 2.5 over 20 x 20 µm): overlapping pen strokes.
INK_DARK_OD = 3.3
#: Smallest black ink mark (mm², ≈ 70 x 70 µm): smaller dark specks are nuclei or DAB, not pen.
INK_MIN_MM2 = 0.005
#: Ink and padding are widened by this much: the soft edge of a stroke is ink too.
INK_RIM_UM = 12.0


def padding(rgb: np.ndarray) -> np.ndarray:
    """Where the image is scanner padding (every channel ≥ 254, or ≤ 1)."""
    lo, hi = rgb.min(axis=-1), rgb.max(axis=-1)
    out: np.ndarray = (lo >= PADDING_WHITE) | (hi <= PADDING_BLACK)
    return out


def glass_background(rgb: np.ndarray) -> np.ndarray:
    """The glass colour (``I0``): :func:`estimate_background` over the pixels that are not scanner padding.

    Padding brighter than the glass would otherwise be taken as the white, and the glass as faint tissue.
    """
    pad = padding(rgb)
    rest = rgb[~pad]
    if pad.mean() < PADDING_MIN_SHARE or len(rest) < 100:
        return estimate_background(rgb)
    return estimate_background(rest)


def artefacts(rgb: np.ndarray, table: np.ndarray, *, he: bool = True) -> np.ndarray:
    """Pen ink and scanner padding, pixels that are never tissue: uint8 codes, 0 none, 1 coloured ink or
    padding, 2 black or ink over tissue (ink only where it forms a mark, see :func:`mask_from_od8`).

    In optical density (per channel, against the glass) haematoxylin absorbs red and green about equally
    and eosin absorbs green far more than blue, so every H&E mixture has OD_green ≥ 0.75·OD_red and
    OD_blue ≤ 0.75·OD_green. Ink breaks these: red ink absorbs blue like green and hardly any red, blue
    ink absorbs red most, green ink absorbs green least; black ink absorbs everything, evenly and strongly,
    and so do crossing strokes of two inks (more than :data:`INK_DARK_OD` in all). Over eosin, blue and green
    ink lose those signs but keep others that no real H&E section shows across a whole mark at 4 µm/px (per
    pixel: OD_blue ≥ 0.32·OD_red, OD_blue ≤ 0.91·OD_green): blue ink leaves OD_blue < 0.3·OD_red or
    OD_red > 1.3·OD_green, green ink OD_blue > OD_green, or over dense eosin a dark neutral grey (every channel
    above 0.5, OD_blue > 0.7·OD_green, OD_red > 0.8·OD_green; in real H&E only specks of a few pixels).
    Being rarer departures, these count like black, only as whole marks. Red ink over eosin has eosin's colour
    and stays. DAB breaks the same H&E rules (it absorbs blue most), so on IHC (``he=False``) only black,
    dark and coloured ink are marks.
    """
    r, g, b = table[0][rgb[..., 0]], table[1][rgb[..., 1]], table[2][rgb[..., 2]]
    coloured = r + g + b > INK_MIN_OD
    red = (b > 0.75 * g) & (r < 0.25 * g)
    blue = (r > 1.3 * g) & (r > 5.0 * b)
    green = (g < 0.8 * r) & (g < 0.8 * b)
    low, high = np.minimum(np.minimum(r, g), b), np.maximum(np.maximum(r, g), b)
    black = ((low > 0.9) & (high < 1.6 * low)) | (r + g + b > INK_DARK_OD)
    blue_on_tissue = (r > 0.5) & ((b < 0.3 * r) | (r > 1.3 * g))
    green_on_tissue = (g > 0.5) & ((b > g) | ((low > 0.5) & (b > 0.7 * g) & (r > 0.8 * g)))
    mark = black | (he & (blue_on_tissue | green_on_tissue))
    out: np.ndarray = np.where((coloured & (red | blue | green)) | padding(rgb), 1, np.where(mark, 2, 0))
    return out.astype(np.uint8)


def _od8(rgb: np.ndarray, table: np.ndarray) -> np.ndarray:
    """R + G + B optical density from per-channel lookup tables, as uint8 (OD 0..3 → 0..255)."""
    od: np.ndarray = table[0][rgb[..., 0]]
    od += table[1][rgb[..., 1]]
    od += table[2][rgb[..., 2]]
    od *= 255.0 / 3.0
    return np.clip(od, 0, 255, out=od).astype(np.uint8)


def mask_from_od8(
    od8: np.ndarray, mpp: float, params: TissueParams, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Threshold (Otsu clamped to [min_od, max_od]), close, fill holes, drop specks.

    ``exclude`` (codes of :func:`artefacts`) is removed before closing and again after filling holes, so
    the final mask, from which tiles' tissue fractions are measured, never covers it.
    """
    if params.median_px > 1:
        od8 = cv2.medianBlur(od8, params.median_px | 1)
    otsu, _ = cv2.threshold(od8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = float(np.clip(otsu * 3.0 / 255.0, params.min_od, params.max_od))
    mask = (od8 > threshold * 255.0 / 3.0).astype(np.uint8)
    px_per_mm2 = (1000.0 / mpp) ** 2
    if exclude is not None:  # code-2 marks are large: a dark nucleus or a cluster of them is not ink
        exclude = (exclude == 1) | _large(exclude == 2, INK_MIN_MM2 * px_per_mm2)
    if exclude is not None and exclude.any():  # with the soft rim of ink strokes, ≈ 12 µm
        rim = max(1, round(INK_RIM_UM / mpp))
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rim + 1, 2 * rim + 1))
        exclude = cv2.dilate(exclude.astype(np.uint8), disk)
        _fill_holes(exclude, INK_MIN_MM2 * px_per_mm2)  # where strokes cross, a dark core enclosed by ink
        exclude = exclude > 0
        mask[exclude] = 0
    else:
        exclude = None
    radius = round(params.close_um / mpp)
    if radius > 0:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        padded = np.pad(mask, radius)  # glass beyond the edge, so closing stops there
        mask = np.ascontiguousarray(cv2.morphologyEx(padded, cv2.MORPH_CLOSE, disk)[radius:-radius, radius:-radius])
    _fill_holes(mask, params.max_hole_mm2 * px_per_mm2)
    if exclude is not None:
        mask[exclude] = 0
    _drop_small(mask, params.min_object_mm2 * px_per_mm2)
    return mask.astype(bool), threshold


def _large(flags: np.ndarray, min_area_px: float) -> np.ndarray:
    """``flags`` without its 8-connected regions smaller than ``min_area_px``."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(flags.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area_px
    keep[0] = False  # the background label
    out: np.ndarray = keep[labels] if n > 1 else np.zeros_like(flags, dtype=bool)
    return out


def _fill_holes(mask: np.ndarray, max_area_px: float) -> None:
    """Fill, in place, background regions enclosed by tissue and smaller than ``max_area_px``."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return
    holes = [c for c, h in zip(contours, hierarchy[0], strict=True) if h[3] >= 0 and cv2.contourArea(c) < max_area_px]
    cv2.drawContours(mask, holes, -1, 1, thickness=cv2.FILLED)


def _drop_small(mask: np.ndarray, min_area_px: float) -> None:
    """Remove, in place, tissue regions smaller than ``min_area_px``."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    small = [c for c in contours if cv2.contourArea(c) < min_area_px]
    cv2.drawContours(mask, small, -1, 0, thickness=cv2.FILLED)
