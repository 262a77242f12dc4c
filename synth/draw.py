"""Render regions and vector drawing primitives (nuclei, septa, vacuoles) in µm coordinates.

A :class:`Region` is a level-0 pixel box plus a padding margin; textures draw on the padded
canvas and the caller crops the pad away, so blurs and shapes cut by the region edge match
the neighbouring region.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from liposcope.synth.fields import FloatArray, Points

_SHIFT = 4  # cv2 sub-pixel bits
_ONE = float(1 << _SHIFT)
_VERTICES = 20


@dataclass(frozen=True)
class Region:
    """Level-0 pixel box ``(x0, y0, w, h)`` at ``mpp`` µm/px with ``pad`` extra pixels each side."""

    x0: int
    y0: int
    w: int
    h: int
    mpp: float
    pad: int

    @property
    def shape(self) -> tuple[int, int]:
        """Padded canvas shape (rows, cols)."""
        return (self.h + 2 * self.pad, self.w + 2 * self.pad)

    def xs_um(self) -> NDArray[np.float64]:
        """Pixel-centre x coordinates (µm) of the padded canvas columns."""
        return np.asarray((np.arange(self.w + 2 * self.pad) + (self.x0 - self.pad) + 0.5) * self.mpp, np.float64)

    def ys_um(self) -> NDArray[np.float64]:
        """Pixel-centre y coordinates (µm) of the padded canvas rows."""
        return np.asarray((np.arange(self.h + 2 * self.pad) + (self.y0 - self.pad) + 0.5) * self.mpp, np.float64)

    def bounds_um(self, margin_um: float) -> tuple[float, float, float, float]:
        """Padded canvas extent in µm grown by ``margin_um`` (x0, y0, x1, y1)."""
        return (
            (self.x0 - self.pad) * self.mpp - margin_um,
            (self.y0 - self.pad) * self.mpp - margin_um,
            (self.x0 + self.w + self.pad) * self.mpp + margin_um,
            (self.y0 + self.h + self.pad) * self.mpp + margin_um,
        )

    def to_px(self, x_um: NDArray[np.float64], y_um: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        """µm -> canvas coordinates in cv2's convention (pixel centres at integers)."""
        return (x_um / self.mpp - (self.x0 - self.pad) - 0.5, y_um / self.mpp - (self.y0 - self.pad) - 0.5)

    def crop(self, canvas: NDArray[np.generic]) -> NDArray[np.generic]:
        """Remove the padding."""
        p = self.pad
        return canvas[p : p + self.h, p : p + self.w]


def _fixed(v: NDArray[np.float64]) -> NDArray[np.int32]:
    return np.round(v * _ONE).astype(np.int32)


def draw_blobs(
    canvas: NDArray[np.uint8],
    region: Region,
    pts: Points,
    *,
    rx_um: NDArray[np.float64],
    ry_um: NDArray[np.float64],
    angle: NDArray[np.float64],
    value: NDArray[np.float64],
    irregular: float | NDArray[np.float64] = 0.0,
) -> None:
    """Fill star-shaped blobs (ellipses with hashed low-order wobble) into ``canvas``.

    Args:
        canvas: uint8 canvas of ``region.shape``; blobs overwrite it (painter's order).
        region: Canvas geometry.
        pts: Centres (µm) and ids; the ids seed each blob's outline.
        rx_um: Semi-axis along ``angle`` (µm).
        ry_um: Semi-axis across ``angle`` (µm).
        angle: Orientation (radians).
        value: Fill value per blob, 0-255.
        irregular: Outline wobble amplitude (fraction of the radius).
    """
    if len(pts) == 0:
        return
    theta = np.linspace(0.0, 2.0 * np.pi, _VERTICES, endpoint=False)
    wobble = np.ones((len(pts), _VERTICES))
    for m in (2, 3, 5):
        amp = (pts.uniform(40 + m) - 0.5) * (0.9 / m) * np.asarray(irregular, np.float64).reshape(-1)
        phase = pts.uniform(50 + m) * 2.0 * np.pi
        wobble += amp[:, None] * np.cos(m * theta[None, :] + phase[:, None])
    lx = rx_um[:, None] * np.cos(theta)[None, :] * wobble
    ly = ry_um[:, None] * np.sin(theta)[None, :] * wobble
    ca, sa = np.cos(angle)[:, None], np.sin(angle)[:, None]
    cx, cy = region.to_px(pts.x, pts.y)
    px = _fixed(cx[:, None] + (lx * ca - ly * sa) / region.mpp)
    py = _fixed(cy[:, None] + (lx * sa + ly * ca) / region.mpp)
    poly = np.stack([px, py], axis=-1)
    vals = np.clip(np.round(value), 0, 255).astype(np.int64)
    visible = _visible(poly, canvas.shape)
    for k in visible[np.argsort(pts.uid[visible], kind="stable")]:  # region-independent painter's order
        cv2.fillPoly(canvas, [poly[k]], int(vals[k]), cv2.LINE_AA, _SHIFT)


def _visible(poly: NDArray[np.int32], shape: tuple[int, ...]) -> NDArray[np.intp]:
    lo = poly.min(axis=1)
    hi = poly.max(axis=1)
    lim = np.array([shape[1], shape[0]]) * _ONE
    ok = np.all(hi >= -_ONE, axis=1) & np.all(lo <= lim, axis=1)
    return np.flatnonzero(ok)


def draw_discs(
    canvas: NDArray[np.uint8],
    region: Region,
    x_um: NDArray[np.float64],
    y_um: NDArray[np.float64],
    r_um: NDArray[np.float64],
    value: int,
) -> None:
    """Fill anti-aliased discs of one value (vacuoles, red cells, cytoplasm)."""
    cx, cy = region.to_px(x_um, y_um)
    fx, fy, fr = _fixed(cx), _fixed(cy), _fixed(r_um / region.mpp)
    h, w = canvas.shape[:2]
    lim_r = (fr >> _SHIFT) + 2
    ok = (fx >> _SHIFT) + lim_r >= 0
    ok &= (fx >> _SHIFT) - lim_r <= w
    ok &= (fy >> _SHIFT) + lim_r >= 0
    ok &= (fy >> _SHIFT) - lim_r <= h
    for k in np.flatnonzero(ok):
        cv2.circle(canvas, (int(fx[k]), int(fy[k])), int(fr[k]), value, -1, cv2.LINE_AA, _SHIFT)


def draw_segments(
    canvas: NDArray[np.uint8],
    region: Region,
    seg_um: NDArray[np.float64],
    width_um: NDArray[np.float64],
    value: NDArray[np.float64],
) -> None:
    """Draw thick anti-aliased segments ``seg_um`` (n, 4: x1, y1, x2, y2 in µm)."""
    if seg_um.size == 0:
        return
    x1, y1 = region.to_px(seg_um[:, 0], seg_um[:, 1])
    x2, y2 = region.to_px(seg_um[:, 2], seg_um[:, 3])
    p1 = np.stack([_fixed(x1), _fixed(y1)], axis=1)
    p2 = np.stack([_fixed(x2), _fixed(y2)], axis=1)
    thick = np.maximum(np.round(width_um / region.mpp), 1).astype(np.int64)
    vals = np.clip(np.round(value), 0, 255).astype(np.int64)
    h, w = canvas.shape[:2]
    lo = np.minimum(p1, p2) - ((thick + 2) << _SHIFT)[:, None]
    hi = np.maximum(p1, p2) + ((thick + 2) << _SHIFT)[:, None]
    ok = (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] <= w * _ONE) & (lo[:, 1] <= h * _ONE)
    for k in np.flatnonzero(ok):
        a = (int(p1[k, 0]), int(p1[k, 1]))
        b = (int(p2[k, 0]), int(p2[k, 1]))
        cv2.line(canvas, a, b, int(vals[k]), int(thick[k]), cv2.LINE_AA, _SHIFT)


def as_float(canvas: NDArray[np.uint8], scale: float = 1.0) -> FloatArray:
    """uint8 canvas -> float32 scaled so 255 maps to ``scale``."""
    out: FloatArray = canvas.astype(np.float32)
    out *= np.float32(scale / 255.0)
    return out


def blur(img: FloatArray, sigma_um: float, mpp: float) -> FloatArray:
    """Gaussian blur with a physical sigma (in place when possible)."""
    sigma = sigma_um / mpp
    if sigma < 0.3:
        return img
    return np.asarray(cv2.GaussianBlur(img, (0, 0), sigma, dst=img, borderType=cv2.BORDER_REFLECT), np.float32)
