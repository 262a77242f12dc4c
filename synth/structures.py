"""Shared tissue structures: drawing canvases, Voronoi ridges, nuclei and lipoblasts.

Building blocks of the subtype textures in :mod:`liposcope.synth.he`; all sizes in µm.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import QhullError, Voronoi

from liposcope.synth.draw import Region, as_float, blur, draw_blobs, draw_discs
from liposcope.synth.fields import FloatArray, Points, hash64, hash_uniform, value_noise

NUCLEUS_OD = 1.6  # H concentration of a nucleus drawn at value 255
CYTO_OD = 1.0  # E concentration of cytoplasm/collagen drawn at value 255
BLUR_UM = 0.35  # optical blur sigma
REACH_UM = 30.0  # largest distance a drawn object extends from its seed point


@dataclass(frozen=True)
class Layers:
    """Stain concentration maps (same shape): haematoxylin ``h`` and eosin ``e``."""

    h: FloatArray
    e: FloatArray

    def as_dict(self) -> dict[str, FloatArray]:
        """Mapping for :func:`liposcope.synth.stain.render_rgb`."""
        return {"H": self.h, "E": self.e}


class Texture(Protocol):
    """Anything that renders concentration maps for a padded region."""

    def render(self, region: Region) -> Layers:
        """Concentrations on the padded canvas of ``region``."""
        ...


@dataclass
class Paint:
    """uint8 drawing canvases: nuclei (H), cytoplasm/collagen (E) and clear vacuoles."""

    region: Region
    nuclei: NDArray[np.uint8] = field(init=False)
    cyto: NDArray[np.uint8] = field(init=False)
    clear: NDArray[np.uint8] = field(init=False)

    def __post_init__(self) -> None:
        self.nuclei = np.zeros(self.region.shape, np.uint8)
        self.cyto = np.zeros(self.region.shape, np.uint8)
        self.clear = np.zeros(self.region.shape, np.uint8)

    def finish(self, seed: int, base_h: FloatArray, base_e: FloatArray) -> Layers:
        """Combine the canvases with the background maps, add chromatin texture, blur."""
        r = self.region
        chromatin = value_noise(seed + 17, r.xs_um(), r.ys_um(), 1.1)
        chromatin *= np.float32(1.0)
        chromatin += np.float32(0.5)
        h = as_float(self.nuclei, NUCLEUS_OD)
        h *= chromatin
        h += base_h
        e = as_float(self.cyto, CYTO_OD)
        e += base_e
        keep = as_float(self.clear, -1.0)
        keep += np.float32(1.0)
        h *= keep
        e *= keep
        return Layers(blur(h, BLUR_UM, r.mpp), blur(e, BLUR_UM, r.mpp))


@dataclass(frozen=True)
class Ridges:
    """Voronoi ridges as curved polylines: segments (n, 4) in µm, owning ridge per segment,
    one midpoint per ridge (stable id from its two seeds) and the ridge direction."""

    segs: NDArray[np.float64]
    owner: NDArray[np.int64]
    mids: Points
    angle: NDArray[np.float64]

    def per_segment(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Broadcast per-ridge values to segments."""
        return values[self.owner]


def voronoi_ridges(seed: int, pts: Points, curve: float) -> Ridges:
    """Voronoi ridges of ``pts``, each split in 3 pieces with hashed sideways bends (``curve`` x length)."""
    empty = Ridges(
        np.zeros((0, 4)),
        np.zeros(0, np.int64),
        Points(np.zeros(0), np.zeros(0), np.zeros(0, np.uint64), seed),
        np.zeros(0),
    )
    if len(pts) < 5:
        return empty
    try:
        vor = Voronoi(np.column_stack([pts.x, pts.y]))
    except QhullError:
        return empty
    rv = np.array(vor.ridge_vertices, dtype=np.int64)
    rp = np.asarray(vor.ridge_points, dtype=np.int64)
    a, b = vor.vertices[rv[:, 0]], vor.vertices[rv[:, 1]]
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    ok = np.all(rv >= 0, axis=1) & (length < 1e4)
    rp, a, b = rp[ok], a[ok], b[ok]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    a, b = np.where(swap[:, None], b, a), np.where(swap[:, None], a, b)  # orientation-independent
    ua, ub = pts.uid[rp[:, 0]].astype(np.int64), pts.uid[rp[:, 1]].astype(np.int64)
    rid = hash64(seed, np.minimum(ua, ub), np.maximum(ua, ub))
    order = np.argsort(rid)  # painter's order independent of the region
    rid, a, b = rid[order], a[order], b[order]
    d = b - a
    normal = np.column_stack([-d[:, 1], d[:, 0]])
    knots = [a]
    for k, t in enumerate((1 / 3, 2 / 3)):
        off = (hash_uniform(seed, rid.astype(np.int64), 60 + k) - 0.5) * curve
        knots.append(a + d * t + normal * off[:, None])
    knots.append(b)
    segs = np.concatenate([np.column_stack([p, q]) for p, q in itertools.pairwise(knots)])
    owner = np.tile(np.arange(len(rid)), 3)
    mid = (knots[1] + knots[2]) / 2.0
    return Ridges(segs, owner, Points(mid[:, 0], mid[:, 1], rid, seed), np.arctan2(d[:, 1], d[:, 0]))


def lipoblasts(
    paint: Paint,
    pts: Points,
    *,
    cell_um: tuple[float, float],
    nucleus_um: tuple[float, float],
    vacuole_um: tuple[float, float],
    n_vacuoles: tuple[int, int],
) -> None:
    """Multivacuolated lipoblasts: pale cytoplasm, dark nucleus scalloped by clear vacuoles."""
    if len(pts) == 0:
        return
    r = paint.region
    cell_r = cell_um[0] + pts.uniform(80) * (cell_um[1] - cell_um[0])
    draw_discs(paint.cyto, r, pts.x, pts.y, cell_r, 70)
    nuc_r = nucleus_um[0] + pts.uniform(81) * (nucleus_um[1] - nucleus_um[0])
    draw_blobs(
        paint.nuclei,
        r,
        pts,
        rx_um=nuc_r,
        ry_um=nuc_r * 0.8,
        angle=pts.uniform(82) * np.pi,
        value=np.full(len(pts), 200.0),
        irregular=0.3,
    )
    count = n_vacuoles[0] + (pts.uniform(83) * (n_vacuoles[1] - n_vacuoles[0] + 1)).astype(np.int64)
    for v in range(n_vacuoles[1]):
        has = count > v
        ang = pts.uniform(84) * 2 * np.pi + v * 2 * np.pi / np.maximum(count, 1)
        vr = vacuole_um[0] + pts.uniform(90 + v) * (vacuole_um[1] - vacuole_um[0])
        dist = nuc_r + vr * 0.45
        draw_discs(paint.clear, r, (pts.x + dist * np.cos(ang))[has], (pts.y + dist * np.sin(ang))[has], vr[has], 235)


def nuclei(
    paint: Paint,
    pts: Points,
    rx: NDArray[np.float64],
    ry: NDArray[np.float64],
    angle: NDArray[np.float64],
    od: NDArray[np.float64],
    irregular: float | NDArray[np.float64],
) -> None:
    """Draw nuclei with optical density ``od`` (H concentration)."""
    value = np.clip(od / NUCLEUS_OD * 255.0, 0, 255)
    draw_blobs(paint.nuclei, paint.region, pts, rx_um=rx, ry_um=ry, angle=angle, value=value, irregular=irregular)


def lerp(u: NDArray[np.float64], lo: float, hi: float) -> NDArray[np.float64]:
    return lo + u * (hi - lo)
