"""H&E tissue textures per liposarcoma subtype, defined in µm so they render alike at any mpp.

Each texture turns a :class:`~liposcope.synth.draw.Region` into stain concentration maps
(:class:`Layers`). All structures come from hashed jittered grids (see :mod:`liposcope.synth.fields`),
so rendering is deterministic and continuous across region boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from liposcope.synth.draw import Region, draw_discs, draw_segments
from liposcope.synth.fields import FloatArray, Points, fbm, fbm_at, jittered_points, smoothstep
from liposcope.synth.structures import REACH_UM, Layers, Paint, Ridges, lerp, lipoblasts, nuclei, voronoi_ridges

__all__ = ["FatTexture", "MyxoidTexture", "PleomorphicTexture", "SpindleTexture"]


@dataclass(frozen=True)
class FatTexture:
    """Well-differentiated liposarcoma: mature fat with septa, fibrous bands and atypical stromal cells."""

    seed: int
    cell_um: float = 70.0
    septum_um: float = 1.6
    thick_fraction: float = 0.08
    band_width: float = 0.035
    band_scale_um: float = 600.0
    atypia: float = 0.5
    lipoblast_rate: float = 0.02

    @classmethod
    def random(cls, seed: int, rng: np.random.Generator) -> FatTexture:
        """Per-slide parameters."""
        return cls(
            seed,
            rng.uniform(55, 85),
            rng.uniform(0.9, 1.8),
            rng.uniform(0.04, 0.12),
            rng.uniform(0.015, 0.05),
            rng.uniform(400, 900),
            rng.uniform(0.3, 0.8),
            rng.uniform(0.01, 0.04),
        )

    def render(self, region: Region) -> Layers:
        """Concentrations on the padded canvas of ``region``."""
        paint = Paint(region)
        xs, ys = region.xs_um(), region.ys_um()
        band = self._band(fbm(self.seed + 1, xs, ys, self.band_scale_um, octaves=2))
        pts = jittered_points(self.seed + 2, region.bounds_um(3 * self.cell_um), self.cell_um)
        keep_p = 0.35 + 0.75 * fbm_at(self.seed + 3, pts.x, pts.y, 350.0)
        pts = pts.select(pts.uniform(3) < keep_p)
        rdg = voronoi_ridges(self.seed + 4, pts, 0.18)
        ridges = rdg.mids
        thick = ridges.uniform(5) < self.thick_fraction
        width = np.where(thick, lerp(ridges.uniform(6), 4.0, 14.0), self.septum_um * np.exp(0.3 * ridges.normal(7)))
        value = np.where(thick, 110.0, 85.0 + 45.0 * ridges.uniform(8))
        draw_segments(paint.cyto, region, rdg.segs, rdg.per_segment(width), rdg.per_segment(value))
        self._septalnuclei(paint, rdg, thick)
        self._band_cells(paint, region)
        if float(band.max()) > 0.0:
            band *= fbm(self.seed + 5, xs, ys, 6.0, octaves=2) * np.float32(0.3) + np.float32(0.25)
        base_e = band + np.float32(0.012)
        base_h = band * np.float32(0.1) + np.float32(0.004)
        return paint.finish(self.seed, base_h, base_e)

    def _band(self, n: FloatArray) -> FloatArray:
        dist = np.abs(n - np.float32(0.5))
        return smoothstep(self.band_width, self.band_width * 0.6, dist)

    def _septalnuclei(self, paint: Paint, rdg: Ridges, thick: NDArray[np.bool_]) -> None:
        ridges = rdg.mids
        sel = (ridges.uniform(9) < 0.3) & ~thick
        flat = ridges.select(sel)
        nuclei(
            paint,
            flat,
            lerp(flat.uniform(10), 3.0, 5.0),
            lerp(flat.uniform(11), 0.9, 1.4),
            rdg.angle[sel],
            lerp(flat.uniform(12), 0.5, 0.75),
            0.1,
        )
        atyp = ridges.select(ridges.uniform(13) < np.where(thick, 0.8, 0.05) * self.atypia)
        nuclei(
            paint,
            atyp,
            lerp(atyp.uniform(14), 4.5, 10.0),
            lerp(atyp.uniform(15), 2.5, 5.0),
            atyp.uniform(16) * np.pi,
            lerp(atyp.uniform(17), 0.9, 1.2),
            0.35,
        )
        lipo = ridges.select(ridges.uniform(18) < self.lipoblast_rate)
        lipoblasts(paint, lipo, cell_um=(7, 11), nucleus_um=(3, 4.5), vacuole_um=(2.5, 4.5), n_vacuoles=(2, 4))

    def _band_cells(self, paint: Paint, region: Region) -> None:
        pts = jittered_points(self.seed + 6, region.bounds_um(REACH_UM), 18.0)
        n = fbm_at(self.seed + 1, pts.x, pts.y, self.band_scale_um, octaves=2)
        inside = np.abs(n - 0.5) < self.band_width * 0.7
        pts = pts.select(inside & (pts.uniform(19) < 0.45))
        big = pts.uniform(20) < 0.25 * self.atypia
        rx = np.where(big, lerp(pts.uniform(21), 5.0, 10.0), lerp(pts.uniform(21), 4.0, 7.0))
        ry = np.where(big, lerp(pts.uniform(22), 3.0, 5.5), lerp(pts.uniform(22), 1.2, 2.2))
        od = np.where(big, 1.05, 0.7)
        nuclei(paint, pts, rx, ry, pts.uniform(23) * np.pi, od, np.where(big, 0.35, 0.1))


@dataclass(frozen=True)
class SpindleTexture:
    """Dedifferentiated component: dense spindle (and some pleomorphic) cells in collagenous stroma."""

    seed: int
    cell_um: float = 13.0
    flow_scale_um: float = 220.0
    pleomorphic: float = 0.1
    stroma: float = 0.35

    @classmethod
    def random(cls, seed: int, rng: np.random.Generator) -> SpindleTexture:
        """Per-slide parameters."""
        return cls(
            seed, rng.uniform(10.5, 15.0), rng.uniform(120, 350), rng.uniform(0.0, 0.35), rng.uniform(0.25, 0.45)
        )

    def render(self, region: Region) -> Layers:
        """Concentrations on the padded canvas of ``region``."""
        paint = Paint(region)
        xs, ys = region.xs_um(), region.ys_um()
        pts = jittered_points(self.seed + 30, region.bounds_um(REACH_UM), self.cell_um)
        density = fbm_at(self.seed + 31, pts.x, pts.y, 150.0)
        pts = pts.select(pts.uniform(30) < 0.55 + 0.6 * density)
        flow = fbm_at(self.seed + 32, pts.x, pts.y, self.flow_scale_um) * 3.0 * np.pi
        pleo = pts.uniform(31) < self.pleomorphic
        rx = np.where(pleo, lerp(pts.uniform(32), 5.0, 11.0), lerp(pts.uniform(32), 5.0, 9.0))
        ry = np.where(pleo, rx * lerp(pts.uniform(33), 0.6, 0.9), lerp(pts.uniform(33), 1.3, 2.3))
        angle = flow + 0.2 * pts.normal(34)
        od = np.where(pleo, lerp(pts.uniform(35), 0.9, 1.2), lerp(pts.uniform(35), 0.65, 0.95))
        nuclei(paint, pts, rx, ry, angle, od, np.where(pleo, 0.4, 0.08))
        fibre = fbm(self.seed + 33, xs, ys, 5.0, octaves=2)
        base_e = fibre * np.float32(0.35 * self.stroma) + np.float32(self.stroma * 0.8)
        base_h = fibre * np.float32(0.03) + np.float32(0.04)
        return paint.finish(self.seed, base_h, base_e)


@dataclass(frozen=True)
class MyxoidTexture:
    """Myxoid liposarcoma: pale myxoid stroma, uniform small nuclei, chicken-wire capillaries, signet rings."""

    seed: int
    vessel_um: float = 55.0
    cell_um: float = 18.0
    matrix: float = 0.13
    signet_rate: float = 0.45

    @classmethod
    def random(cls, seed: int, rng: np.random.Generator) -> MyxoidTexture:
        """Per-slide parameters."""
        return cls(seed, rng.uniform(40, 75), rng.uniform(15, 22), rng.uniform(0.09, 0.18), rng.uniform(0.25, 0.7))

    def render(self, region: Region) -> Layers:
        """Concentrations on the padded canvas of ``region``."""
        paint = Paint(region)
        xs, ys = region.xs_um(), region.ys_um()
        self._capillaries(paint, region)
        pts = jittered_points(self.seed + 40, region.bounds_um(REACH_UM), self.cell_um)
        pts = pts.select(pts.uniform(40) < 0.6)
        rx = lerp(pts.uniform(41), 3.0, 4.3)
        ry = rx * lerp(pts.uniform(42), 0.7, 0.95)
        nuclei(paint, pts, rx, ry, pts.uniform(43) * np.pi, lerp(pts.uniform(44), 0.55, 0.75), 0.06)
        sig = jittered_points(self.seed + 41, region.bounds_um(REACH_UM), 80.0)
        self._signet_rings(paint, sig.select(sig.uniform(45) < self.signet_rate))
        wisp = fbm(self.seed + 42, xs, ys, 18.0, octaves=3)
        base_h = wisp * np.float32(self.matrix) + np.float32(self.matrix * 0.5)
        base_e = wisp * np.float32(0.04) + np.float32(0.035)
        return paint.finish(self.seed, base_h, base_e)

    def _capillaries(self, paint: Paint, region: Region) -> None:
        pts = jittered_points(self.seed + 43, region.bounds_um(3 * self.vessel_um), self.vessel_um)
        rdg = voronoi_ridges(self.seed + 44, pts, 0.22)
        ridges = rdg.mids
        shown = ridges.uniform(46) < 0.7
        keep = rdg.per_segment(shown.astype(np.float64)) > 0
        width = rdg.per_segment(lerp(ridges.uniform(47), 1.5, 2.8))
        draw_segments(paint.cyto, region, rdg.segs[keep], width[keep], np.full(int(keep.sum()), 175.0))
        sel = shown & (ridges.uniform(48) < 0.35)
        endo = ridges.select(sel)
        nuclei(
            paint,
            endo,
            lerp(endo.uniform(49), 3.0, 4.5),
            np.full(len(endo), 1.1),
            rdg.angle[sel],
            np.full(len(endo), 0.8),
            0.05,
        )
        rbc = ridges.select(shown & (ridges.uniform(50) < 0.3))
        draw_discs(paint.cyto, region, rbc.x, rbc.y, np.full(len(rbc), 3.5), 235)

    def _signet_rings(self, paint: Paint, pts: Points) -> None:
        if len(pts) == 0:
            return
        vr = lerp(pts.uniform(51), 4.0, 9.0)
        ang = pts.uniform(52) * 2 * np.pi
        nuc = Points(pts.x + (vr + 0.6) * np.cos(ang), pts.y + (vr + 0.6) * np.sin(ang), pts.uid, pts.seed)
        nuclei(paint, nuc, np.full(len(nuc), 4.8), np.full(len(nuc), 3.0), ang + np.pi / 2, np.full(len(nuc), 1.0), 0.1)
        draw_discs(paint.cyto, paint.region, pts.x, pts.y, vr + 1.2, 60)
        draw_discs(paint.clear, paint.region, pts.x, pts.y, vr, 240)


@dataclass(frozen=True)
class PleomorphicTexture:
    """Pleomorphic liposarcoma: dense pleomorphic cells, bizarre giant nuclei, multivacuolated lipoblasts."""

    seed: int
    cell_um: float = 17.0
    giant_rate: float = 0.08
    lipoblast_rate: float = 0.5
    cytoplasm: float = 0.42

    @classmethod
    def random(cls, seed: int, rng: np.random.Generator) -> PleomorphicTexture:
        """Per-slide parameters."""
        return cls(seed, rng.uniform(14, 20), rng.uniform(0.04, 0.1), rng.uniform(0.3, 0.8), rng.uniform(0.35, 0.55))

    def lipoblast_cells(self, bounds_um: tuple[float, float, float, float]) -> Points:
        """Centres (µm) of the lipoblasts near ``bounds_um`` (x0, y0, x1, y1), whether drawn or not."""
        lipo = jittered_points(self.seed + 61, bounds_um, 70.0)
        return lipo.select(lipo.uniform(67) < self.lipoblast_rate)

    def render(self, region: Region) -> Layers:
        """Concentrations on the padded canvas of ``region``."""
        paint = Paint(region)
        xs, ys = region.xs_um(), region.ys_um()
        pts = jittered_points(self.seed + 60, region.bounds_um(REACH_UM), self.cell_um)
        pts = pts.select(pts.uniform(60) < 0.85)
        giant = pts.uniform(61) < self.giant_rate
        size = np.clip(4.5 * np.exp(0.3 * pts.normal(62)), 3.0, 9.0)
        rx = np.where(giant, lerp(pts.uniform(63), 8.0, 17.0), size)
        ry = rx * lerp(pts.uniform(64), 0.55, 0.95)
        od = np.where(giant, lerp(pts.uniform(65), 1.0, 1.3), lerp(pts.uniform(65), 0.6, 0.95))
        nuclei(paint, pts, rx, ry, pts.uniform(66) * np.pi, od, np.where(giant, 0.6, 0.3))
        lipo = self.lipoblast_cells(region.bounds_um(REACH_UM))
        lipoblasts(paint, lipo, cell_um=(13, 19), nucleus_um=(5, 8), vacuole_um=(2.5, 5.5), n_vacuoles=(4, 8))
        cyto = fbm(self.seed + 62, xs, ys, 9.0, octaves=2)
        base_e = cyto * np.float32(0.5 * self.cytoplasm) + np.float32(self.cytoplasm * 0.7)
        base_h = cyto * np.float32(0.04) + np.float32(0.05)
        return paint.finish(self.seed, base_h, base_e)
