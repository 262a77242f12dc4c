"""An independent H-DAB drawing process, for evaluation only (never used for tuning the detector).

python bench/ihc_unseen.py [--seed0 50000] [--images 8] [--workdir bench/.cache/ihc-unseen]

It shares no code with ``liposcope.synth``: whole-image numpy drawing, nuclei as polygons with a random radial Fourier
outline, lognormal sizes, spindle to round shapes, overlaps (optical densities add), smooth / granular / vesicular
chromatin with nucleoli, granular DAB, cytoplasm and stroma fibres with faint DAB, an uneven illumination field,
out-of-focus patches, Gaussian noise, random stain vectors (Beer-Lambert) and JPEG compression. Each image is
written as a PNG (scored with ``--slide-mpp``) beside a CSV of its nuclei (x, y in px, designed grade). Prints per
image the labelling index and H-score errors and detection F1 (4 µm), as ``bench/ihc_accuracy.py`` does.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("CI", "true")  # no progress bars

from liposcope.ihc import load_marker, score_slide
from liposcope.wsi.points import f1_score, match_points

DAB_BINS = ((0.0, 0.1), (0.26, 0.34), (0.46, 0.54), (0.68, 0.95))  # designed mean nuclear DAB OD per grade


@dataclass(frozen=True)
class Drawn:
    """One drawn image: RGB, nucleus centres (px), grades, µm per px."""

    rgb: np.ndarray
    xy: np.ndarray
    grade: np.ndarray
    mpp: float

    @property
    def labelling_index(self) -> float:
        return float(100 * np.mean(self.grade > 0))

    @property
    def h_score(self) -> float:
        return float(100 * np.mean(self.grade))


def _unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = v / np.linalg.norm(v)
    return out


def _outline(rng: np.random.Generator, rx: float, ry: float, angle: float, rough: float) -> np.ndarray:
    """Polygon (k x 2, px, about the origin): an ellipse with a random radial Fourier perturbation."""
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    r = np.ones_like(t)
    for k in range(2, 6):
        r += rough * rng.normal(0, 1 / k) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    x, y = rx * r * np.cos(t), ry * r * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * x - s * y, s * x + c * y], axis=1)


def _texture(rng: np.random.Generator, shape: tuple[int, int], kind: str, mask: np.ndarray, px_um: float) -> np.ndarray:
    """Relative chromatin density over a nucleus patch (mean about 1 inside ``mask``)."""
    noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), max(0.4 / px_um, 0.5))
    noise /= noise.std() + 1e-6
    if kind == "smooth":
        tex = 1 + 0.08 * noise
    elif kind == "granular":
        tex = 1 + 0.35 * noise
    else:  # vesicular: dark rim, pale centre
        depth = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
        rim = np.exp(-depth * px_um / 0.8)
        tex = 0.45 + 1.2 * rim + 0.15 * noise
    for _ in range(int(rng.integers(0, 3))):  # nucleoli
        ys, xs = np.nonzero(cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)))
        if len(ys):
            i = int(rng.integers(len(ys)))
            cv2.circle(tex, (int(xs[i]), int(ys[i])), max(1, round(0.6 / px_um)), 2.2, -1)
    tex = np.clip(tex, 0.1, None)
    inside = tex[mask > 0]
    return tex / (inside.mean() if inside.size else 1.0)


def draw(seed: int, size: int = 1536, mpp: float = 0.25, fraction: float | None = None) -> Drawn:
    """Draw one image; every random choice comes from ``seed``."""
    rng = np.random.default_rng([seed, 77])
    fraction = float(rng.uniform(0.02, 0.6)) if fraction is None else fraction
    px_um = mpp
    h = np.zeros((size, size), np.float32)
    d = np.zeros((size, size), np.float32)
    # stroma: oriented fibres (thin lines), faint H and DAB
    stroma_h, stroma_d = rng.uniform(0.02, 0.1), rng.uniform(0.0, 0.06)
    fibres = np.zeros((size, size), np.float32)
    theta0 = rng.uniform(0, np.pi)
    for _ in range(int(size * size * mpp * mpp / 150)):
        x, y = rng.uniform(0, size, 2)
        a = theta0 + rng.normal(0, 0.4)
        length = rng.uniform(10, 60) / mpp
        p1 = (int(x), int(y))
        p2 = (int(x + length * np.cos(a)), int(y + length * np.sin(a)))
        cv2.line(fibres, p1, p2, float(rng.uniform(0.5, 1.0)), max(1, round(rng.uniform(0.4, 1.5) / mpp)))
    fibres = cv2.GaussianBlur(fibres, (0, 0), 0.4 / mpp)
    h += stroma_h * (0.4 + fibres)
    d += stroma_d * (0.3 + fibres)
    # nuclei: Poisson count, lognormal size, random elongation; a few overlap
    mean_d_um = rng.uniform(6.0, 11.0)
    crowd = rng.uniform(0.15, 0.45)  # share of the tissue area covered by nuclei
    n = int(crowd * (size * mpp) ** 2 / (np.pi * (mean_d_um / 2) ** 2))
    kinds = rng.choice(["smooth", "granular", "vesicular"], n, p=_unit(rng.uniform(0.2, 1, 3)) ** 2)
    rough = rng.uniform(0.03, 0.15)
    centres: list[tuple[float, float]] = []
    grades: list[int] = []
    tree_xy = np.zeros((0, 2))
    radii: list[float] = []
    for i in range(n):
        diam = float(np.exp(rng.normal(np.log(mean_d_um), 0.18))) / mpp
        aspect = float(rng.uniform(1.0, 2.2))
        minor = max(diam / np.sqrt(aspect), 4.6 / mpp)
        major = diam * diam / minor
        rx, ry = major / 2, minor / 2
        x, y = rng.uniform(rx + 4, size - rx - 4, 2)
        if len(radii):
            dist = np.hypot(*(tree_xy - [x, y]).T)
            if np.any(dist < 0.7 * (np.array(radii) + (rx + ry) / 2)):
                continue
        poly = _outline(rng, rx, ry, float(rng.uniform(0, np.pi)), rough)
        x0, y0 = int(np.floor(x + poly[:, 0].min())) - 2, int(np.floor(y + poly[:, 1].min())) - 2
        x1, y1 = int(np.ceil(x + poly[:, 0].max())) + 3, int(np.ceil(y + poly[:, 1].max())) + 3
        if x0 < 0 or y0 < 0 or x1 > size or y1 > size:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((poly + np.array([x - x0, y - y0])) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        m = mask.astype(np.float32) / 255
        g = int(rng.random() < fraction) * int(rng.integers(1, 4))
        tex = _texture(rng, mask.shape, str(kinds[i]), mask > 127, px_um)
        h_od = rng.uniform(0.25, 0.7) * (0.5 if g == 3 else 1.0)
        dab = rng.uniform(*DAB_BINS[g])
        dab_tex = 1 + 0.3 * (cv2.GaussianBlur(rng.standard_normal(mask.shape).astype(np.float32), (0, 0), 0.8) * 3)
        h[y0:y1, x0:x1] += m * h_od * tex
        d[y0:y1, x0:x1] += m * dab * np.clip(dab_tex, 0.3, 1.7)
        if g and rng.random() < 0.5:  # cytoplasm with faint DAB around positive cells
            ring = cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=max(1, round(1.5 / mpp))) - mask
            d[y0:y1, x0:x1] += ring.astype(np.float32) / 255 * rng.uniform(0.02, 0.1)
        centres.append((x, y))
        grades.append(g)
        tree_xy = np.vstack([tree_xy, [x, y]])
        radii.append((rx + ry) / 2)
    return _render(rng, h, d, np.array(centres) + 0.5, np.array(grades), mpp)


def _render(rng: np.random.Generator, h: np.ndarray, d: np.ndarray, xy: np.ndarray, g: np.ndarray, mpp: float) -> Drawn:
    size = h.shape[0]
    # a glass hole (lumen), out-of-focus patches, optics blur
    hole = np.zeros_like(h)
    cv2.circle(hole, tuple(int(v) for v in rng.uniform(0, size, 2)), int(rng.uniform(0.05, 0.15) * size), 1.0, -1)
    hole = cv2.GaussianBlur(hole, (0, 0), 3)
    keep = hole[np.clip(xy[:, 1].astype(int), 0, size - 1), np.clip(xy[:, 0].astype(int), 0, size - 1)] < 0.05
    h, d = h * (1 - hole), d * (1 - hole)
    sharp = 0.4 / mpp
    blurred_h, blurred_d = (cv2.GaussianBlur(c, (0, 0), rng.uniform(1.0, 1.8) / mpp) for c in (h, d))
    focus = np.zeros_like(h)
    for _ in range(int(rng.integers(0, 3))):
        cv2.circle(focus, tuple(int(v) for v in rng.uniform(0, size, 2)), int(rng.uniform(0.1, 0.25) * size), 1.0, -1)
    focus = cv2.GaussianBlur(focus, (0, 0), 20)
    h = (1 - focus) * cv2.GaussianBlur(h, (0, 0), sharp) + focus * blurred_h
    d = (1 - focus) * cv2.GaussianBlur(d, (0, 0), sharp) + focus * blurred_d
    v_h = _unit(np.array([0.65, 0.70, 0.29]) + rng.normal(0, 0.06, 3))
    v_d = _unit(np.array([0.27, 0.57, 0.78]) + rng.normal(0, 0.06, 3))
    od = h[..., None] * v_h + d[..., None] * v_d
    yy, xx = np.mgrid[0:size, 0:size] / size
    light = 1 - rng.uniform(0, 0.12) * ((xx - rng.uniform()) ** 2 + (yy - rng.uniform()) ** 2)
    white = rng.uniform(225, 250, 3)
    rgb = white * light[..., None] * 10 ** (-od) + rng.normal(0, rng.uniform(1, 4), od.shape)
    rgb8 = np.clip(rgb, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", rgb8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(55, 92))])
    rgb8 = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else rgb8
    return Drawn(np.ascontiguousarray(rgb8), xy[keep], g[keep], mpp)


def evaluate(seed: int, workdir: Path, mpp: float, marker: str) -> tuple[float, float, float, int, int]:
    """(LI error pp, H-score error, F1, nuclei found, nuclei drawn) for one drawn image."""
    drawn = draw(seed, mpp=mpp, size=round(1536 * 0.25 / mpp) if mpp > 0.25 else 1536)
    path = workdir / f"unseen-{seed}-{mpp}.png"
    cv2.imwrite(str(path), drawn.rgb[..., ::-1])
    result = score_slide(path, load_marker(marker), slide_mpp=mpp)
    f1 = f1_score(*match_points(result.nuclei.xy, drawn.xy, 4.0 / mpp))
    li = float(result.scores["labelling_index_pct"]) - drawn.labelling_index  # type: ignore[arg-type]
    hs = float(result.scores["h_score"]) - drawn.h_score  # type: ignore[arg-type]
    return li, hs, f1, len(result.nuclei), len(drawn.xy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed0", type=int, default=50000, help="first seed (default 50000)")
    parser.add_argument("--images", type=int, default=8, help="images (alternately Ki-67 at 0.25, MDM2 at 0.5 µm/px)")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).parent / ".cache" / "ihc-unseen")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(args.images):
        seed = args.seed0 + k
        mpp, marker = ((0.25, "ki67"), (0.5, "mdm2"))[k % 2]
        li, hs, f1, found, drawn = evaluate(seed, args.workdir, mpp, marker)
        rows.append((li, hs, f1))
        print(f"seed {seed} {marker} {mpp} µm/px: LI {li:+.2f} pp, H {hs:+.1f}, F1 {f1:.3f}, found {found} / {drawn}")
    e = np.array(rows)
    ok = (np.abs(e[:, 0]) <= 3) & (np.abs(e[:, 1]) <= 20) & (e[:, 2] >= 0.85)
    print(
        f"{len(e)} images: |LI error| max {np.abs(e[:, 0]).max():.2f} pp (bias {e[:, 0].mean():+.2f}); "
        f"|H error| max {np.abs(e[:, 1]).max():.1f}; F1 min {e[:, 2].min():.3f} (mean {e[:, 2].mean():.3f}); "
        f"within acceptance {int(ok.sum())}/{len(e)}"
    )


if __name__ == "__main__":
    main()
