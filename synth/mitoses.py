"""Mitotic figures and look-alikes planted in synthetic H&E slides, with their positions as ground truth.

Figures are drawn in µm from per-object seeds, so every region renders them identically. Their shapes come in
independent families (:mod:`liposcope.synth.mitosis_shapes`): the packaged detector trains on ``prophase``,
``metaphase`` and ``anaphase`` (:data:`TRAIN_FAMILIES`); ``telophase`` and ``atypical`` figures are kept apart
for testing on families it never saw. Every object is restyled at random (size, roughness, texture, halo,
darkness), and each slide draws its own optical blur and chromatin grain. Look-alikes: pyknotic nuclei,
apoptotic bodies, lymphocytes, hyperchromatic nuclei and karyorrhectic debris, as dark as the figures; on
pleomorphic (PLPS) slides also every lipoblast, whose scalloped hyperchromatic nucleus is that texture's
commonest mimic (shape ``lipoblast``).
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
from liposcope.synth.draw import Region, as_float, blur, draw_blobs, draw_segments
from liposcope.synth.fields import Points, value_noise
from liposcope.synth.he import PleomorphicTexture
from liposcope.synth.mitosis_shapes import FAMILIES, LOOKALIKE_SHAPES, MITOTIC_SHAPES, SHAPES, draw_object, family_of
from liposcope.synth.slide import SynthSlide, Truth, make_slide, write_synth_slide
from liposcope.synth.structures import BLUR_UM, Layers

__all__ = ["FAMILIES", "LOOKALIKE_SHAPES", "MITOTIC_SHAPES", "SHAPES", "family_of"]

TRAIN_FAMILIES = ("prophase", "metaphase", "anaphase")
HELD_OUT_FAMILIES = ("telophase", "atypical")


def family_shapes(families: tuple[str, ...]) -> tuple[str, ...]:
    """The mitotic shapes of ``families`` and every look-alike shape."""
    return tuple(s for f in families for s in FAMILIES[f]) + LOOKALIKE_SHAPES


TRAIN_SHAPES = family_shapes(TRAIN_FAMILIES)
UNSEEN_SHAPES = tuple(s for f in HELD_OUT_FAMILIES for s in FAMILIES[f])
HPF10_MM2 = 2.376  # 10 high-power fields at field number 22 (DOMAIN.md)
CHROMATIN_OD = 3.2  # H concentration of chromatin drawn at 255
_REACH_UM = 16.0  # farthest a drawn object extends from its centre
_SPACING_UM = 20.0  # minimum distance between planted objects
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Figures:
    """Planted objects: centres (µm), shape index into :data:`SHAPES`, orientation and chromatin darkness;
    the slide's optical blur (µm) and chromatin grain amplitude."""

    x: F64
    y: F64
    shape: NDArray[np.int64]
    angle: F64
    od: F64
    seed: int
    blur_um: float = BLUR_UM
    grain: float = 0.3

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
        grain *= np.float32(self.grain)
        grain += np.float32(1.0 - self.grain / 2)
        h = blur(as_float(chromatin, CHROMATIN_OD) * grain, self.blur_um, region.mpp)
        keep = blur(np.float32(1.0) - as_float(cover), self.blur_um, region.mpp)
        e = blur(as_float(eosin), self.blur_um, region.mpp)
        h, keep, e = (np.ascontiguousarray(canvas_region.crop(a)) for a in (h, keep, e))
        return Layers(layers.h * keep + h, layers.e * keep + e)

    def _paint_one(
        self, k: int, region: Region, chromatin: NDArray[np.uint8], cover: NDArray[np.uint8], eosin: NDArray[np.uint8]
    ) -> None:
        rng = np.random.default_rng([self.seed, k])
        name = SHAPES[int(self.shape[k])]
        (bodies, segments), rough = draw_object(name, rng)
        ca, sa = math.cos(float(self.angle[k])), math.sin(float(self.angle[k]))
        cx, cy = float(self.x[k]), float(self.y[k])
        for bx, by, rx, ry, cov, e_od in bodies:
            pts = Points(
                np.array([cx + bx * ca - by * sa]), np.array([cy + bx * sa + by * ca]), np.array([k], np.uint64), 0
            )
            one = np.ones(1)
            angle = np.array([float(self.angle[k])])
            draw_blobs(
                cover, region, pts, rx_um=rx * one, ry_um=ry * one, angle=angle, value=255 * cov * one, irregular=rough
            )
            draw_blobs(
                eosin, region, pts, rx_um=rx * one, ry_um=ry * one, angle=angle, value=255 * e_od * one, irregular=rough
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
    od = rng.uniform(1.1, 3.0, len(xy))  # faint to very dark chromatin, figures and look-alikes alike
    angle = rng.uniform(0, 2 * math.pi, len(xy))
    return Figures(
        xy[:, 0], xy[:, 1], shape.astype(np.int64), angle, od, seed, rng.uniform(0.25, 0.8), rng.uniform(0.1, 0.6)
    )


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
    write_truth_csv(mitosis_truth_path(path), found)
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


def write_truth_csv(path: Path, truth: MitosisTruth) -> None:
    """``slide_id,x,y,label,shape`` rows of ``truth`` (level-0 px), written atomically."""
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
