"""Nuclei in an H-DAB image: deconvolution, multi-scale blob seeds, seeded watershed, per-nucleus measurements.

1. Haematoxylin and DAB optical density by colour deconvolution against the slide's background.
2. Their sum, capped so a dark nucleus cannot drown a pale neighbour, goes through difference-of-Gaussians
   filters from the smallest to the largest nucleus scale; their maxima are the seeds, one per nucleus (a seed
   inside a stronger blob's radius is dropped), touching nuclei included.
3. A watershed over the blob response gives each seed its region; each nucleus is then cut at
   ``edge_fraction`` between its seed's value and its surroundings, so pale and dark nuclei get true outlines.
4. Steps 2-3 run again on haematoxylin alone, which finds pale negative nuclei that a DAB-tinted surrounding
   hides in the sum; those not already found are added.
5. Size and width limits in µm; per nucleus: centre, area, and mean DAB and haematoxylin OD over its core
   (``inset_um`` inside the outline, where blur and neighbours do not reach).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import find_objects
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from skimage.segmentation import watershed

from liposcope.ihc.marker import NucleusParams, StainVectors
from liposcope.wsi.stain import deconvolve, estimate_background, macenko_vectors, optical_density, stain_matrix

_DOG_RATIO = 1.6  # outer / inner Gaussian of the blob filter (≈ Laplacian of Gaussian)
_SCALE_STEP = 1.25  # ratio of successive blob scales
_SEED_CAP_OD = 0.35  # OD at which the seed filter saturates
_SOLIDITY = 0.93  # two pieces whose union fills this share of its convex hull are one nucleus
#: Macenko keeps pixels with every channel above this OD; the usual 0.15 drops pale haematoxylin (low blue OD)
#: and keeps DAB-mixed pixels, dragging the fitted haematoxylin vector towards DAB.
_MACENKO_MIN_OD = 0.08


@dataclass(frozen=True)
class Deconvolver:
    """Stain matrix (rows: haematoxylin, DAB, third) and the slide's background ``I0``."""

    matrix: np.ndarray
    background: np.ndarray
    source: str

    def stains(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Haematoxylin and DAB optical density (float32, h × w) of a uint8 RGB image."""
        amounts = deconvolve(optical_density(rgb, self.background), self.matrix)
        return amounts[..., 0], amounts[..., 1]

    def to_dict(self) -> dict[str, object]:
        return {
            "hematoxylin": self.matrix[0].round(4).tolist(),
            "dab": self.matrix[1].round(4).tolist(),
            "third": self.matrix[2].round(4).tolist(),
            "background_rgb": self.background.round(1).tolist(),
            "vectors_from": self.source,
        }


def make_deconvolver(overview: np.ndarray, tissue: np.ndarray, stains: StainVectors) -> Deconvolver:
    """Deconvolver for one slide: background from its overview, haematoxylin from config or Macenko.

    Args:
        overview: RGB overview (thumbnail) of the slide.
        tissue: Tissue mask of the same shape as ``overview`` (for Macenko).
        stains: Configured vectors; with ``fit_to_slide`` the haematoxylin row is fitted (Macenko) and the
            DAB row is the configured one moved into the slide's stain plane (see :func:`_into_plane`).
    """
    background = estimate_background(overview)
    h, dab, source = stains.hematoxylin, stains.dab, "config"
    if stains.fit_to_slide:
        fitted = macenko_vectors(overview, tissue, min_od=_MACENKO_MIN_OD)
        if fitted is None:
            source = "config (Macenko: too few stained pixels)"
        else:
            h, dab, source = tuple(fitted[0]), tuple(_into_plane(np.asarray(dab), fitted)), "macenko"
    matrix = stain_matrix(h, dab, stains.other or None).astype(np.float32)
    return Deconvolver(matrix, background.astype(np.float32), source)


def _into_plane(vector: np.ndarray, plane: np.ndarray, max_degrees: float = 15.0) -> np.ndarray:
    """``vector`` projected into the plane of the rows of ``plane`` (unit length), or unchanged if that
    turns it more than ``max_degrees``: Macenko's own DAB end is a haematoxylin mixture (every positive
    nucleus holds haematoxylin), but the plane it spans with haematoxylin carries the slide's DAB hue."""
    normal = np.cross(plane[0], plane[1])
    normal /= np.linalg.norm(normal)
    unit = vector / np.linalg.norm(vector)
    moved = unit - (unit @ normal) * normal
    moved /= np.linalg.norm(moved)
    out: np.ndarray = moved if np.degrees(np.arccos(np.clip(moved @ unit, -1, 1))) <= max_degrees else unit
    return out


@dataclass(frozen=True)
class Nuclei:
    """Detected nuclei: centres (x, y) in the image's pixels, area (µm²), mean DAB and H optical density."""

    xy: np.ndarray
    area_um2: np.ndarray
    dab_od: np.ndarray
    h_od: np.ndarray

    def __len__(self) -> int:
        return len(self.xy)

    def select(self, keep: np.ndarray) -> Nuclei:
        return Nuclei(self.xy[keep], self.area_um2[keep], self.dab_od[keep], self.h_od[keep])

    @staticmethod
    def concat(parts: list[Nuclei]) -> Nuclei:
        if not parts:
            return Nuclei(np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.zeros(0))
        return Nuclei(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("xy", "area_um2", "dab_od", "h_od")))


def detect_nuclei(
    rgb: np.ndarray, mpp: float, deconvolver: Deconvolver, params: NucleusParams, beyond: np.ndarray | None = None
) -> Nuclei:
    """Nuclei of an RGB image at ``mpp`` µm/px (see the module docstring for the method).

    ``beyond`` marks pixels past the slide's edge: a nucleus cut by the edge keeps its visible part, and the
    width limit (which tells round from spindle nuclei) is not applied to it, as a cut nucleus's width is not its own.

    Example:
        >>> nuclei = detect_nuclei(tile, 0.5, deconvolver, load_marker("ki67").nuclei)  # doctest: +SKIP
        >>> nuclei.xy.shape  # doctest: +SKIP
        (812, 2)
    """
    h, dab = deconvolver.stains(rgb)
    edge = None
    if beyond is not None and beyond.any():  # pixels that touch the slide's edge, or lie past it
        edge = cv2.dilate(beyond.astype(np.uint8), np.ones((3, 3), np.uint8))
    stained = np.clip(h, 0, None)
    found = _find(stained + np.clip(dab, 0, None), mpp, h, dab, params, edge)
    pale = _find(stained, mpp, h, dab, params, edge)
    if len(found) and len(pale):
        distance, nearest = cKDTree(found.xy).query(pale.xy)
        reach = np.maximum(np.sqrt(found.area_um2[nearest] / np.pi), params.min_distance_um) / mpp
        pale = pale.select(distance >= reach)
    return Nuclei.concat([found, pale])


def _find(
    od: np.ndarray,
    mpp: float,
    h: np.ndarray,
    dab: np.ndarray,
    params: NucleusParams,
    edge: np.ndarray | None,
) -> Nuclei:
    """Nuclei in one optical-density image: seeds, watershed, cut, measurement (stain means from ``h``, ``dab``);
    ``edge`` marks the slide's edge and beyond (a nucleus touching it is cut)."""
    signal = cv2.GaussianBlur(od, (0, 0), params.smooth_um / mpp)
    foreground = signal > params.min_od
    blobs, seeds, texture = _seeds(np.minimum(od, _SEED_CAP_OD), foreground, mpp, params)
    if len(seeds) == 0:
        return Nuclei.concat([])
    markers = np.zeros(od.shape, np.int32)
    markers[seeds[:, 0], seeds[:, 1]] = np.arange(1, len(seeds) + 1)
    near = cv2.distanceTransform((markers == 0).astype(np.uint8), cv2.DIST_L2, 5) * mpp < params.reach_um
    labels = watershed(-blobs, markers, mask=foreground & near)  # type: ignore[no-untyped-call]
    top = signal[seeds[:, 0], seeds[:, 1]]
    labels = _cut_at_edge(labels, signal, top, params.edge_fraction)
    labels, top = _merge_pieces(labels, blobs, seeds, top, params.merge_saddle)
    n = len(top)
    radius = max(1, round(params.reach_um / mpp))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    contrast = signal - cv2.morphologyEx(signal, cv2.MORPH_OPEN, disk)  # above the local stroma level
    cut = np.zeros(n + 1, bool) if edge is None else _per_label(np.maximum, edge, labels, n) > 0
    floor = max(params.min_contrast_od, params.texture_floor * texture)
    return _measure(labels, n, mpp, dab, h, contrast, floor, params, cut[1:])


def _merge_pieces(
    labels: np.ndarray, blobs: np.ndarray, seeds: np.ndarray, top: np.ndarray, ratio: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge watershed regions that are pieces of one nucleus: two neighbours whose blob response along their
    shared border (the saddle) stays above ``ratio`` times the lower of their two seeds' responses have no dip
    between them, as an elongated or textured nucleus seeded twice has none while touching nuclei do.

    Returns the relabelled image (1..m) and, per new label, the highest ``top`` of its seeds.
    """
    n = len(seeds)
    pairs, saddle = [], []
    for a, b, va, vb in (
        (labels[:, :-1], labels[:, 1:], blobs[:, :-1], blobs[:, 1:]),
        (labels[:-1, :], labels[1:, :], blobs[:-1, :], blobs[1:, :]),
    ):
        border = (a != b) & (a > 0) & (b > 0)
        lo, hi = np.minimum(a[border], b[border]), np.maximum(a[border], b[border])
        pairs.append(lo.astype(np.int64) * (n + 1) + hi)
        saddle.append(np.minimum(va[border], vb[border]))
    key, value = np.concatenate(pairs), np.concatenate(saddle)
    if ratio >= 1 or key.size == 0:
        return labels, top
    order = np.argsort(key, kind="stable")
    key, value = key[order], value[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    best = np.maximum.reduceat(value, first)
    a, b = np.divmod(key[first], n + 1)
    peak = np.concatenate([[0.0], blobs[seeds[:, 0], seeds[:, 1]]])
    join = best >= ratio * np.minimum(peak[a], peak[b])
    graph = coo_matrix((np.ones(int(join.sum())), (a[join], b[join])), shape=(n + 1, n + 1))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    boxes = find_objects(labels)
    for group in np.flatnonzero(sizes > 1):
        members = np.flatnonzero(component == group)
        if not _convex(labels, [boxes[m - 1] for m in members], members):
            component[members] = len(component) + members  # not one nucleus: its pieces stay apart
    new = np.unique(component[1:], return_inverse=True)[1] + 1  # labels 1..m
    merged_top = np.zeros(int(new.max()), np.float32)
    np.maximum.at(merged_top, new - 1, top)
    out: np.ndarray = np.concatenate([[0], new]).astype(np.int32)[labels]
    return out, merged_top


def context_um(params: NucleusParams) -> float:
    """How far around a nucleus the detector looks: tiles overlap by this much so border nuclei come out whole."""
    return params.reach_um + 3 * _DOG_RATIO * params.seed_scales_um[1]


def _seeds(
    image: np.ndarray, foreground: np.ndarray, mpp: float, params: NucleusParams
) -> tuple[np.ndarray, np.ndarray, float]:
    """Blob response (max over scales), seeds (row, col), strongest first, and the image's texture level.

    Seeds are the spatial maxima of the difference-of-Gaussians response at each scale (the response is scale
    normalised, so a blob is strongest at its own size); strongest first, a seed within ``min_distance_um`` of a
    kept one or within its radius (√2 σ) is dropped. The texture level (see :func:`_texture`) sets the image's
    own contrast floor: a nucleus must stand ``texture_floor`` times above it, so grainy stroma, noise and JPEG
    blocks are not taken for nuclei while a smooth image keeps its faint ones.
    """
    low, high = (s / mpp for s in params.seed_scales_um)
    sigmas = low * _SCALE_STEP ** np.arange(int(np.log(high / low) / np.log(_SCALE_STEP) + 1e-6) + 1)
    layers = [cv2.GaussianBlur(image, (0, 0), s) - cv2.GaussianBlur(image, (0, 0), _DOG_RATIO * s) for s in sigmas]
    texture = _texture(image, layers[0], foreground)
    found = []  # (row, col, scale, response) of the maxima of each layer
    for scale, layer in enumerate(layers):
        peak = layer == cv2.dilate(layer, np.ones((3, 3), np.uint8))
        rows, cols = np.nonzero(peak & (layer >= params.seed_min_contrast) & foreground)
        found.append(np.column_stack([rows, cols, np.full(len(rows), scale), layer[rows, cols]]))
    candidates = np.concatenate(found)
    peaks = candidates[np.argsort(-candidates[:, 3], kind="stable"), :3].astype(np.int64)
    reach = np.ceil(np.maximum(np.sqrt(2) * sigmas, params.min_distance_um / mpp)).astype(int) - 1
    taken = np.zeros(image.shape, np.uint8)  # discs of the kept seeds
    kept: list[int] = []
    for i, (y, x, scale) in enumerate(peaks):
        if not taken[y, x]:
            kept.append(i)
            cv2.circle(taken, (int(x), int(y)), int(reach[scale]), 1, -1)
    return np.maximum.reduce(layers), peaks[kept, :2], texture


def _texture(image: np.ndarray, response: np.ndarray, foreground: np.ndarray) -> float:
    """Robust spread (1.4826 × median absolute deviation) of the finest blob response over the paler half of the
    foreground, i.e. over stroma rather than nuclei; every second pixel each way is enough."""
    image, response, foreground = image[::2, ::2], response[::2, ::2], foreground[::2, ::2]
    if not foreground.any():
        return 0.0
    pale = foreground & (image <= np.median(image[foreground]))
    return _robust_spread(response[pale])


def _robust_spread(values: np.ndarray) -> float:
    """1.4826 × the median absolute deviation (a normal sample's standard deviation, robust to outliers)."""
    median = float(np.median(values))
    return 1.4826 * float(np.median(np.abs(values - median)))


def _convex(labels: np.ndarray, boxes: list[tuple[slice, slice] | None], members: np.ndarray) -> bool:
    """Whether the labels ``members`` together have a convex outline (their pixels, holes filled, fill at least
    ``_SOLIDITY`` of their convex hull's pixels): one nucleus seeded several times does, touching nuclei leave a waist.
    ``boxes`` are the members' bounding slices (``find_objects``)."""
    present = [b for b in boxes if b is not None]
    if not present:
        return False
    rows = slice(min(b[0].start for b in present), max(b[0].stop for b in present))
    cols = slice(min(b[1].start for b in present), max(b[1].stop for b in present))
    union = np.isin(labels[rows, cols], members).astype(np.uint8)
    contours, _ = cv2.findContours(union, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    solid = cv2.drawContours(np.zeros_like(union), contours, -1, 1, -1)  # a vesicular nucleus's pale centre too
    filled = cv2.fillConvexPoly(np.zeros_like(union), cv2.convexHull(cv2.findNonZero(union)), 1)
    return bool(solid.sum() >= _SOLIDITY * filled.sum())


def _cut_at_edge(labels: np.ndarray, signal: np.ndarray, top: np.ndarray, fraction: float) -> np.ndarray:
    """Keep each region's pixels above ``fraction`` of the way from its lowest signal to its seed's (``top``)."""
    low = _per_label(np.minimum, signal, labels, len(top))
    peak = np.concatenate([[0.0], top]).astype(np.float32)
    edge = low[labels] + fraction * (peak[labels] - low[labels])
    out: np.ndarray = np.where((labels > 0) & (signal >= edge), labels, 0)
    return out


def _measure(
    labels: np.ndarray,
    n: int,
    mpp: float,
    dab: np.ndarray,
    h: np.ndarray,
    contrast: np.ndarray,
    floor: float,
    params: NucleusParams,
    cut: np.ndarray,
) -> Nuclei:
    """Per-label moments with bincount (no per-object Python loop), then size, width and contrast limits;
    stain means over each nucleus's core (see :func:`_core`)."""
    inside = np.flatnonzero(labels)  # only labelled pixels carry weight
    flat = labels.ravel()[inside]
    ys, xs = np.divmod(inside.astype(np.float64), labels.shape[1])

    def total(weights: np.ndarray | None = None, of: np.ndarray = flat) -> np.ndarray:
        out: np.ndarray = np.bincount(of, weights, minlength=n + 1)[1:]
        return out

    count = total()
    safe = np.maximum(count, 1)
    cx, cy = total(xs) / safe, total(ys) / safe
    vxx = total(xs * xs) / safe - cx**2
    vyy = total(ys * ys) / safe - cy**2
    vxy = total(xs * ys) / safe - cx * cy
    minor_var = (vxx + vyy) / 2 - np.sqrt(((vxx - vyy) / 2) ** 2 + vxy**2)
    width_um = 4 * np.sqrt(np.clip(minor_var, 0, None) + 1 / 12) * mpp  # minor axis of the equivalent ellipse
    area = count * mpp * mpp
    peak = _per_label(np.maximum, contrast, labels, n)[1:]
    keep = (area >= params.min_area_um2) & (area <= params.max_area_um2) & ((width_um >= params.min_width_um) | cut)
    keep &= peak >= floor
    core = _core(labels, n, params.inset_um / mpp).ravel()[inside]
    in_core = np.maximum(total(of=core), 1)
    nuclei = Nuclei(
        np.stack([cx + 0.5, cy + 0.5], axis=1),  # pixel centres: (0.5, 0.5) is the middle of the first pixel
        area,
        total(dab.ravel()[inside].astype(np.float64), core) / in_core,
        total(h.ravel()[inside].astype(np.float64), core) / in_core,
    )
    return nuclei.select(keep)


def _per_label(reduce: np.ufunc, values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """``reduce`` (np.minimum or np.maximum) of ``values`` over each label 0..n (0 where a label has no pixels)."""
    out = np.full(n + 1, np.inf if reduce is np.minimum else -np.inf, np.float32)
    reduce.at(out, labels.ravel(), values.ravel())
    out[~np.isfinite(out)] = 0.0
    return out


def _core(labels: np.ndarray, n: int, inset_px: float) -> np.ndarray:
    """Labels shrunk to pixels at least ``inset_px`` inside their outline (also where they touch another
    nucleus); a nucleus too small to have such pixels keeps all of its own."""
    kernel = np.ones((3, 3), np.uint8)
    as_float = labels.astype(np.float32)
    outline = (cv2.dilate(as_float, kernel) != cv2.erode(as_float, kernel)) | (labels == 0)
    depth = cv2.distanceTransform((~outline).astype(np.uint8), cv2.DIST_L2, 5)
    core = np.where(depth >= inset_px, labels, 0)
    has_core = np.bincount(core.ravel(), minlength=n + 1) > 0
    out: np.ndarray = np.where(has_core[labels], core, labels)
    return out
