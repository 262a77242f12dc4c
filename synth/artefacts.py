"""Artefacts drawn over a synthetic H&E slide: pen-ink strokes (blue, green, red, black) and scanner padding.

Ink is a Beer-Lambert layer over the rendered slide (on glass and on tissue alike), with soft edges and
per-stroke strength; padding is a flat pure-white band along the right and bottom edges, brighter than
the glass, as scanners write outside the scanned area. The truth masks say where each lies.

Example:
    >>> truth = write_artefact_slide("ink.tiff", label="WDLPS", seed=3, width_px=3200, height_px=2400)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from liposcope.io import write_json, write_png
from liposcope.synth.pyramid import write_pyramid
from liposcope.synth.slide import SynthSlide, make_slide

#: Optical density (R, G, B) of each marker ink at full strength.
INKS: dict[str, tuple[float, float, float]] = {
    "blue": (1.0, 0.55, 0.08),
    "green": (0.8, 0.2, 0.6),
    "red": (0.06, 0.95, 0.8),
    "black": (1.5, 1.45, 1.4),
}


@dataclass(frozen=True)
class Stroke:
    """One pen stroke: a polyline (level-0 px, k x 2), its width in px, ink and strength (OD factor)."""

    ink: str
    points: NDArray[np.int32]
    width_px: int
    strength: float


@dataclass(frozen=True)
class ArtefactSlide:
    """A synthetic slide with pen strokes over it and pure-white padding of ``pad_x`` / ``pad_y`` px."""

    slide: SynthSlide
    strokes: tuple[Stroke, ...]
    pad_x: int
    pad_y: int

    def render(self, x0: int, y0: int, w: int, h: int) -> NDArray[np.uint8]:
        """Level-0 RGB pixels of the box (x0, y0, w, h)."""
        rgb = self.slide.render(x0, y0, w, h).astype(np.float32)
        for stroke in self.strokes:
            cover = _draw([stroke], x0, y0, w, h, 1.0)
            if cover.any():
                od = np.asarray(INKS[stroke.ink], np.float32) * np.float32(stroke.strength)
                rgb *= np.power(np.float32(10.0), -cover[..., None] * od)
        out: NDArray[np.uint8] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
        out[self.padding(x0, y0, w, h)] = 255
        return out

    def padding(self, x0: int, y0: int, w: int, h: int, scale: float = 1.0) -> NDArray[np.bool_]:
        """Where the box (in px at ``scale`` of level 0) is padding."""
        xs = (np.arange(w) + x0 + 0.5) / scale
        ys = (np.arange(h) + y0 + 0.5) / scale
        out: NDArray[np.bool_] = (xs[None, :] >= self.slide.width - self.pad_x) | (
            ys[:, None] >= self.slide.height - self.pad_y
        )
        return out

    def masks(self, downsample: int) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Ink (any stroke, beyond faint edges) and padding masks at level-0 / ``downsample``."""
        w, h = -(-self.slide.width // downsample), -(-self.slide.height // downsample)
        ink = _draw(self.strokes, 0, 0, w, h, 1.0 / downsample) > 0.5
        pad = self.padding(0, 0, w, h, 1.0 / downsample)
        return ink & ~pad, pad


def _draw(strokes: list[Stroke] | tuple[Stroke, ...], x0: int, y0: int, w: int, h: int, scale: float) -> np.ndarray:
    """Soft coverage (0-1, h x w float32) of ``strokes`` in the box, drawn at ``scale`` of level 0."""
    canvas = np.zeros((h, w), np.uint8)
    for s in strokes:
        points = np.rint(s.points * scale - [x0, y0]).astype(np.int32)
        cv2.polylines(canvas, [points], False, 255, max(1, round(s.width_px * scale)), cv2.LINE_AA)
    if not canvas.any():
        return np.zeros((h, w), np.float32)
    out: np.ndarray = canvas.astype(np.float32) / 255.0
    return out


def random_strokes(
    rng: np.random.Generator, width: int, height: int, mpp: float, inks: tuple[str, ...]
) -> tuple[Stroke, ...]:
    """A wavy stroke per ink, 2-4 % of the slide's short side wide (≈ 0.5-1 mm on a 25 mm section), crossing
    glass and tissue anywhere on the slide; ``mpp`` keeps it at least 100 µm wide."""
    strokes = []
    side = min(width, height)
    for ink in inks:
        start = rng.uniform([0.1 * width, 0.1 * height], [0.9 * width, 0.9 * height])
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.3, 0.6) * side
        t = np.linspace(0, 1, 24)[:, None]
        direction = np.array([np.cos(angle), np.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        wave = np.sin(t * rng.uniform(1, 4) * np.pi + rng.uniform(0, np.pi)) * rng.uniform(0.05, 0.2) * length
        points = start + t * length * direction + wave * normal
        strokes.append(
            Stroke(
                ink,
                points.astype(np.int32),
                round(max(rng.uniform(0.02, 0.04) * side, 100 / mpp)),
                float(rng.uniform(0.8, 1.3)),
            )
        )
    return tuple(strokes)


def write_artefact_slide(
    path: str | os.PathLike[str],
    *,
    label: str,
    seed: int,
    width_px: int,
    height_px: int,
    mpp: float = 0.5,
    inks: tuple[str, ...] = tuple(INKS),
    padding_share: float = 0.15,
    mask_downsample: int = 16,
) -> dict[str, NDArray[np.bool_]]:
    """Write a synthetic slide with ink strokes and padding, and ``<slide_id>.{tissue,ink,padding}.png`` truth.

    Returns:
        The truth masks at level-0 / ``mask_downsample``: ``tissue`` (not under ink or padding), ``ink``,
        ``padding`` and ``ink_over_tissue`` (the part of ``ink`` drawn over tissue).
    """
    slide = make_slide(label=label, seed=seed, width_px=width_px, height_px=height_px, mpp=mpp)
    rng = np.random.default_rng(seed + 9973)
    art = ArtefactSlide(
        slide,
        random_strokes(rng, width_px, height_px, mpp, inks),
        round(width_px * padding_share),
        round(height_px * padding_share / 2),
    )
    out = Path(path)
    write_pyramid(out, art.render, width_px, height_px, mpp, description=f"liposcope synthetic slide {out.stem} ink")
    ink, pad = art.masks(mask_downsample)
    tissue = slide.tissue.mask(width_px, height_px, mpp, mask_downsample)[: ink.shape[0], : ink.shape[1]]
    truth = {"tissue": tissue & ~ink & ~pad, "ink": ink, "padding": pad, "ink_over_tissue": ink & tissue}
    for name, mask in truth.items():
        write_png(out.with_name(f"{out.stem}.{name}.png"), mask.astype(np.uint8) * 255)
    write_json(
        out.with_name(f"{out.stem}.artefacts.json"),
        {"label": label, "seed": seed, "mpp": mpp, "mask_downsample": mask_downsample, "inks": list(inks)},
    )
    return truth
