"""Synthetic IHC (haematoxylin + DAB) slides with known nuclei: centres, sizes, grades and DAB density.

Nuclei are placed once per slide (dense regions with touching pairs and small clusters, sparse
regions), each with a designed haematoxylin and DAB concentration, so any level-0 region renders
deterministically from that list. :func:`write_ihc_slide` writes the pyramid plus ``<id>.truth.json``,
``<id>.nuclei.csv`` and ``<id>.tissue.png``; :func:`load_ihc_truth` reads them back.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from liposcope import __version__
from liposcope.io import atomic_path, write_json, write_png
from liposcope.synth.draw import Region, as_float, blur, draw_blobs, draw_discs
from liposcope.synth.fields import FloatArray, Points, fbm, fbm_at, smoothstep, value_noise, wrapped_crop
from liposcope.synth.ihc_styles import IHCLook, look_named, random_look
from liposcope.synth.layout import Field, tissue_field
from liposcope.synth.pyramid import write_pyramid
from liposcope.synth.slide import sidecar_paths
from liposcope.synth.stain import DAB, Stain, StainStyle, perturb, random_he_style, render_rgb
from liposcope.wsi.stain import HEMATOXYLIN_HDAB

log = logging.getLogger(__name__)
F64 = NDArray[np.float64]

GRADES = ("negative", "weak", "moderate", "strong")
#: Designed mean nuclear DAB concentration per grade (mid-bins of the 0.2 / 0.4 / 0.6 OD cut-offs).
GRADE_DAB = ((0.0, 0.08), (0.25, 0.35), (0.45, 0.55), (0.7, 0.9))
CSV_COLUMNS = ("x", "y", "area_um2", "grade", "dab_od")

_NUCLEUS_H = (0.25, 0.6)
_MIN_WIDTH_UM = 4.5  # tumour nuclei are at least this wide (thinner ones are stromal, not in the truth)
_MIN_TOUCH = 0.76  # hard floor: centre distance / sum of equivalent radii
_GAP_UM = 0.8  # least gap between nuclei not in one cluster
_EDGE_UM = 2.0  # least distance from a nucleus to the tissue edge
_DENSE_PER_UM2 = 1.0 / 45.0
_SPARSE_PER_UM2 = 1.0 / 900.0
_DENSITY_UM = 220.0
_GRANULES = 0.25
_NUCLEOLUS_H = 0.9
_CYTO_BLUR_UM = 1.0  # soft cytoplasm outlines
_NUCLEUS_FULL = 1.0  # concentration of a nuclear canvas value of 255 (designed values sit on this grid)
_CYTO_FULL = 0.25
_NOISE_PERIOD = 509


@dataclass(frozen=True)
class Nuclei:
    """Designed nuclei: centres (µm, as :class:`Points`), ellipse semi-axes (µm), orientation and stains.

    ``h`` and ``dab`` are concentrations at unit stain scale; ``cyto_scale`` is the cytoplasm size
    relative to the nucleus (0: no tinted cytoplasm), ``cyto_h`` / ``cyto_dab`` its concentrations.
    """

    pts: Points
    rx: F64
    ry: F64
    angle: F64
    grade: NDArray[np.int8]
    h: F64
    dab: F64
    cyto_scale: F64
    cyto_h: F64
    cyto_dab: F64

    def __len__(self) -> int:
        return len(self.pts)

    def near(self, bounds_um: tuple[float, float, float, float]) -> Nuclei:
        """Nuclei whose centres lie in ``bounds_um`` (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = bounds_um
        p = self.pts
        keep = (p.x >= x0) & (p.x <= x1) & (p.y >= y0) & (p.y <= y1)
        return Nuclei(
            p.select(keep),
            self.rx[keep],
            self.ry[keep],
            self.angle[keep],
            self.grade[keep],
            self.h[keep],
            self.dab[keep],
            self.cyto_scale[keep],
            self.cyto_h[keep],
            self.cyto_dab[keep],
        )


@dataclass(frozen=True)
class IHCSlide:
    """Everything needed to render any level-0 region of one synthetic IHC slide deterministically."""

    seed: int
    width: int
    height: int
    mpp: float
    style: StainStyle
    tissue: Field
    tissue_mask: NDArray[np.bool_]
    nuclei: Nuclei
    haze_max: float
    noise_tile: FloatArray
    look: IHCLook = field(default_factory=IHCLook)

    def render(self, x0: int, y0: int, w: int, h: int) -> NDArray[np.uint8]:
        """Level-0 RGB pixels of the box (x0, y0, w, h)."""
        look = self.look
        pad_um = 4.0 * max(_CYTO_BLUR_UM, look.defocus_um if look.defocus else 0.0)
        region = Region(x0, y0, w, h, self.mpp, math.ceil(pad_um / self.mpp) + 2)
        xs, ys = region.xs_um(), region.ys_um()
        alpha = self.tissue.alpha(xs, ys)
        if float(alpha.max()) > 0.0:
            conc_h, conc_dab = self._tissue(region, xs, ys, alpha)
            conc = {
                "H": np.ascontiguousarray(region.crop(self._optics(conc_h, xs, ys))),
                "DAB": np.ascontiguousarray(region.crop(self._optics(conc_dab, xs, ys))),
            }
        else:
            conc = {"H": np.zeros((h, w), np.float32), "DAB": np.zeros((h, w), np.float32)}
        rgb = render_rgb(conc, self.style, wrapped_crop(self.noise_tile, x0, y0, w, h))
        if look.uneven > 0:  # illumination falls off smoothly across the slide (glass included)
            fall = np.asarray(region.crop(fbm(self.seed + 17, xs, ys, 600.0, 2)), np.float32) * np.float32(look.uneven)
            rgb = np.clip(rgb * (np.float32(1.0) - fall)[..., None], 0, 255).astype(np.uint8)
        return rgb

    def _optics(self, conc: FloatArray, xs: F64, ys: F64) -> FloatArray:
        """Blur of the optics; out-of-focus areas (``look.defocus`` of the slide) blur more."""
        look = self.look
        if look.defocus <= 0:
            return blur(conc, look.blur_um, self.mpp)
        soft = blur(conc.copy(), look.defocus_um, self.mpp)
        sharp = blur(conc, look.blur_um, self.mpp)
        focus = smoothstep(1.0 - look.defocus - 0.05, 1.0 - look.defocus + 0.05, fbm(self.seed + 16, xs, ys, 200.0, 2))
        sharp += (soft - sharp) * focus
        return sharp

    def _tissue(self, region: Region, xs: F64, ys: F64, alpha: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Padded H and DAB concentrations: stroma, haze, tinted cytoplasm and nuclei."""
        s, look = self.seed, self.look
        lo, hi = look.stroma_h
        stroma = fbm(s + 11, xs, ys, 90.0)
        stroma *= np.float32(hi - lo)
        stroma += np.float32(lo)
        fibres = fbm(s + 12, xs, ys, look.fibre_um, octaves=2)
        stroma *= fibres * np.float32(look.fibres) + np.float32(1.0 - look.fibres / 2)
        haze = np.clip((fbm(s + 13, xs, ys, 250.0, octaves=2) - np.float32(0.3)) * np.float32(2.5), 0.0, 1.0)
        haze *= np.float32(self.haze_max)
        # tinted cytoplasm reaches up to ~2.3 long semi-axes from the centre
        nuc = self.nuclei.near(region.bounds_um(max(float(self.nuclei.rx.max(initial=0.0)), 1.0) * 2.5))
        if len(nuc) == 0:
            return stroma * alpha, haze * alpha
        canvases = _paint(nuc, region, look)
        cover = as_float(canvases[0])
        outside = np.float32(1.0) - cover
        outside *= alpha
        h = (stroma + blur(as_float(canvases[3], _CYTO_FULL), _CYTO_BLUR_UM, self.mpp)) * outside
        dab = (haze + blur(as_float(canvases[4], _CYTO_FULL), _CYTO_BLUR_UM, self.mpp)) * outside
        amp = look.chromatin_amp
        chromatin = value_noise(s + 14, xs, ys, 0.9) * np.float32(2.0 * amp) + np.float32(1.0 - amp)
        granules = value_noise(s + 15, xs, ys, 0.7) * np.float32(2.0 * _GRANULES) + np.float32(1.0 - _GRANULES)
        h += as_float(canvases[1], _NUCLEUS_FULL) * chromatin
        dab += as_float(canvases[2], _NUCLEUS_FULL) * granules
        return h, dab


def _paint(nuc: Nuclei, region: Region, look: IHCLook) -> list[NDArray[np.uint8]]:
    """uint8 canvases: nucleus cover, nuclear H, nuclear DAB, cytoplasm H, cytoplasm DAB."""
    out = [np.zeros(region.shape, np.uint8) for _ in range(5)]
    has = nuc.cyto_scale > 0
    cyto = Points(nuc.pts.x[has], nuc.pts.y[has], nuc.pts.uid[has], nuc.pts.seed + 1)
    k = nuc.cyto_scale[has]
    to_byte = 255.0 / _NUCLEUS_FULL
    for canvas, value in ((out[0], np.full(len(nuc), 255.0)), (out[1], nuc.h * to_byte), (out[2], nuc.dab * to_byte)):
        draw_blobs(
            canvas, region, nuc.pts, rx_um=nuc.rx, ry_um=nuc.ry, angle=nuc.angle, value=value, irregular=look.irregular
        )
    _chromatin(out[1], nuc, region, look)
    for canvas, conc in ((out[3], nuc.cyto_h[has]), (out[4], nuc.cyto_dab[has])):
        draw_blobs(
            canvas,
            region,
            cyto,
            rx_um=nuc.rx[has] * k,
            ry_um=nuc.ry[has] * k,
            angle=nuc.angle[has],
            value=conc * (255.0 / _CYTO_FULL),
            irregular=0.25,
        )
    return out


def _chromatin(canvas: NDArray[np.uint8], nuc: Nuclei, region: Region, look: IHCLook) -> None:
    """Vesicular nuclei: pale centre inside a dark rim; nucleoli: a small dark dot off the centre."""
    to_byte = 255.0 / _NUCLEUS_FULL
    if look.chromatin == "vesicular":
        draw_blobs(
            canvas, region, nuc.pts, rx_um=0.65 * nuc.rx, ry_um=0.65 * nuc.ry, angle=nuc.angle,
            value=0.45 * nuc.h * to_byte, irregular=look.irregular,
        )  # fmt: skip
    if look.nucleoli > 0:
        has = nuc.pts.uniform(60) < look.nucleoli
        phi, off = 2 * np.pi * nuc.pts.uniform(61)[has], 0.35 * nuc.ry[has] * nuc.pts.uniform(62)[has]
        x, y = nuc.pts.x[has] + off * np.cos(phi), nuc.pts.y[has] + off * np.sin(phi)
        draw_discs(canvas, region, x, y, np.full(x.size, 0.6), round(_NUCLEOLUS_H * to_byte))


def random_ihc_style(rng: np.random.Generator, variation: float = 1.0) -> StainStyle:
    """Random H-DAB style around the reference vectors; glass colour and noise vary as in :func:`random_he_style`.

    The DAB scale stays 1 so designed DAB concentrations are optical densities; the H scale varies modestly.

    Args:
        rng: Random generator (per slide).
        variation: Spread multiplier; 0 gives the reference vectors.
    """
    glass = random_he_style(rng, variation)
    return StainStyle(
        (
            Stain(
                "H", perturb(rng, HEMATOXYLIN_HDAB, 0.05 * variation), float(np.exp(rng.normal(0.0, 0.15 * variation)))
            ),
            Stain("DAB", perturb(rng, DAB, 0.05 * variation), 1.0),
        ),
        glass.background,
        glass.noise_sigma,
    )


def make_ihc_slide(
    *,
    seed: int,
    width_px: int = 4096,
    height_px: int = 3072,
    mpp: float = 0.25,
    positive_fraction: float = 0.2,
    style: StainStyle | None = None,
    variation: float = 1.0,
    mask_downsample: int = 16,
    look: str | IHCLook = "reference",
) -> IHCSlide:
    """Build the slide model; all randomness comes from ``seed``.

    Nuclei sit inside tissue, at least 2 µm from its edge and inside the ``mask_downsample`` tissue mask.
    ``look`` is a drawing style: a name from :data:`liposcope.synth.ihc_styles.STYLES`, ``random`` (domain
    randomised from ``seed``) or an :class:`IHCLook`.
    """
    if width_px < 64 or height_px < 64 or not mpp > 0 or mask_downsample < 1:
        msg = f"need width/height >= 64 px, mpp > 0 and mask_downsample >= 1, got {width_px}x{height_px} at {mpp}"
        raise ValueError(msg)
    if not 0.0 <= positive_fraction <= 1.0:
        msg = f"positive_fraction must be in [0, 1], got {positive_fraction}"
        raise ValueError(msg)
    rng = np.random.default_rng([seed, 0x1AC])
    if isinstance(look, str):
        look = random_look(np.random.default_rng([seed, 0x100C])) if look == "random" else look_named(look)
    if style is None:
        style = random_ihc_style(rng, variation * look.stain_variation)
        style = dataclasses.replace(style, noise_sigma=style.noise_sigma * look.noise)
    for name in ("H", "DAB"):
        style.stain(name)  # ValueError when missing
    tissue = tissue_field(rng, width_px * mpp, height_px * mpp)
    mask = tissue.mask(width_px, height_px, mpp, mask_downsample)
    nuclei = _nuclei(rng, seed, tissue, mask, (width_px, height_px, mpp, mask_downsample), positive_fraction, look)
    return IHCSlide(
        seed,
        width_px,
        height_px,
        mpp,
        style,
        tissue,
        mask,
        nuclei,
        float(rng.uniform(*look.haze_max)),
        rng.standard_normal((_NOISE_PERIOD, _NOISE_PERIOD)).astype(np.float32),
        look,
    )


def _directional_radius(rx: F64, ry: F64, angle: F64, phi: F64) -> F64:
    """Distance from an ellipse centre to its outline in direction ``phi``."""
    psi = phi - angle
    out: F64 = rx * ry / np.hypot(ry * np.cos(psi), rx * np.sin(psi))
    return out


def _shapes(rng: np.random.Generator, n: int, look: IHCLook) -> tuple[F64, ...]:
    """(rx, ry, angle) of ``n`` random nuclei, none narrower than ``_MIN_WIDTH_UM`` (area kept)."""
    r = rng.uniform(*look.diameter_um, n) / 2.0
    aspect = np.maximum(rng.uniform(*look.aspect, n), np.minimum((_MIN_WIDTH_UM / 2) ** 2 / r**2, 1.0))
    return r / np.sqrt(aspect), r * np.sqrt(aspect), rng.uniform(0.0, np.pi, n)


def _candidates(
    rng: np.random.Generator, seed: int, w_um: float, h_um: float, look: IHCLook
) -> tuple[F64, F64, F64, F64, F64, NDArray[np.int64]]:
    """Parents (density-thinned Poisson) and touching children, cluster-ordered: x, y, rx, ry, angle, cluster."""
    n = int(rng.poisson(_DENSE_PER_UM2 * w_um * h_um))
    x, y = rng.uniform(0.0, w_um, n), rng.uniform(0.0, h_um, n)
    dense = np.clip((fbm_at(seed + 1, x, y, _DENSITY_UM) - 0.43) / 0.14, 0.0, 1.0)  # ~1/3 sparse, ~1/3 dense
    keep = rng.random(n) * _DENSE_PER_UM2 < _SPARSE_PER_UM2 + (_DENSE_PER_UM2 - _SPARSE_PER_UM2) * dense
    x, y, dense = x[keep], y[keep], dense[keep]
    rx, ry, angle = _shapes(rng, x.size, look)
    parts = [(x, y, rx, ry, angle, np.arange(x.size), np.zeros(x.size))]
    n_children = np.where(rng.random(x.size) < look.cluster_p * dense, rng.choice([1, 1, 2], x.size), 0)
    phi0 = rng.uniform(0.0, 2.0 * np.pi, x.size)
    for k in (1, 2):
        p = np.flatnonzero(n_children >= k)
        crx, cry, cang = _shapes(rng, p.size, look)
        phi = phi0[p] + (0.0 if k == 1 else rng.uniform(2.0 * np.pi / 3.0, 4.0 * np.pi / 3.0, p.size))
        reach = _directional_radius(rx[p], ry[p], angle[p], phi) + _directional_radius(crx, cry, cang, phi)
        eq = np.sqrt(rx[p] * ry[p]) + np.sqrt(crx * cry)
        d = np.maximum(rng.uniform(*look.touch, p.size) * reach, _MIN_TOUCH * eq)
        parts.append((x[p] + d * np.cos(phi), y[p] + d * np.sin(phi), crx, cry, cang, p, np.full(p.size, k)))
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    order = np.lexsort((cols[6], cols[5]))
    return cols[0][order], cols[1][order], cols[2][order], cols[3][order], cols[4][order], cols[5][order]


def _nuclei(
    rng: np.random.Generator,
    seed: int,
    tissue: Field,
    mask: NDArray[np.bool_],
    grid: tuple[int, int, float, int],
    positive_fraction: float,
    look: IHCLook,
) -> Nuclei:
    width, height, mpp, mask_downsample = grid
    x, y, rx, ry, angle, cluster = _candidates(rng, seed, width * mpp, height * mpp, look)
    # inside tissue: far enough from the glass (2 µm distance map) and in the truth mask at the centre
    fine_ds = max(1, round(2.0 / mpp))
    fine = tissue.mask(width, height, mpp, fine_ds).astype(np.uint8)
    depth = cv2.distanceTransform(fine, cv2.DIST_L2, 5) * np.float32(fine_ds * mpp)

    def lookup(img: NDArray[Any], ds: int) -> NDArray[Any]:
        r = np.clip((y / (mpp * ds)).astype(np.int64), 0, img.shape[0] - 1)
        c = np.clip((x / (mpp * ds)).astype(np.int64), 0, img.shape[1] - 1)
        return img[r, c]

    inside = (x >= 0) & (y >= 0) & (x < width * mpp) & (y < height * mpp)
    inside &= lookup(depth, fine_ds) >= rx * (1.0 + look.irregular) + _EDGE_UM
    inside &= lookup(mask, mask_downsample)
    x, y, rx, ry, angle, cluster = x[inside], y[inside], rx[inside], ry[inside], angle[inside], cluster[inside]
    keep = _resolve_overlaps(x, y, rx, ry, cluster)
    x, y, rx, ry, angle = x[keep], y[keep], rx[keep], ry[keep], angle[keep]
    # centres on a 0.01 px grid, so the CSV truth is exactly what is drawn
    x = np.round(x / mpp, 2) * mpp
    y = np.round(y / mpp, 2) * mpp
    n = x.size
    grade = _grades(rng, seed, x, y, positive_fraction)
    lo = np.array([g[0] for g in GRADE_DAB])[grade]
    hi = np.array([g[1] for g in GRADE_DAB])[grade]
    has_cyto = rng.random(n) < look.cyto_p
    dab = _quantise(rng.uniform(lo, hi), _NUCLEUS_FULL)
    return Nuclei(
        Points(x, y, np.arange(n, dtype=np.uint64), seed + 2),
        rx,
        ry,
        angle,
        grade,
        _quantise(rng.uniform(*_NUCLEUS_H, n), _NUCLEUS_FULL),
        dab,
        np.where(has_cyto, rng.uniform(1.45, 1.9, n), 0.0),
        _quantise(rng.uniform(0.02, 0.06, n), _CYTO_FULL),
        _quantise(look.cyto_dab * dab, _CYTO_FULL),
    )


def _quantise(c: F64, full: float) -> F64:
    """Snap concentrations to the uint8 canvas grid (``full`` at 255)."""
    out: F64 = np.round(c * (255.0 / full)) * (full / 255.0)
    return out


def _resolve_overlaps(
    x: F64,
    y: F64,
    rx: F64,
    ry: F64,
    cluster: NDArray[np.int64],
) -> NDArray[np.bool_]:
    """Greedy in order: drop a nucleus too close to an earlier kept one.

    Nuclei of one cluster may touch (centre distance >= 0.76 x summed equivalent radii); others keep a gap.
    """
    keep = np.ones(x.size, bool)
    if x.size < 2:
        return keep
    reach = 2.0 * float(rx.max()) + _GAP_UM
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(reach, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    dist = np.hypot(x[i] - x[j], y[i] - y[j])
    eq = np.sqrt(rx * ry)
    need = np.where(cluster[i] == cluster[j], _MIN_TOUCH * (eq[i] + eq[j]), rx[i] + rx[j] + _GAP_UM)
    clash = dist < need
    first, later = np.minimum(i, j)[clash], np.maximum(i, j)[clash]
    order = np.argsort(later, kind="stable")
    first, later = first[order], later[order]
    heads, starts = np.unique(later, return_index=True)
    ends = [*starts[1:].tolist(), later.size]
    for b, s, e in zip(heads.tolist(), starts.tolist(), ends, strict=True):
        if keep[first[s:e]].any():
            keep[b] = False
    return keep


def _grades(rng: np.random.Generator, seed: int, x: F64, y: F64, positive_fraction: float) -> NDArray[np.int8]:
    """Exactly round(positive_fraction * n) positives, in soft hot spots; weak/moderate/strong split by Dirichlet."""
    n = x.size
    grade = np.zeros(n, np.int8)
    n_pos = math.floor(positive_fraction * n + 0.5)
    if n_pos == 0:
        return grade
    weight = 0.2 + fbm_at(seed + 3, x, y, 300.0) ** 2
    pos = rng.choice(n, n_pos, replace=False, p=weight / weight.sum())
    raw = rng.dirichlet([1.5, 1.5, 1.5]) * n_pos
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(counts - raw)[: n_pos - int(counts.sum())]] += 1
    grade[pos] = rng.permutation(np.repeat(np.array([1, 2, 3], np.int8), counts))
    return grade


@dataclass(frozen=True)
class IHCTruth:
    """Ground truth of one synthetic IHC slide.

    ``xy`` are nucleus centres in level-0 pixels (pixel (i, j) covers [i, i+1) x [j, j+1)); ``dab_od`` is
    the designed mean DAB optical density over each nucleus (concentration x DAB scale, before blur);
    ``grade`` is 0 negative, 1 weak, 2 moderate, 3 strong. The tissue mask is at level-0 downsample
    ``mask_downsample``.
    """

    slide_id: str
    seed: int
    mpp: float
    width: int
    height: int
    style: StainStyle
    xy: F64 = field(compare=False, repr=False)
    area_um2: F64 = field(compare=False, repr=False)
    grade: NDArray[np.int8] = field(compare=False, repr=False)
    dab_od: F64 = field(compare=False, repr=False)
    tissue_mask: NDArray[np.bool_] = field(compare=False, repr=False)
    mask_downsample: int

    @property
    def percent_per_grade(self) -> tuple[float, float, float, float]:
        """Percent of nuclei that are negative, weak, moderate and strong (zeros without nuclei)."""
        pct = self._counts() * (100.0 / max(int(self.grade.size), 1))
        return (float(pct[0]), float(pct[1]), float(pct[2]), float(pct[3]))

    @property
    def labelling_index_pct(self) -> float:
        """Percent of nuclei that are positive (grade >= 1)."""
        return float(100.0 * self._counts()[1:].sum() / max(int(self.grade.size), 1))

    @property
    def h_score(self) -> float:
        """1 x %weak + 2 x %moderate + 3 x %strong (0-300)."""
        return float(100.0 * (self._counts() @ np.arange(4)) / max(int(self.grade.size), 1))

    def _counts(self) -> NDArray[np.int64]:
        out: NDArray[np.int64] = np.bincount(self.grade.astype(np.int64), minlength=4)[:4]
        return out


def ihc_sidecar_paths(slide_path: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """(truth json, nuclei csv, tissue png) next to ``slide_path``."""
    json_path, tissue_path, _ = sidecar_paths(slide_path)
    return json_path, json_path.with_name(f"{Path(slide_path).stem}.nuclei.csv"), tissue_path


def write_ihc_slide(
    path: str | os.PathLike[str],
    *,
    seed: int,
    width_px: int = 4096,
    height_px: int = 3072,
    mpp: float = 0.25,
    positive_fraction: float = 0.2,
    style: StainStyle | None = None,
    variation: float = 1.0,
    mask_downsample: int = 16,
    quality: int | None = None,
    look: str | IHCLook = "reference",
) -> IHCTruth:
    """Write a synthetic H-DAB pyramidal slide and its ground-truth sidecars; return the truth.

    Without ``style``, stain colours are drawn from ``seed`` with ``variation`` times the default
    spread (see :func:`random_ihc_style`). ``style`` must have stains named ``H`` and ``DAB``. ``look`` is the
    drawing style (see :func:`make_ihc_slide`); ``quality`` (JPEG) defaults to the look's.
    """
    slide = make_ihc_slide(
        seed=seed,
        width_px=width_px,
        height_px=height_px,
        mpp=mpp,
        positive_fraction=positive_fraction,
        style=style,
        variation=variation,
        mask_downsample=mask_downsample,
        look=look,
    )
    out = Path(path)
    sid = out.stem
    quality = slide.look.jpeg_quality if quality is None else quality
    write_pyramid(
        out, slide.render, width_px, height_px, mpp, quality=quality, description=f"liposcope synthetic IHC {sid}"
    )
    nuc = slide.nuclei
    truth = IHCTruth(
        sid,
        seed,
        mpp,
        width_px,
        height_px,
        slide.style,
        np.round(np.column_stack([nuc.pts.x, nuc.pts.y]) / mpp, 2),
        np.round(np.pi * nuc.rx * nuc.ry, 3),
        nuc.grade,
        nuc.dab * slide.style.stain("DAB").scale,
        slide.tissue_mask,
        mask_downsample,
    )
    _write_sidecars(out, truth, positive_fraction, slide.look)
    log.debug("wrote %s: %d nuclei, LI %.1f%%, H-score %.0f", out, len(nuc), truth.labelling_index_pct, truth.h_score)
    return truth


def _write_sidecars(slide_path: Path, truth: IHCTruth, positive_fraction: float, look: IHCLook) -> None:
    json_path, csv_path, tissue_path = ihc_sidecar_paths(slide_path)
    write_png(tissue_path, truth.tissue_mask.astype(np.uint8) * 255)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    rows = zip(
        truth.xy[:, 0].tolist(),
        truth.xy[:, 1].tolist(),
        truth.area_um2.tolist(),
        truth.grade.tolist(),
        truth.dab_od.tolist(),
        strict=True,
    )
    writer.writerows(rows)
    with atomic_path(csv_path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    meta: dict[str, Any] = {
        "slide_id": truth.slide_id,
        "kind": "ihc",
        "seed": truth.seed,
        "mpp": truth.mpp,
        "width": truth.width,
        "height": truth.height,
        "mask_downsample": truth.mask_downsample,
        "tissue_mask": tissue_path.name,
        "nuclei": csv_path.name,
        "n_nuclei": int(truth.grade.size),
        "positive_fraction": positive_fraction,
        "labelling_index_pct": truth.labelling_index_pct,
        "h_score": truth.h_score,
        "percent_per_grade": dict(zip(GRADES, truth.percent_per_grade, strict=True)),
        "grade_dab_concentration": dict(zip(GRADES, [list(g) for g in GRADE_DAB], strict=True)),
        "tissue_fraction": float(truth.tissue_mask.mean()),
        "stain_style": truth.style.to_dict(),
        "look": dataclasses.asdict(look),
        "liposcope_version": __version__,
    }
    write_json(json_path, meta)


def load_ihc_truth(slide_path: str | os.PathLike[str]) -> IHCTruth:
    """Read the ground truth written next to ``slide_path`` by :func:`write_ihc_slide`."""
    json_path, csv_path, tissue_path = ihc_sidecar_paths(slide_path)
    if not json_path.is_file() or not csv_path.is_file():
        msg = f"no IHC ground-truth sidecars {json_path.name} / {csv_path.name} next to {slide_path}"
        raise ValueError(msg)
    meta = json.loads(json_path.read_text())
    img = cv2.imread(str(tissue_path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        msg = f"cannot read tissue mask {tissue_path}"
        raise ValueError(msg)
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if tuple(header) != CSV_COLUMNS:
            msg = f"{csv_path}: expected columns {CSV_COLUMNS}, got {header}"
            raise ValueError(msg)
        table = np.array([[float(v) for v in row] for row in reader], np.float64).reshape(-1, len(CSV_COLUMNS))
    return IHCTruth(
        str(meta["slide_id"]),
        int(meta["seed"]),
        float(meta["mpp"]),
        int(meta["width"]),
        int(meta["height"]),
        StainStyle.from_dict(meta["stain_style"]),
        table[:, :2].copy(),
        table[:, 2].copy(),
        table[:, 3].astype(np.int8),
        table[:, 4].copy(),
        img > 127,
        int(meta["mask_downsample"]),
    )
