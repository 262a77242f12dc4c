"""An independent drawing process for mitotic figures, for evaluation only: never train or tune on it.

It shares no drawing code with :mod:`liposcope.synth.mitosis_shapes`. Objects are continuous fields evaluated per pixel:
chromatin is a sum of Gaussian grains pushed through a soft threshold (irregular clumps with crisp edges),
figures sit in a pale clear halo, and look-alikes are hard-edged pyknotic discs, speckled lymphocytes (often
crowded) and eosinophilic apoptotic bodies with round fragments. Figures: ``clump`` (prophase/prometaphase),
``bar`` (metaphase) and ``pair`` (anaphase). Objects are spread uniformly over the tissue, not clustered.
:func:`write_blind_slide` writes the slide and ``<slide_id>.mitoses.csv`` like ``write_mitosis_slide``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from liposcope.synth.draw import Region
from liposcope.synth.mitoses import HPF10_MM2, MitosisTruth, mitosis_truth_path, write_truth_csv
from liposcope.synth.slide import Truth, make_slide, write_synth_slide
from liposcope.synth.structures import Layers

BLIND_FIGURES = ("clump", "bar", "pair")
BLIND_LOOKALIKES = ("pyknotic", "lymphocyte", "apoptotic")
_REACH_UM = 14.0
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class BlindObject:
    """One object: centre (µm), kind, orientation and its Gaussian grains (x, y, sigma, weight; µm, rotated)."""

    x: float
    y: float
    kind: str
    grains: F64
    darkness: float
    halo_um: tuple[float, float]
    eosin_um: float
    angle: float


def _grains(rng: np.random.Generator, kind: str) -> tuple[F64, float, tuple[float, float], float]:
    """Grains, darkness, halo semi-axes and eosinophilic body radius of a ``kind``."""
    s = rng.uniform(0.8, 1.25)
    if kind == "clump":
        n, r = int(rng.integers(8, 18)), rng.uniform(2.0, 4.0) * s
        xy = rng.normal(0, r / 2, (n, 2))
        return _g(xy, rng.uniform(0.45, 0.9, n)), rng.uniform(1.4, 2.8), (r + 3, r + 2.5), 0.0
    if kind in ("bar", "pair"):
        length = rng.uniform(6.0, 11.0) * s
        n = int(rng.integers(10, 20))
        xy = np.stack([rng.uniform(-length / 2, length / 2, n), rng.normal(0, 0.5, n)], 1)
        if kind == "pair":
            gap = rng.uniform(2.0, 4.0) * s
            shift = np.array([0.0, gap])
            xy = np.concatenate([xy + shift, xy * np.array([1.0, -1.0]) - shift])
            return _g(xy, rng.uniform(0.45, 0.8, len(xy))), rng.uniform(1.4, 2.6), (length / 2 + 2.5, gap + 3.5), 0.0
        return _g(xy, rng.uniform(0.5, 0.9, n)), rng.uniform(1.4, 2.8), (length / 2 + 2.5, 4.0), 0.0
    if kind == "pyknotic":
        r = rng.uniform(1.5, 3.0) * s
        return np.array([[0.0, 0.0, -r, 1.0]]), rng.uniform(2.0, 3.2), (r + 1.5, r + 1.5), r + rng.uniform(1.0, 2.5)
    if kind == "lymphocyte":
        k = 1 if rng.random() < 0.5 else int(rng.integers(2, 5))
        centres = np.concatenate([[[0.0, 0.0]], rng.normal(0, 4.0, (k - 1, 2))])
        rows = [[cx, cy, -rng.uniform(2.3, 3.4), 1.0] for cx, cy in centres]
        return np.array(rows), rng.uniform(1.5, 2.6), (0.0, 0.0), 0.0
    n, r = int(rng.integers(1, 5)), rng.uniform(3.0, 5.5) * s
    xy = rng.normal(0, r / 3, (n, 2))
    rows = [[x, y, -rng.uniform(0.6, 1.5), 1.0] for x, y in xy]
    return np.array(rows), rng.uniform(1.8, 3.0), (r + 1.0, r + 1.0), r


def _g(xy: F64, sigma: F64) -> F64:
    return np.concatenate([xy, sigma[:, None], np.ones((len(xy), 1))], axis=1)


@dataclass(frozen=True)
class BlindFigures:
    """The objects of one slide, painted per pixel (region-independent)."""

    objects: tuple[BlindObject, ...]

    def apply(self, region: Region, layers: Layers) -> Layers:
        """Paint the objects near ``region`` over ``layers``."""
        grid = Region(region.x0, region.y0, region.w, region.h, region.mpp, 0)
        xs, ys = grid.xs_um(), grid.ys_um()
        h, e = layers.h.copy(), layers.e.copy()
        for ob in self.objects:
            cols = np.flatnonzero(np.abs(xs - ob.x) < _REACH_UM)
            rows = np.flatnonzero(np.abs(ys - ob.y) < _REACH_UM)
            if cols.size and rows.size:
                win = np.ix_(rows, cols)
                h[win], e[win] = _paint(ob, xs[cols], ys[rows], h[win], e[win])
        return Layers(h, e)


def _paint(ob: BlindObject, xs: F64, ys: F64, h: NDArray[np.float32], e: NDArray[np.float32]) -> tuple[F64, F64]:
    dx, dy = np.meshgrid(xs - ob.x, ys - ob.y)
    c, s = math.cos(ob.angle), math.sin(ob.angle)
    u, v = dx * c + dy * s, -dx * s + dy * c
    density = np.zeros_like(u)
    for gx, gy, sigma, w in ob.grains:
        d2 = (u - gx) ** 2 + (v - gy) ** 2
        if sigma < 0:  # a hard-edged disc of radius -sigma
            density = np.maximum(density, w / (1 + np.exp((np.sqrt(d2) + sigma) / 0.25)))
        else:
            density += w * np.exp(-d2 / (2 * sigma**2))
    chromatin = density if ob.kind in BLIND_LOOKALIKES else 1 / (1 + np.exp(-(density - 0.6) / 0.12))
    if ob.kind == "lymphocyte":
        chromatin = chromatin * (0.85 + 0.15 * np.cos(3.1 * u) * np.cos(2.7 * v))
    halo = np.zeros_like(u)
    if ob.halo_um[0] > 0:
        r = np.hypot(u / ob.halo_um[0], v / ob.halo_um[1])
        halo = 0.92 / (1 + np.exp((r - 1) / 0.08))
    body = 1 / (1 + np.exp((np.hypot(u, v) - ob.eosin_um) / 0.3)) if ob.eosin_um > 0 else 0.0
    h_out = h * (1 - halo) * (1 - chromatin) + ob.darkness * chromatin
    e_out = e * (1 - halo) + 0.9 * body
    return h_out, e_out


def write_blind_slide(
    path: str | os.PathLike[str],
    *,
    label: str,
    seed: int,
    width_px: int,
    height_px: int,
    per_10hpf: float,
    mpp: float = 0.25,
    lookalike_ratio: float = 1.0,
    stain_variation: float = 1.0,
) -> tuple[Truth, MitosisTruth]:
    """A synthetic H&E slide with ``per_10hpf`` independently drawn figures per 10 HPF of tissue (the
    dedifferentiated region on DDLPS) and ``lookalike_ratio`` times as many look-alikes."""
    slide = make_slide(
        label=label, seed=seed, width_px=width_px, height_px=height_px, mpp=mpp, stain_variation=stain_variation
    )
    rng = np.random.default_rng([seed, 0xB11D])
    w_um, h_um = width_px * mpp, height_px * mpp
    xs, ys = np.arange(0.0, w_um, 4.0) + 2.0, np.arange(0.0, h_um, 4.0) + 2.0
    inside = slide.tissue.alpha(xs, ys) >= 1.0
    if slide.dediff is not None:
        inside &= slide.dediff.alpha(xs, ys) >= 1.0
    pts = rng.uniform([_REACH_UM, _REACH_UM], [w_um - _REACH_UM, h_um - _REACH_UM], (40_000, 2))
    ok = inside[(pts[:, 1] // 4.0).astype(int), (pts[:, 0] // 4.0).astype(int)]
    area_mm2 = float(inside[4:-4, 4:-4].mean()) * (w_um - 2 * _REACH_UM) * (h_um - 2 * _REACH_UM) / 1e6
    n_fig = int(rng.poisson(per_10hpf * area_mm2 / HPF10_MM2))
    n_look = int(rng.poisson(max(lookalike_ratio * per_10hpf, 4.0) * area_mm2 / HPF10_MM2))
    chosen: list[F64] = []
    for p in pts[ok]:
        if len(chosen) >= n_fig + n_look:
            break
        if not chosen or np.min(np.hypot(*(np.array(chosen) - p).T)) >= 18.0:
            chosen.append(p)
    kinds = [str(rng.choice(BLIND_FIGURES)) for _ in range(min(n_fig, len(chosen)))]
    kinds += [str(rng.choice(BLIND_LOOKALIKES)) for _ in range(len(chosen) - len(kinds))]
    objects = []
    for (x, y), kind in zip(chosen, kinds, strict=True):
        grains, dark, halo, eos = _grains(rng, kind)
        objects.append(BlindObject(float(x), float(y), kind, grains, dark, halo, eos, float(rng.uniform(0, math.pi))))
    truth = write_synth_slide(path, replace(slide, figures=BlindFigures(tuple(objects))))
    xy = np.array(chosen, np.float64).reshape(-1, 2) / mpp
    found = MitosisTruth(truth.slide_id, xy, np.array([k in BLIND_FIGURES for k in kinds], bool), tuple(kinds))
    write_truth_csv(mitosis_truth_path(path), found)
    return truth, found
