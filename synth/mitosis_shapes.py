"""Drawings of mitotic figures and look-alikes in µm, grouped into independent figure families.

A drawing is a list of cell bodies (cleared, pale or eosinophilic areas) and chromatin segments. Each family
draws its figures its own way; :func:`draw_object` then restyles any drawing at random (size, edge roughness,
chromatin texture, halo present or absent), so that no single look teaches a detector what a figure is.
Families: ``prophase`` (condensed threads, prometaphase clumps), ``metaphase`` (bars, oblique plates, polar
rings), ``anaphase`` (two plates, with or without a lagging chromosome), ``telophase`` (two daughter clumps) and
``atypical`` (tripolar and multipolar). Look-alikes: pyknotic nuclei, apoptotic bodies, lymphocytes (single
or crowded), smooth hyperchromatic nuclei and karyorrhectic debris.
"""

from __future__ import annotations

import math

import numpy as np

FAMILIES: dict[str, tuple[str, ...]] = {
    "prophase": ("prophase", "prometaphase"),
    "metaphase": ("metaphase", "plate", "ring"),
    "anaphase": ("anaphase", "lagging"),
    "telophase": ("telophase",),
    "atypical": ("tripolar", "multipolar"),
}
MITOTIC_SHAPES = tuple(s for shapes in FAMILIES.values() for s in shapes)
LOOKALIKE_SHAPES = ("pyknotic", "apoptotic", "lymphocyte", "hyperchromatic", "karyorrhectic")
SHAPES = MITOTIC_SHAPES + LOOKALIKE_SHAPES

# (cell bodies [(x, y, rx, ry, cover, eosin OD)], chromatin segments [(x1, y1, x2, y2, width, darkness)])
Body = tuple[float, float, float, float, float, float]
Segment = tuple[float, float, float, float, float, float]
Drawing = tuple[list[Body], list[Segment]]


def family_of(shape: str) -> str:
    """The family of a mitotic shape, ``lookalike`` for the others."""
    return next((f for f, shapes in FAMILIES.items() if shape in shapes), "lookalike")


def draw_object(name: str, rng: np.random.Generator) -> tuple[Drawing, float]:
    """The drawing of shape ``name`` restyled at random, and its body outline roughness."""
    bodies, segments = _DRAW[name](rng)
    scale = _u(rng, 0.75, 1.3)
    rough = _u(rng, 0.0, 0.6)
    texture = _u(rng, 0.0, 0.35)
    mitotic = name in MITOTIC_SHAPES
    # halo: mitotic cells are mostly cleared, sometimes not at all; look-alikes sometimes shrink in a halo
    cover = _u(rng, 0.0, 0.4) if rng.random() < 0.3 else _u(rng, 0.7, 1.05)
    eosin = _u(rng, 0.5, 1.6)
    if not mitotic and rng.random() > 0.4:
        cover = 1.0
    out_b = [
        (x * scale, y * scale, rx * scale, ry * scale, min(c * cover, 0.97), e * eosin) for x, y, rx, ry, c, e in bodies
    ]
    jitter = rough * 0.35 * scale
    out_s = [
        (
            x1 * scale + rng.normal(0, jitter),
            y1 * scale + rng.normal(0, jitter),
            x2 * scale + rng.normal(0, jitter),
            y2 * scale + rng.normal(0, jitter),
            max(0.3, w * scale * _u(rng, 0.8, 1.2)),
            d * (1.0 - texture * rng.random()),
        )
        for x1, y1, x2, y2, w, d in segments
    ]
    return (out_b, out_s), 0.05 + 0.3 * rough


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _mitotic_body(rng: np.random.Generator, rx: float, ry: float, x: float = 0.0, y: float = 0.0) -> Body:
    """A rounded mitotic cell: the tissue underneath mostly cleared, pale cytoplasm."""
    return (x, y, rx, ry, _u(rng, 0.75, 0.95), _u(rng, 0.08, 0.3))


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


def _clump(rng: np.random.Generator, x: float, radius: float, rods: int, y: float = 0.0) -> list[Segment]:
    """Condensed chromosomes: short thick rods in a ball."""
    out: list[Segment] = []
    for _ in range(rods):
        r, phi, theta = radius * math.sqrt(rng.random()), _u(rng, 0, 2 * math.pi), _u(rng, 0, math.pi)
        px, py, half = x + r * math.cos(phi), y + r * math.sin(phi), _u(rng, 0.6, 1.4)
        dx, dy = half * math.cos(theta), half * math.sin(theta)
        out.append((px - dx, py - dy, px + dx, py + dy, _u(rng, 0.7, 1.2), _u(rng, 0.85, 1.0)))
    return out


def _rotate(segments: list[Segment], phi: float) -> list[Segment]:
    c, s = math.cos(phi), math.sin(phi)
    return [
        (x1 * c - y1 * s, x1 * s + y1 * c, x2 * c - y2 * s, x2 * s + y2 * c, w, d) for x1, y1, x2, y2, w, d in segments
    ]


def _prophase(rng: np.random.Generator) -> Drawing:
    """Thin condensing threads wandering inside a round nucleus."""
    radius = _u(rng, 3.5, 5.5)
    out: list[Segment] = []
    for _ in range(int(rng.integers(6, 12))):
        x, y = rng.normal(0, radius / 2.5, 2)
        phi = _u(rng, 0, 2 * math.pi)
        for _ in range(int(rng.integers(3, 6))):
            step = _u(rng, 0.8, 1.6)
            nx, ny = x + step * math.cos(phi), y + step * math.sin(phi)
            if math.hypot(nx, ny) > radius:
                break
            out.append((x, y, nx, ny, _u(rng, 0.5, 0.9), _u(rng, 0.7, 1.0)))
            x, y, phi = nx, ny, phi + rng.normal(0, 0.8)
    return [_mitotic_body(rng, radius + _u(rng, 1.0, 2.5), radius + _u(rng, 0.8, 2.0))], out


def _prometaphase(rng: np.random.Generator) -> Drawing:
    radius = _u(rng, 2.5, 4.5)
    body = _mitotic_body(rng, radius + _u(rng, 2.0, 3.5), radius + _u(rng, 1.5, 3.0))
    return [body], _clump(rng, 0.0, radius, int(rng.integers(12, 20)))


def _metaphase(rng: np.random.Generator) -> Drawing:
    length, width = _u(rng, 7.0, 11.0), _u(rng, 1.6, 2.6)
    return [_mitotic_body(rng, length / 2 + _u(rng, 1.5, 3.0), _u(rng, 4.5, 6.5))], _bar(
        rng, 0.0, 0.0, length, width, int(rng.integers(12, 24))
    )


def _plate(rng: np.random.Generator) -> Drawing:
    """A metaphase plate seen obliquely: an elliptic band of short rods."""
    a, b = _u(rng, 3.5, 5.5), _u(rng, 1.2, 2.5)
    out: list[Segment] = []
    for _ in range(int(rng.integers(14, 26))):
        r, phi, theta = math.sqrt(rng.random()), _u(rng, 0, 2 * math.pi), _u(rng, 0, math.pi)
        px, py, half = a * r * math.cos(phi), b * r * math.sin(phi), _u(rng, 0.4, 1.0)
        out.append((px - half * math.cos(theta), py - half * math.sin(theta), px + half * math.cos(theta),
                    py + half * math.sin(theta), _u(rng, 0.6, 1.1), _u(rng, 0.8, 1.0)))  # fmt: skip
    return [_mitotic_body(rng, a + _u(rng, 1.5, 3.0), b + _u(rng, 2.5, 4.0))], out


def _ring(rng: np.random.Generator) -> Drawing:
    radius = _u(rng, 2.8, 4.0)
    out: list[Segment] = []
    for _ in range(int(rng.integers(14, 22))):
        phi, r = _u(rng, 0, 2 * math.pi), radius + rng.normal(0.0, 0.3)
        inner, outer = r - _u(rng, 0.6, 1.2), r + _u(rng, 0.6, 1.2)
        tilt = rng.normal(0.0, 0.3) / outer
        out.append((inner * math.cos(phi), inner * math.sin(phi), outer * math.cos(phi + tilt),
                    outer * math.sin(phi + tilt), _u(rng, 0.7, 1.1), _u(rng, 0.85, 1.0)))  # fmt: skip
    return [_mitotic_body(rng, radius + _u(rng, 2.5, 3.5), radius + _u(rng, 2.0, 3.0))], out


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
    return [body], _rotate(segments, math.pi / 2)  # plates across the spindle axis


def _lagging(rng: np.random.Generator) -> Drawing:
    """Anaphase with a chromosome left behind between the plates."""
    bodies, segments = _anaphase(rng)
    lag = (rng.normal(0, 0.6), rng.normal(0, 1.5))
    return bodies, [*segments, (lag[0] - 0.6, lag[1], lag[0] + 0.6, lag[1], _u(rng, 0.6, 1.0), 1.0)]


def _telophase(rng: np.random.Generator) -> Drawing:
    half = _u(rng, 4.5, 6.5)
    radius = _u(rng, 2.0, 3.0)
    bodies = [
        _mitotic_body(rng, radius + 2.5, radius + 2.0, -half),
        _mitotic_body(rng, radius + 2.5, radius + 2.0, half),
    ]
    rods = int(rng.integers(8, 13))
    return bodies, _clump(rng, -half, radius, rods) + _clump(rng, half, radius, rods)


def _polar(rng: np.random.Generator, poles: int) -> Drawing:
    out: list[Segment] = []
    arm, width = _u(rng, 3.5, 5.5), _u(rng, 1.4, 2.2)
    for j in range(poles):
        phi = j * 2 * math.pi / poles + rng.normal(0.0, 0.25)
        out += _rotate(_bar(rng, arm / 2, 0.0, arm, width, int(rng.integers(4, 9))), phi)
    return [_mitotic_body(rng, arm + _u(rng, 1.5, 3.0), arm + _u(rng, 1.0, 2.5))], out


def _disc(x: float, y: float, r: float, darkness: float = 1.0) -> Segment:
    return (x, y, x, y, 2.0 * r, darkness)


def _pyknotic(rng: np.random.Generator) -> Drawing:
    r = _u(rng, 1.4, 3.2)
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


def _karyorrhectic(rng: np.random.Generator) -> Drawing:
    """Nuclear debris: many small round fragments scattered over a shrunken eosinophilic cell."""
    spread = _u(rng, 2.5, 5.0)
    body = (0.0, 0.0, spread + 1.5, spread + _u(rng, 0.5, 1.5), _u(rng, 0.6, 0.95), _u(rng, 0.3, 0.8))
    pieces = [
        _disc(rng.normal(0, spread / 2), rng.normal(0, spread / 2), _u(rng, 0.35, 0.9), _u(rng, 0.8, 1.0))
        for _ in range(int(rng.integers(5, 14)))
    ]
    return [body], pieces


def _lymphocyte(rng: np.random.Generator) -> Drawing:
    """One small round dark nucleus, or a few crowded together."""
    bodies: list[Body] = []
    nuclei: list[Segment] = []
    centres = (
        [(0.0, 0.0)]
        if rng.random() < 0.6
        else [(0.0, 0.0), *[tuple(rng.normal(0, 3.5, 2)) for _ in range(int(rng.integers(1, 4)))]]
    )
    for cx, cy in centres:
        r = _u(rng, 2.2, 3.6)
        bodies.append((cx, cy, r + _u(rng, 0.3, 1.0), r + _u(rng, 0.3, 1.0), _u(rng, 0.6, 0.95), _u(rng, 0.05, 0.25)))
        nuclei += [_disc(cx + rng.normal(0, 0.25), cy + rng.normal(0, 0.25), r * _u(rng, 0.85, 1.0)) for _ in range(3)]
    return bodies, nuclei


def _hyperchromatic(rng: np.random.Generator) -> Drawing:
    length, width = _u(rng, 6.0, 12.0), _u(rng, 2.2, 4.5)
    bend = rng.normal(0.0, 0.6)
    xs = np.linspace(-(length - width) / 2, (length - width) / 2, 4)
    ys = bend * (xs / max(length, 1.0)) ** 2 * 4
    segments = [(xs[i], ys[i], xs[i + 1], ys[i + 1], width, 1.0) for i in range(3)]
    return [(0.0, 0.0, length / 2 + 1.0, width / 2 + 1.5, _u(rng, 0.3, 0.8), _u(rng, 0.1, 0.4))], segments


_DRAW = {
    "prophase": _prophase,
    "prometaphase": _prometaphase,
    "metaphase": _metaphase,
    "plate": _plate,
    "ring": _ring,
    "anaphase": _anaphase,
    "lagging": _lagging,
    "telophase": _telophase,
    "tripolar": lambda rng: _polar(rng, 3),
    "multipolar": lambda rng: _polar(rng, int(rng.integers(4, 6))),
    "pyknotic": _pyknotic,
    "apoptotic": _apoptotic,
    "lymphocyte": _lymphocyte,
    "hyperchromatic": _hyperchromatic,
    "karyorrhectic": _karyorrhectic,
}
