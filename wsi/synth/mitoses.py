"""Mitotic figures and look-alikes planted in synthetic H&E slides, with their positions as ground truth.

Figures are drawn in µm from per-object seeds, so every region renders them identically. Mitotic
shapes: metaphase plates, prometaphase clumps and anaphase pairs (the training shapes), and
telophase pairs, polar-view rings and tripolar (atypical) figures, kept apart for testing on
shapes a detector never saw. Look-alikes: pyknotic nuclei, apoptotic bodies, lymphocytes and
smooth hyperchromatic spindle nuclei, as dark as the figures; on pleomorphic (PLPS) slides also every
lipoblast, whose scalloped hyperchromatic nucleus is that texture's commonest mimic (shape ``lipoblast``).
:func:`write_mitosis_slide` writes the slide, the usual sidecars and ``<slide_id>.mitoses.csv``
(``slide_id,x,y,label,shape``, level-0 px; label ``mitosis`` or ``non-mitosis``).
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from liposcope.io import atomic_path
from wsi.synth.draw import Region, as_float, blur, draw_blobs, draw_segments
from wsi.synth.fields import Points, value_noise
from wsi.synth.he import PleomorphicTexture
from wsi.synth.slide import SynthSlide, Truth, make_slide, write_synth_slide
from wsi.synth.structures import BLUR_UM, Layers

MITOTIC_SHAPES = ("metaphase", "prometaphase", "anaphase", "telophase", "ring", "tripolar")
LOOKALIKE_SHAPES = ("pyknotic", "apoptotic", "lymphocyte", "hyperchromatic")
SHAPES = MITOTIC_SHAPES + LOOKALIKE_SHAPES
TRAIN_SHAPES = ("metaphase", "prometaphase", "anaphase", *LOOKALIKE_SHAPES)
UNSEEN_SHAPES = ("telophase", "ring", "tripolar")
HPF10_MM2 = 2.376  # 10 high-power fields at field number 22 (DOMAIN.md)
CHROMATIN_OD = 3.2  # H concentration of chromatin drawn at 255
_REACH_UM = 16.0  # farthest a drawn object extends from its centre
_SPACING_UM = 20.0  # minimum distance between planted objects
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Figures:
    """Planted objects: centres (µm), shape index into :data:`SHAPES`, orientation and chromatin darkness."""

    x: F64
    y: F64
    shape: NDArray[np.int64]
    angle: F64
    od: F64
    seed: int

    @property
    def mitotic(self) -> NDArray[np.bool_]:
        out: NDArray[np.bool_] = self.shape < len(MITOTIC_SHAPES)
        return out

    def __len__(self) -> int:
        return int(self.x.size)

    def apply(self, region: Region, layers: Layers) -> Layers:
        """Paint the objects near ``region`` over the tissue ``layers`` (cropped to the region)."""
        x0, y0, x1, y1 = region.bounds_um(_REACH_UM)
        near = np.flatnonzero((self.x > x0) & (self.x < x1) & (self.y > y0) & (self.y < y1))
        if near.size == 0:
            return layers
        pad = math.ceil(3.0 / region.mpp)
        canvas_region = Region(region.x0, region.y0, region.w, region.h, region.mpp, pad)
        shape = canvas_region.shape
        chromatin, cover, eosin = (np.zeros(shape, np.uint8) for _ in range(3))
        for k in near:
            self._paint_one(int(k), canvas_region, chromatin, cover, eosin)
        grain = value_noise(self.seed + 5, canvas_region.xs_um(), canvas_region.ys_um(), 0.6)
        grain *= np.float32(0.3)
        grain += np.float32(0.85)
        h = blur(as_float(chromatin, CHROMATIN_OD) * grain, BLUR_UM, region.mpp)
        keep = blur(np.float32(1.0) - as_float(cover), BLUR_UM, region.mpp)
        e = blur(as_float(eosin), BLUR_UM, region.mpp)
        h, keep, e = (np.ascontiguousarray(canvas_region.crop(a)) for a in (h, keep, e))
        return Layers(layers.h * keep + h, layers.e * keep + e)

    def _paint_one(
        self, k: int, region: Region, chromatin: NDArray[np.uint8], cover: NDArray[np.uint8], eosin: NDArray[np.uint8]
    ) -> None:
        rng = np.random.default_rng([self.seed, k])
        name = SHAPES[int(self.shape[k])]
        bodies, segments = _DRAW[name](rng)
        ca, sa = math.cos(float(self.angle[k])), math.sin(float(self.angle[k]))
        cx, cy = float(self.x[k]), float(self.y[k])
        for bx, by, rx, ry, cov, e_od in bodies:
            pts = Points(
                np.array([cx + bx * ca - by * sa]), np.array([cy + bx * sa + by * ca]), np.array([k], np.uint64), 0
            )
            one = np.ones(1)
            angle = np.array([float(self.angle[k])])
            draw_blobs(
                cover, region, pts, rx_um=rx * one, ry_um=ry * one, angle=angle, value=255 * cov * one, irregular=0.15
            )
            draw_blobs(
                eosin, region, pts, rx_um=rx * one, ry_um=ry * one, angle=angle, value=255 * e_od * one, irregular=0.15
            )
        if len(segments) == 0:
            return
        seg = np.asarray(segments, np.float64)
        world = np.empty((len(seg), 4))
        for a in (0, 2):
            world[:, a] = cx + seg[:, a] * ca - seg[:, a + 1] * sa
            world[:, a + 1] = cy + seg[:, a] * sa + seg[:, a + 1] * ca
        value = np.clip(float(self.od[k]) * seg[:, 5] / CHROMATIN_OD * 255.0, 0, 255)
        draw_segments(chromatin, region, world, seg[:, 4], value)


# -- shapes: (cell bodies [(x, y, rx, ry, cover, eosin OD)], chromatin segments [(x1, y1, x2, y2, width, darkness)])
Body = tuple[float, float, float, float, float, float]
Segment = tuple[float, float, float, float, float, float]
Drawing = tuple[list[Body], list[Segment]]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _mitotic_body(rng: np.random.Generator, rx: float, ry: float, x: float = 0.0) -> Body:
    """A rounded mitotic cell: the tissue underneath mostly cleared, pale cytoplasm."""
    return (x, 0.0, rx, ry, _u(rng, 0.75, 0.95), _u(rng, 0.08, 0.3))


def _bar(
    rng: np.random.Generator, x: float, y: float, length: float, width: float, hairs: int, side: int = 0
) -> list[Segment]:
    """A chromosome plate along x centred at (x, y): a wavy thick bar with short chromosome arms
    sticking out (both sides, or only ``side`` = ±1)."""
    n = 4
    xs = np.linspace(x - length / 2, x + length / 2, n + 1)
    ys = y + rng.normal(0.0, 0.25, n + 1)
    out: list[Segment] = [(xs[i], ys[i], xs[i + 1], ys[i + 1], width, 1.0) for i in range(n)]
    for _ in range(hairs):
        t = _u(rng, x - length / 2, x + length / 2)
        s = side if side else (1 if rng.random() < 0.5 else -1)
        theta = s * math.pi / 2 + rng.normal(0.0, 0.45)
        arm = _u(rng, 0.9, 2.2)
        y0 = y + s * width * 0.3
        out.append((t, y0, t + arm * math.cos(theta), y0 + arm * math.sin(theta), _u(rng, 0.5, 0.9), _u(rng, 0.8, 1.0)))
    return out


def _clump(rng: np.random.Generator, x: float, radius: float, rods: int) -> list[Segment]:
    """Condensed chromosomes: short thick rods in a ball."""
    out: list[Segment] = []
    for _ in range(rods):
        r, phi, theta = radius * math.sqrt(rng.random()), _u(rng, 0, 2 * math.pi), _u(rng, 0, math.pi)
        px, py, half = x + r * math.cos(phi), r * math.sin(phi), _u(rng, 0.6, 1.4)
        dx, dy = half * math.cos(theta), half * math.sin(theta)
        out.append((px - dx, py - dy, px + dx, py + dy, _u(rng, 0.7, 1.2), _u(rng, 0.85, 1.0)))
    return out


def _metaphase(rng: np.random.Generator) -> Drawing:
    length, width = _u(rng, 7.0, 11.0), _u(rng, 1.6, 2.6)
    return [_mitotic_body(rng, length / 2 + _u(rng, 1.5, 3.0), _u(rng, 4.5, 6.5))], _bar(
        rng, 0.0, 0.0, length, width, int(rng.integers(12, 24))
    )


def _prometaphase(rng: np.random.Generator) -> Drawing:
    radius = _u(rng, 2.5, 4.5)
    body = _mitotic_body(rng, radius + _u(rng, 2.0, 3.5), radius + _u(rng, 1.5, 3.0))
    return [body], _clump(rng, 0.0, radius, int(rng.integers(12, 20)))


def _anaphase(rng: np.random.Generator) -> Drawing:
    gap, length, width = _u(rng, 3.5, 7.0), _u(rng, 6.0, 9.0), _u(rng, 1.3, 2.0)
    hairs = int(rng.integers(6, 12))
    segments = _bar(rng, 0.0, -gap / 2, length, width, hairs, -1) + _bar(rng, 0.0, gap / 2, length, width, hairs, 1)
    body = (
        0.0,
        0.0,
        gap / 2 + _u(rng, 3.0, 4.5),
        length / 2 + _u(rng, 1.0, 2.5),
        _u(rng, 0.75, 0.95),
        _u(rng, 0.08, 0.3),
    )
    return [body], [(s[1], s[0], s[3], s[2], s[4], s[5]) for s in segments]  # plates across the spindle axis


def _telophase(rng: np.random.Generator) -> Drawing:
    half = _u(rng, 4.5, 6.5)
    radius = _u(rng, 2.0, 3.0)
    bodies = [
        _mitotic_body(rng, radius + 2.5, radius + 2.0, -half),
        _mitotic_body(rng, radius + 2.5, radius + 2.0, half),
    ]
    rods = int(rng.integers(8, 13))
    return bodies, _clump(rng, -half, radius, rods) + _clump(rng, half, radius, rods)


def _ring(rng: np.random.Generator) -> Drawing:
    radius = _u(rng, 2.8, 4.0)
    out: list[Segment] = []
    for _ in range(int(rng.integers(14, 22))):
        phi, r = _u(rng, 0, 2 * math.pi), radius + rng.normal(0.0, 0.3)
        inner, outer = r - _u(rng, 0.6, 1.2), r + _u(rng, 0.6, 1.2)
        tilt = rng.normal(0.0, 0.3)
        out.append(
            (
                inner * math.cos(phi),
                inner * math.sin(phi),
                outer * math.cos(phi + tilt / outer),
                outer * math.sin(phi + tilt / outer),
                _u(rng, 0.7, 1.1),
                _u(rng, 0.85, 1.0),
            )
        )
    return [_mitotic_body(rng, radius + _u(rng, 2.5, 3.5), radius + _u(rng, 2.0, 3.0))], out


def _tripolar(rng: np.random.Generator) -> Drawing:
    out: list[Segment] = []
    arm, width = _u(rng, 3.5, 5.5), _u(rng, 1.4, 2.2)
    for j in range(3):
        phi = j * 2 * math.pi / 3 + rng.normal(0.0, 0.25)
        c, s = math.cos(phi), math.sin(phi)
        for x1, y1, x2, y2, w, d in _bar(rng, arm / 2, 0.0, arm, width, int(rng.integers(4, 9))):
            out.append((x1 * c - y1 * s, x1 * s + y1 * c, x2 * c - y2 * s, x2 * s + y2 * c, w, d))
    return [_mitotic_body(rng, arm + _u(rng, 1.5, 3.0), arm + _u(rng, 1.0, 2.5))], out


def _disc(x: float, y: float, r: float, darkness: float = 1.0) -> Segment:
    return (x, y, x, y, 2.0 * r, darkness)


def _pyknotic(rng: np.random.Generator) -> Drawing:
    r = _u(rng, 1.6, 3.0)
    body = (0.0, 0.0, r + _u(rng, 1.5, 3.5), r + _u(rng, 1.2, 3.0), _u(rng, 0.8, 0.95), _u(rng, 0.45, 0.9))
    halo = (0.0, 0.0, body[2] + _u(rng, 0.8, 2.0), body[3] + _u(rng, 0.8, 2.0), _u(rng, 0.7, 0.95), 0.0)
    return [halo, body], [_disc(rng.normal(0, 0.3), rng.normal(0, 0.3), r)]


def _apoptotic(rng: np.random.Generator) -> Drawing:
    bodies = _pyknotic(rng)[0]
    spread = _u(rng, 1.2, 2.8)
    pieces = [
        _disc(rng.normal(0, spread / 2), rng.normal(0, spread / 2), _u(rng, 0.6, 1.5), _u(rng, 0.85, 1.0))
        for _ in range(int(rng.integers(2, 6)))
    ]
    return bodies, pieces


def _lymphocyte(rng: np.random.Generator) -> Drawing:
    r = _u(rng, 2.6, 3.6)
    body = (0.0, 0.0, r + _u(rng, 0.3, 1.0), r + _u(rng, 0.3, 1.0), _u(rng, 0.6, 0.95), _u(rng, 0.05, 0.25))
    lobes = [_disc(rng.normal(0, 0.25), rng.normal(0, 0.25), r * _u(rng, 0.85, 1.0)) for _ in range(3)]
    return [body], lobes


def _hyperchromatic(rng: np.random.Generator) -> Drawing:
    length, width = _u(rng, 6.0, 12.0), _u(rng, 2.2, 4.0)
    bend = rng.normal(0.0, 0.6)
    xs = np.linspace(-(length - width) / 2, (length - width) / 2, 4)
    ys = bend * (xs / max(length, 1.0)) ** 2 * 4
    segments = [(xs[i], ys[i], xs[i + 1], ys[i + 1], width, 1.0) for i in range(3)]
    return [(0.0, 0.0, length / 2 + 1.0, width / 2 + 1.5, _u(rng, 0.3, 0.8), _u(rng, 0.1, 0.4))], segments


_DRAW = {
    "metaphase": _metaphase,
    "prometaphase": _prometaphase,
    "anaphase": _anaphase,
    "telophase": _telophase,
    "ring": _ring,
    "tripolar": _tripolar,
    "pyknotic": _pyknotic,
    "apoptotic": _apoptotic,
    "lymphocyte": _lymphocyte,
    "hyperchromatic": _hyperchromatic,
}


# -- placement ---------------------------------------------------------------------------------------


def plant_figures(
    rng: np.random.Generator,
    allowed: NDArray[np.bool_],
    cell_um: float,
    *,
    n_mitotic: int,
    n_lookalike: int,
    shapes: tuple[str, ...],
    seed: int,
) -> Figures:
    """Place objects in the ``allowed`` cells (a boolean grid of ``cell_um`` cells), clustered by a smooth
    random density so that some areas are hotspots; mitotic shapes and look-alikes are drawn from ``shapes``."""
    mitotic = [SHAPES.index(s) for s in shapes if s in MITOTIC_SHAPES]
    lookalike = [SHAPES.index(s) for s in shapes if s in LOOKALIKE_SHAPES]
    if (n_mitotic and not mitotic) or (n_lookalike and not lookalike) or any(s not in SHAPES for s in shapes):
        msg = f"shapes {shapes} must name at least one mitotic and one look-alike shape of {SHAPES}"
        raise ValueError(msg)
    rows, cols = np.nonzero(allowed)
    if rows.size == 0:
        msg = "no room for figures: the allowed area is empty"
        raise ValueError(msg)
    field = cv2.GaussianBlur(rng.standard_normal(allowed.shape), (0, 0), 40.0)[rows, cols]
    std = float(field.std())
    density = np.exp(1.5 * (field - field.mean()) / std) if std > 1e-6 else np.ones(rows.size)
    total = n_mitotic + n_lookalike
    xy = np.empty((0, 2))
    for _ in range(20):  # rejection rounds until ``total`` points keep the minimum spacing
        pick = rng.choice(rows.size, size=4 * total + 16, p=density / density.sum())
        cand = np.stack([cols[pick] + rng.random(pick.size), rows[pick] + rng.random(pick.size)], axis=1) * cell_um
        for p in cand:
            if len(xy) >= total:
                break
            if len(xy) == 0 or np.min(np.hypot(*(xy - p).T)) >= _SPACING_UM:
                xy = np.vstack([xy, p])
        if len(xy) >= total:
            break
    is_mitotic = np.zeros(len(xy), bool)
    is_mitotic[rng.permutation(len(xy))[: min(n_mitotic, len(xy))]] = True
    shape = np.where(is_mitotic, rng.choice(mitotic or [0], len(xy)), rng.choice(lookalike or [0], len(xy)))
    od = rng.uniform(1.8, 2.8, len(xy))
    return Figures(xy[:, 0], xy[:, 1], shape.astype(np.int64), rng.uniform(0, 2 * math.pi, len(xy)), od, seed)


@dataclass(frozen=True)
class MitosisTruth:
    """Planted objects of one slide in level-0 px: ``xy`` (N × 2), ``mitotic`` (N) and shape names."""

    slide_id: str
    xy: F64
    mitotic: NDArray[np.bool_]
    shapes: tuple[str, ...]


def mitosis_truth_path(slide_path: str | os.PathLike[str]) -> Path:
    """``<slide_id>.mitoses.csv`` next to the slide."""
    p = Path(slide_path)
    return p.with_name(f"{p.stem}.mitoses.csv")


def write_mitosis_slide(
    path: str | os.PathLike[str],
    *,
    label: str,
    seed: int,
    width_px: int,
    height_px: int,
    per_10hpf: float,
    mpp: float = 0.25,
    lookalike_ratio: float = 1.0,
    shapes: tuple[str, ...] = TRAIN_SHAPES,
    stain_variation: float = 1.0,
) -> tuple[Truth, MitosisTruth]:
    """A synthetic H&E slide with ``per_10hpf`` mitotic figures per 10 HPF (2.376 mm²) of the tissue they
    may lie in (the dedifferentiated region on DDLPS slides), ``lookalike_ratio`` times as many look-alikes."""
    slide = make_slide(
        label=label, seed=seed, width_px=width_px, height_px=height_px, mpp=mpp, stain_variation=stain_variation
    )
    rng = np.random.default_rng([seed, 0x3170])
    cell_um = 8.0
    xs = np.asarray((np.arange(math.ceil(width_px * mpp / cell_um)) + 0.5) * cell_um, np.float64)
    ys = np.asarray((np.arange(math.ceil(height_px * mpp / cell_um)) + 0.5) * cell_um, np.float64)
    in_tissue = slide.tissue.alpha(xs, ys) >= 1.0
    allowed = in_tissue.copy()
    if slide.dediff is not None:
        allowed &= slide.dediff.alpha(xs, ys) >= 1.0
    margin = math.ceil(_REACH_UM / cell_um)
    allowed[:margin], allowed[-margin:], allowed[:, :margin], allowed[:, -margin:] = False, False, False, False
    area_mm2 = float(allowed.sum()) * (cell_um / 1000.0) ** 2
    n_mitotic = int(rng.poisson(per_10hpf * area_mm2 / HPF10_MM2))
    n_lookalike = int(rng.poisson(max(lookalike_ratio * per_10hpf, 4.0) * area_mm2 / HPF10_MM2))
    figures = plant_figures(
        rng, allowed, cell_um, n_mitotic=n_mitotic, n_lookalike=n_lookalike, shapes=shapes, seed=seed + 99
    )
    truth = write_synth_slide(path, replace(slide, figures=figures))
    planted = np.stack([figures.x, figures.y], axis=1)
    mimics = _lipoblasts(slide, in_tissue, cell_um, planted)
    found = MitosisTruth(
        truth.slide_id,
        np.concatenate([planted, mimics]) / mpp,
        np.concatenate([figures.mitotic, np.zeros(len(mimics), bool)]),
        tuple(SHAPES[s] for s in figures.shape) + ("lipoblast",) * len(mimics),
    )
    _write_truth_csv(mitosis_truth_path(path), found)
    return truth, found


def _lipoblasts(slide: SynthSlide, in_tissue: NDArray[np.bool_], cell_um: float, planted_um: F64) -> F64:
    """Centres (µm) of a pleomorphic slide's lipoblasts inside the tissue (``in_tissue``: a grid of ``cell_um``
    cells), away from the slide edge and from planted objects; none for other textures."""
    if not isinstance(slide.texture, PleomorphicTexture):
        return np.empty((0, 2))
    w_um, h_um = slide.width * slide.mpp, slide.height * slide.mpp
    cells = slide.texture.lipoblast_cells((0.0, 0.0, w_um, h_um))
    xy: F64 = np.stack([cells.x, cells.y], axis=1)
    xy = xy[(xy >= _REACH_UM).all(axis=1) & (xy[:, 0] <= w_um - _REACH_UM) & (xy[:, 1] <= h_um - _REACH_UM)]
    xy = xy[in_tissue[(xy[:, 1] // cell_um).astype(int), (xy[:, 0] // cell_um).astype(int)]]
    if len(planted_um) and len(xy):
        xy = xy[cKDTree(planted_um).query(xy)[0] >= _SPACING_UM]
    return xy


def _write_truth_csv(path: Path, truth: MitosisTruth) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["slide_id", "x", "y", "label", "shape"])
    for (x, y), m, s in zip(truth.xy, truth.mitotic, truth.shapes, strict=True):
        writer.writerow([truth.slide_id, f"{x:.1f}", f"{y:.1f}", "mitosis" if m else "non-mitosis", s])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def load_mitosis_truth(slide_path: str | os.PathLike[str]) -> MitosisTruth:
    """Read ``<slide_id>.mitoses.csv`` written by :func:`write_mitosis_slide`."""
    path = mitosis_truth_path(slide_path)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    xy = np.array([[float(r["x"]), float(r["y"])] for r in rows], np.float64).reshape(-1, 2)
    mitotic = np.array([r["label"] == "mitosis" for r in rows], bool)
    return MitosisTruth(Path(slide_path).stem, xy, mitotic, tuple(r["shape"] for r in rows))
