"""A synthetic slide (tissue layout + subtype texture + stain style + seed) and its ground truth.

:func:`write_slide` writes ``<slide_id>.tiff``-style pyramids plus ``<slide_id>.truth.json``,
``<slide_id>.tissue.png`` and ``<slide_id>.dediff.png`` next to it; :func:`load_truth` reads them back.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from liposcope import __version__
from liposcope.io import write_json, write_png
from liposcope.synth.draw import Region, as_float, draw_discs
from liposcope.synth.fields import FloatArray, value_noise, wrapped_crop
from liposcope.synth.he import FatTexture, MyxoidTexture, PleomorphicTexture, SpindleTexture
from liposcope.synth.layout import Dust, Field, dust_specks, region_field, tissue_field
from liposcope.synth.pyramid import write_pyramid
from liposcope.synth.stain import StainStyle, random_he_style, render_rgb
from liposcope.synth.structures import Layers, Texture

log = logging.getLogger(__name__)

LABELS = ("WDLPS", "DDLPS", "MLPS", "PLPS")
_PAD_UM = 3.0
_NOISE_PERIOD = 509


_MEMBRANE_E = 0.45  # eosin OD of the tissue-edge membrane


class Overlay(Protocol):
    """Objects painted over the tissue layers (e.g. planted mitotic figures)."""

    def apply(self, region: Region, layers: Layers) -> Layers:
        """``layers`` (cropped to ``region``) with the objects near ``region`` painted in."""
        ...


@dataclass(frozen=True)
class SynthSlide:
    """Everything needed to render any level-0 region of one synthetic slide deterministically."""

    label: str
    seed: int
    width: int
    height: int
    mpp: float
    style: StainStyle
    tissue: Field
    texture: Texture
    dediff: Field | None = None
    dediff_texture: Texture | None = None
    dust: Dust = field(default_factory=lambda: Dust(np.zeros(0), np.zeros(0), np.zeros(0)))
    noise_tile: FloatArray = field(default_factory=lambda: np.zeros((1, 1), np.float32))
    figures: Overlay | None = None

    def render(self, x0: int, y0: int, w: int, h: int) -> NDArray[np.uint8]:
        """Level-0 RGB pixels of the box (x0, y0, w, h)."""
        region = Region(x0, y0, w, h, self.mpp, math.ceil(_PAD_UM / self.mpp) + 2)
        xs = np.asarray((np.arange(w) + x0 + 0.5) * self.mpp, np.float64)
        ys = np.asarray((np.arange(h) + y0 + 0.5) * self.mpp, np.float64)
        alpha = self.tissue.alpha(xs, ys)
        if float(alpha.max()) > 0.0:
            layers = self._tissue_layers(region, xs, ys)
            if self.figures is not None:
                layers = self.figures.apply(region, layers)
            # a thin eosinophilic membrane along the cut edge bounds the outermost cells, as on real sections
            membrane = np.clip(np.float32(1.0) - np.abs(alpha - np.float32(0.5)) * np.float32(2.0), 0.0, 1.0)
            conc = {"H": layers.h * alpha, "E": layers.e * alpha + membrane * np.float32(_MEMBRANE_E)}
        else:
            conc = {"H": np.zeros((h, w), np.float32), "E": np.zeros((h, w), np.float32)}
        self._add_dust(conc, Region(x0, y0, w, h, self.mpp, 0))
        return render_rgb(conc, self.style, self._noise(x0, y0, w, h))

    def _tissue_layers(self, region: Region, xs: NDArray[np.float64], ys: NDArray[np.float64]) -> Layers:
        if self.dediff is None or self.dediff_texture is None:
            return _crop(self.texture.render(region), region)
        beta = self.dediff.alpha(xs, ys)
        if float(beta.max()) <= 0.0:
            return _crop(self.texture.render(region), region)
        dd = _crop(self.dediff_texture.render(region), region)
        if float(beta.min()) >= 1.0:
            return dd
        wd = _crop(self.texture.render(region), region)
        beta = _patchy(beta, value_noise(self.seed + 77, xs, ys, 25.0))
        return Layers(wd.h + beta * (dd.h - wd.h), wd.e + beta * (dd.e - wd.e))

    def _add_dust(self, conc: dict[str, FloatArray], region: Region) -> None:
        if self.dust.x.size == 0:
            return
        canvas = np.zeros(region.shape, np.uint8)
        draw_discs(canvas, region, self.dust.x, self.dust.y, self.dust.r, 255)
        if canvas.any():
            speck = as_float(canvas, 0.5)
            conc["H"] = conc["H"] + speck
            conc["E"] = conc["E"] + speck

    def _noise(self, x0: int, y0: int, w: int, h: int) -> FloatArray:
        return wrapped_crop(self.noise_tile, x0, y0, w, h)


def _patchy(beta: FloatArray, noise: FloatArray) -> FloatArray:
    """Turn a smooth blend into an interdigitating one: near-binary patches whose share follows ``beta``."""
    noise *= np.float32(0.8)
    noise += np.float32(0.1)
    noise -= beta
    noise *= np.float32(-1.0 / 0.12)
    noise += np.float32(0.5)
    return np.clip(noise, 0.0, 1.0, out=noise)


def _crop(layers: Layers, region: Region) -> Layers:
    return Layers(np.ascontiguousarray(region.crop(layers.h)), np.ascontiguousarray(region.crop(layers.e)))


def _texture(label: str, seed: int, rng: np.random.Generator) -> Texture:
    if label == "MLPS":
        return MyxoidTexture.random(seed, rng)
    if label == "PLPS":
        return PleomorphicTexture.random(seed, rng)
    return FatTexture.random(seed, rng)


def make_slide(
    *,
    label: str,
    seed: int,
    width_px: int,
    height_px: int,
    mpp: float = 0.5,
    style: StainStyle | None = None,
    stain_variation: float = 1.0,
) -> SynthSlide:
    """Build the slide model for ``label`` (one of :data:`LABELS`); all randomness from ``seed``.

    Without ``style``, stain colours are drawn from ``seed`` with ``stain_variation`` times the
    default lab-to-lab spread (see :func:`random_he_style`).
    """
    if label not in LABELS:
        msg = f"unknown label {label!r}; synthetic slides support {LABELS}"
        raise ValueError(msg)
    if width_px < 64 or height_px < 64 or not mpp > 0:
        msg = f"need width/height >= 64 px and mpp > 0, got {width_px}x{height_px} at {mpp}"
        raise ValueError(msg)
    rng = np.random.default_rng([seed, 0x5EED])
    style = style if style is not None else random_he_style(rng, stain_variation)
    w_um, h_um = width_px * mpp, height_px * mpp
    tissue = tissue_field(rng, w_um, h_um)
    tex_seed = int(rng.integers(0, 2**31))
    texture = _texture(label, tex_seed, rng)
    dediff = dediff_texture = None
    if label == "DDLPS":
        blend = 6.0 if rng.random() < 0.5 else float(rng.uniform(60.0, 200.0))
        dediff = region_field(rng, tissue, float(rng.uniform(0.04, 0.4)), blend)
        dediff_texture = SpindleTexture.random(tex_seed + 1000, rng)
    return SynthSlide(
        label,
        seed,
        width_px,
        height_px,
        mpp,
        style,
        tissue,
        texture,
        dediff,
        dediff_texture,
        dust_specks(rng, tissue, w_um, h_um),
        rng.standard_normal((_NOISE_PERIOD, _NOISE_PERIOD)).astype(np.float32),
    )


@dataclass(frozen=True)
class Truth:
    """Ground truth of a synthetic slide; masks are at level-0 downsample ``mask_downsample``."""

    slide_id: str
    label: str
    seed: int
    mpp: float
    width: int
    height: int
    mask_downsample: int
    style: StainStyle
    version: str
    tissue_mask: NDArray[np.bool_] = field(compare=False, repr=False)
    dediff_mask: NDArray[np.bool_] = field(compare=False, repr=False)

    def tissue_fraction(self, x0: float, y0: float, w: float, h: float) -> float:
        """Fraction of the level-0 box (x0, y0, w, h) covered by tissue (area-weighted)."""
        return _box_fraction(self.tissue_mask, self.mask_downsample, x0, y0, w, h)

    def dediff_fraction(self, x0: float, y0: float, w: float, h: float) -> float:
        """Fraction of the level-0 box covered by dedifferentiated tissue."""
        return _box_fraction(self.dediff_mask, self.mask_downsample, x0, y0, w, h)


def _box_fraction(mask: NDArray[np.bool_], d: int, x0: float, y0: float, w: float, h: float) -> float:
    if w <= 0 or h <= 0:
        msg = f"box must have positive size, got {w}x{h}"
        raise ValueError(msg)

    def weights(lo: float, size: float, n: int) -> NDArray[np.float64]:
        edges = np.arange(n + 1) * float(d)
        return np.asarray(np.clip(np.minimum(edges[1:], lo + size) - np.maximum(edges[:-1], lo), 0.0, None), np.float64)

    wy = weights(y0, h, mask.shape[0])
    wx = weights(x0, w, mask.shape[1])
    return float(wy @ mask.astype(np.float64) @ wx) / (w * h)


def sidecar_paths(slide_path: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """(truth json, tissue png, dediff png) next to ``slide_path``."""
    p = Path(slide_path)
    sid = p.stem
    return (p.with_name(f"{sid}.truth.json"), p.with_name(f"{sid}.tissue.png"), p.with_name(f"{sid}.dediff.png"))


def write_slide(
    path: str | os.PathLike[str],
    *,
    label: str,
    seed: int,
    width_px: int,
    height_px: int,
    mpp: float = 0.5,
    style: StainStyle | None = None,
    stain_variation: float = 1.0,
    mask_downsample: int = 16,
    quality: int = 90,
) -> Truth:
    """Write a synthetic pyramidal slide and its ground-truth sidecars; return the truth."""
    slide = make_slide(
        label=label,
        seed=seed,
        width_px=width_px,
        height_px=height_px,
        mpp=mpp,
        style=style,
        stain_variation=stain_variation,
    )
    return write_synth_slide(path, slide, mask_downsample=mask_downsample, quality=quality)


def write_synth_slide(
    path: str | os.PathLike[str], slide: SynthSlide, *, mask_downsample: int = 16, quality: int = 90
) -> Truth:
    """Write the pyramid of ``slide`` and its ground-truth sidecars; return the truth."""
    out = Path(path)
    sid = out.stem
    width_px, height_px, mpp = slide.width, slide.height, slide.mpp
    write_pyramid(
        out,
        slide.render,
        width_px,
        height_px,
        mpp,
        quality=quality,
        description=f"liposcope synthetic slide {sid} label={slide.label} seed={slide.seed}",
    )
    tissue = slide.tissue.mask(width_px, height_px, mpp, mask_downsample)
    dediff = np.zeros_like(tissue)
    if slide.dediff is not None:
        dediff = slide.dediff.mask(width_px, height_px, mpp, mask_downsample) & tissue
    truth = Truth(
        sid,
        slide.label,
        slide.seed,
        mpp,
        width_px,
        height_px,
        mask_downsample,
        slide.style,
        __version__,
        tissue,
        dediff,
    )
    _write_sidecars(out, truth)
    log.debug("wrote %s (%s, tissue %.1f%%)", out, slide.label, 100.0 * float(tissue.mean()))
    return truth


def _write_sidecars(slide_path: Path, truth: Truth) -> None:
    json_path, tissue_path, dediff_path = sidecar_paths(slide_path)
    write_png(tissue_path, truth.tissue_mask.astype(np.uint8) * 255)
    write_png(dediff_path, truth.dediff_mask.astype(np.uint8) * 255)
    meta: dict[str, Any] = {
        "slide_id": truth.slide_id,
        "label": truth.label,
        "seed": truth.seed,
        "mpp": truth.mpp,
        "width": truth.width,
        "height": truth.height,
        "mask_downsample": truth.mask_downsample,
        "tissue_mask": tissue_path.name,
        "dediff_mask": dediff_path.name,
        "tissue_fraction": float(truth.tissue_mask.mean()),
        "dediff_fraction_of_tissue": float(truth.dediff_mask.sum() / max(int(truth.tissue_mask.sum()), 1)),
        "stain_style": truth.style.to_dict(),
        "liposcope_version": truth.version,
    }
    write_json(json_path, meta)


def load_truth(slide_path: str | os.PathLike[str]) -> Truth:
    """Read the ground truth written next to ``slide_path`` by :func:`write_slide`."""
    json_path, _, _ = sidecar_paths(slide_path)
    if not json_path.is_file():
        msg = f"no ground-truth sidecar {json_path} for {slide_path}"
        raise ValueError(msg)
    meta = json.loads(json_path.read_text())

    def mask(name: str) -> NDArray[np.bool_]:
        img = cv2.imread(str(json_path.with_name(name)), cv2.IMREAD_GRAYSCALE)
        if img is None:
            msg = f"cannot read mask {name} next to {json_path}"
            raise ValueError(msg)
        out: NDArray[np.bool_] = img > 127
        return out

    return Truth(
        str(meta["slide_id"]),
        str(meta["label"]),
        int(meta["seed"]),
        float(meta["mpp"]),
        int(meta["width"]),
        int(meta["height"]),
        int(meta["mask_downsample"]),
        StainStyle.from_dict(meta["stain_style"]),
        str(meta["liposcope_version"]),
        mask(meta["tissue_mask"]),
        mask(meta["dediff_mask"]),
    )
