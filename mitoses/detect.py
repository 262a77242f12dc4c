"""Two-stage mitosis detection: dark compact candidates in the haematoxylin channel, a small timm CNN
that scores a patch around each, then non-maximum suppression so one figure counts once."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.spatial import cKDTree

from liposcope.mitoses.settings import CandidateParams, MitosisSettings
from liposcope.models.backbones import Backbone, load_classifier
from liposcope.models.card import ModelCard
from liposcope.wsi.slide import Slide
from liposcope.wsi.stain import EOSIN, HEMATOXYLIN_HE, deconvolve, optical_density, stain_matrix
from liposcope.wsi.stream import Box, CoreTile, core_tiles, in_box
from liposcope.wsi.tissue import TissueMask

KIND = "mitosis-classifier"
CLASSES = ("non-mitosis", "mitosis")
_HE = stain_matrix(HEMATOXYLIN_HE, EOSIN)


def find_candidates(
    rgb: np.ndarray, mpp: float, params: CandidateParams, background: np.ndarray | tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of the smoothed haematoxylin amount: positions (N × 2 px, x y) and heights (N).

    Example:
        >>> xy, od = find_candidates(rgb, 0.25, settings.candidates, (240, 240, 240))  # doctest: +SKIP
    """
    h = deconvolve(optical_density(rgb, background), _HE)[..., 0]
    h = cv2.GaussianBlur(h, (0, 0), params.smooth_um / mpp)
    radius = max(1, round(params.min_distance_um / mpp / 2))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    peaks = (h >= cv2.dilate(h, kernel)) & (h >= params.min_od)
    ys, xs = np.nonzero(peaks)
    return np.stack([xs, ys], axis=1).astype(np.float64), h[ys, xs].astype(np.float64)


def cut_patches(rgb: np.ndarray, xy: np.ndarray, patch_px: int) -> np.ndarray:
    """Patches (N × 3 × P × P uint8) centred on ``xy``; the image is mirrored where a patch leaves it."""
    half = patch_px // 2
    padded = cv2.copyMakeBorder(rgb, half, half, half, half, cv2.BORDER_REFLECT_101)
    corner = np.rint(xy).astype(np.int64)
    out = np.empty((len(xy), patch_px, patch_px, 3), np.uint8)
    for k, (x, y) in enumerate(corner):
        out[k] = padded[y : y + patch_px, x : x + patch_px]
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def packaged_model_dir() -> Path:
    """The folder of the detector that ships with liposcope (``mitoses/model/``)."""
    return Path(str(resources.files("liposcope.mitoses") / "model"))


@dataclass(frozen=True)
class Detector:
    """The stage-2 classifier and its card; ``threshold`` is the probability above which a candidate
    is a mitotic figure (chosen on validation slides, stored in the card)."""

    backbone: Backbone
    card: ModelCard
    source: str

    @property
    def threshold(self) -> float:
        return float(self.card.calibration.get("threshold", 0.5))

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> Detector:
        """A model folder from ``liposcope train-mitosis``; ``None`` loads the packaged detector.

        Raises:
            ModelCardError: the folder is not a mitosis model.
        """
        folder = Path(model_dir) if model_dir is not None else packaged_model_dir()
        backbone, card = load_classifier(folder, KIND)
        return cls(backbone, card, "packaged" if folder == packaged_model_dir() else str(folder))

    @torch.inference_mode()
    def score(self, patches: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Mitosis probability of each patch (N × 3 × P × P uint8)."""
        model = self.backbone.model
        device = next(model.parameters()).device
        out = []
        for start in range(0, len(patches), batch_size):
            batch = torch.from_numpy(patches[start : start + batch_size]).to(device)
            logits = model(self.backbone.prepare(batch))
            out.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)


@dataclass(frozen=True)
class Candidates:
    """Candidates of one analysis tile: level-0 positions, haematoxylin peak heights and patches."""

    xy: np.ndarray
    od: np.ndarray
    patches: np.ndarray

    def select(self, keep: np.ndarray) -> Candidates:
        """The candidates where ``keep`` (a mask or indices) says so."""
        return Candidates(self.xy[keep], self.od[keep], self.patches[keep])

    @classmethod
    def concat(cls, parts: list[Candidates], patch_px: int) -> Candidates:
        """All ``parts`` as one (empty, with ``patch_px`` patches, when there are none)."""
        if not parts:
            return cls(np.zeros((0, 2)), np.zeros(0), np.zeros((0, 3, patch_px, patch_px), np.uint8))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("xy", "od", "patches")))


def tile_candidates(tile: CoreTile, settings: MitosisSettings, background: np.ndarray) -> Candidates:
    """The candidates whose centre lies in the tile's core, with their patches."""
    xy, od = find_candidates(tile.rgb, tile.mpp, settings.candidates, background)
    core = tile.in_core(xy)
    return Candidates(tile.to_level0(xy[core]), od[core], cut_patches(tile.rgb, xy[core], settings.patch_px))


def stream_candidates(
    slide: Slide, mask: TissueMask, box: Box, settings: MitosisSettings, background: np.ndarray, desc: str = ""
) -> Iterator[Candidates]:
    """Candidates of every tissue tile in ``box``, tile by tile (memory stays flat)."""
    mpp = max(settings.analysis_mpp, slide.mpp)
    margin = settings.patch_px // 2 + math.ceil(settings.candidates.min_distance_um / mpp)
    for tile in core_tiles(slide, mask, box, mpp, settings.tile_px, margin, desc=desc):
        found = tile_candidates(tile, settings, background)
        yield found.select(mask.at(found.xy) & in_box(found.xy, box))


def suppress(xy_um: np.ndarray, score: np.ndarray, radius_um: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression: the best score wins, neighbours within
    ``radius_um`` are dropped.

    Example:
        >>> suppress(np.array([[0.0, 0], [5, 0], [30, 0]]), np.array([0.9, 0.8, 0.7]), 10.0).tolist()
        [0, 2]
    """
    order = np.argsort(-score, kind="stable")
    tree = cKDTree(xy_um) if len(xy_um) else None
    alive = np.ones(len(xy_um), bool)
    keep = []
    for i in order:
        if not alive[i] or tree is None:
            continue
        keep.append(int(i))
        alive[tree.query_ball_point(xy_um[i], radius_um)] = False
    return np.array(sorted(keep), np.int64)
