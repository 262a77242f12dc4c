"""Slide inference: ``predict_slide(path, model)`` runs the tiling, encoder and MIL head a model card records.

The result carries calibrated probabilities, per-tile attention and scores, and warnings for the
situations where a pathologist should not trust the answer. In each of those situations (too
little tissue, unusual mpp, stain or features) and when the calibrated top probability is below
the card's ``abstention.min_confidence``, the model abstains: no call, only the probabilities.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from liposcope.errors import ModelCardError, where
from liposcope.inference.result import SlidePrediction
from liposcope.io import provenance, sha256_file
from liposcope.models.backbones import Backbone, backbone_from_spec
from liposcope.models.calibration import softmax
from liposcope.models.card import WEIGHTS_FILE, ModelCard, load_mil, model_hash
from liposcope.models.encode import encode, pick_device
from liposcope.wsi import Slide, TissueParams, build_grid, detect_tissue
from liposcope.wsi.stain import stain_descriptor

log = logging.getLogger(__name__)

BACKBONE_FILE = "backbone.safetensors"
DEMO_MODEL = "demo"  # the name of the packaged demo model wherever a model folder is asked for
MIN_TILES = 16  # fewer tiles than this is too little tissue for a slide-level call
MPP_TOLERANCE = 0.25  # relative difference from the training slides' median mpp before warning


@dataclass(frozen=True)
class Model:
    """A MIL head with its card and the tile encoder it was trained on."""

    head: nn.Module
    card: ModelCard
    backbone: Backbone
    folder: Path
    sha256: str
    hash: str  # of the card and the weights together (:func:`liposcope.models.card.model_hash`)

    def describe(self) -> dict[str, Any]:
        """Model facts for outputs and reports."""
        return {
            "name": self.folder.name,
            "path": str(self.folder.resolve()),
            "sha256": self.sha256,
            "head": asdict(self.card.head),
            "backbone": self.card.backbone.name,
            "backbone_weights_sha256": self.card.backbone.weights_sha256,
            "classes": list(self.card.classes),
            "tiling": asdict(self.card.tiling),
            "tissue": asdict(self.card.tissue_settings),
            "temperature": self.card.temperature,
            "liposcope_version": self.card.liposcope_version,
        }


def demo_model_dir() -> Path:
    """The packaged demo model folder (see its README.md for how it was trained)."""
    return Path(str(resources.files("liposcope.inference") / "demo_model"))


def load_model(folder: str | Path, *, weights: str | Path | None = None) -> Model:
    """Load ``model.json`` + ``model.safetensors`` and rebuild the backbone; ``"demo"`` names the packaged model.

    The backbone weights come from ``weights``, else ``backbone.safetensors`` in the folder, else (for a
    model trained on seeded random features) the same seeded initialisation.

    Raises:
        ModelCardError: missing files, or backbone weights that do not match the card.

    Example:
        >>> model = load_model("runs/abmil/model")  # doctest: +SKIP
    """
    folder = demo_model_dir() if str(folder) == DEMO_MODEL else Path(folder)
    head, card = load_mil(folder)
    source: str | Path | None = weights
    if source is None and (folder / BACKBONE_FILE).is_file():
        source = folder / BACKBONE_FILE
    if source is None and card.backbone.weights_sha256.startswith("random:"):
        source = "random"
    if source is None:
        msg = where(
            folder,
            f"the model needs its {card.backbone.name} backbone weights (sha256 {card.backbone.weights_sha256[:12]})",
            f"pass --weights PATH, or put them in the folder as {BACKBONE_FILE}",
        )
        raise ModelCardError(msg)
    head.eval()
    backbone = backbone_from_spec(card.backbone, source)
    weights_sha256 = sha256_file(folder / WEIGHTS_FILE)
    return Model(head, card, backbone, folder, weights_sha256, model_hash(folder, weights_sha256))


def predict_slide(
    path: str | Path,
    model: Model,
    *,
    slide_mpp: float | None = None,
    tissue: TissueParams | None = None,
    device: str = "auto",
    batch_size: int = 64,
    workers: int = 0,
    precision: str = "fp32",
) -> SlidePrediction:
    """Classify one slide with ``model``, detecting tissue and tiling exactly as the model's card says.

    ``tissue`` overrides the card's tissue detector (for experiments; the card's is what the model was trained on).

    Raises:
        LiposcopeError: bad slide, unknown mpp, no tissue (see ``wsi``).

    Example:
        >>> pred = predict_slide("case.svs", load_model("runs/abmil/model"))  # doctest: +SKIP
        >>> pred.predicted_class, round(pred.confidence, 2)  # doctest: +SKIP
        ('DDLPS', 0.93)
    """
    card = model.card
    with Slide(path, mpp=slide_mpp) as slide:
        mask, thumbnail = detect_tissue(slide, tissue or card.tissue_settings)
        grid = build_grid(slide, mask, card.tiling)
        stain = stain_descriptor(thumbnail, mask.resized(thumbnail.shape[:2]))
        facts = slide.describe()
    features = encode(
        grid, model.backbone, pick_device(device), batch_size=batch_size, workers=workers, precision=precision
    )
    logits, attention, tile_logits = _run_head(model.head, features)
    warnings = _warnings(card, len(grid), mask.area_mm2, grid.slide_mpp, stain, features.mean(axis=0))
    for warning in warnings:
        log.warning("%s: %s", path, warning)
    probabilities = softmax(logits[None], card.temperature)[0]
    reasons = abstain_reasons(warnings, float(probabilities.max()), card.min_confidence)
    return SlidePrediction(
        slide_path=str(Path(path).resolve()),
        slide_id=grid.slide_id,
        classes=card.classes,
        probabilities=probabilities,
        coords_level0=grid.coords_level0,
        tile_size_level0=grid.tile_size_level0,
        tile_px=card.tiling.tile_px,
        target_mpp=card.tiling.target_mpp,
        attention=attention,
        tile_scores=softmax(tile_logits, card.temperature),
        tissue_area_mm2=mask.area_mm2,
        slide_dimensions=(int(facts["dimensions"][0]), int(facts["dimensions"][1])),
        slide_mpp=grid.slide_mpp,
        mpp_source=grid.mpp_source,
        thumbnail=thumbnail,
        thumbnail_downsample=facts["dimensions"][0] / thumbnail.shape[1],
        warnings=tuple(warnings),
        abstain_reasons=reasons,
        model=model.describe(),
        provenance=provenance(slide=facts, model=model.describe(), stain_descriptor=stain.tolist()),
    )


@torch.inference_mode()
def _run_head(head: nn.Module, features: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slide logits (C), attention (N) and per-tile logits (N × C, each tile scored as a bag of one)."""
    x = torch.from_numpy(features)
    out = head(x[None])  # 1 x n x d → logits 1 x c, attention 1 x n
    tiles = torch.cat([head(x[i : i + chunk, None, :]).logits for i in range(0, len(x), chunk)])  # n x c
    return out.logits[0].numpy(), out.attention[0].numpy(), tiles.numpy()


def abstain_reasons(warnings: list[str], confidence: float, min_confidence: float) -> tuple[str, ...]:
    """Why no call is made: every out-of-distribution warning, and a top probability below the card's threshold.

    Example:
        >>> abstain_reasons([], 0.41, 0.6)
        ('low confidence: top probability 0.41 is below the model's threshold 0.60',)
    """
    reasons = list(warnings)
    if confidence < min_confidence:
        reasons.append(
            f"low confidence: top probability {confidence:.2f} is below the model's threshold {min_confidence:.2f}"
        )
    return tuple(reasons)


def _warnings(
    card: ModelCard, n_tiles: int, area_mm2: float, slide_mpp: float, stain: np.ndarray, mean_feature: np.ndarray
) -> list[str]:
    """What a pathologist must know before trusting this prediction."""
    out = []
    if n_tiles < MIN_TILES:
        out.append(f"too little tissue: {n_tiles} tiles ({area_mm2:.2f} mm²), fewer than {MIN_TILES}")
    mpps = card.training.get("slide_mpp")
    if mpps and abs(slide_mpp - mpps[1]) > MPP_TOLERANCE * mpps[1]:
        out.append(f"slide mpp {slide_mpp:.3f} µm/px is far from the training slides' ({mpps[0]:.3f}–{mpps[2]:.3f})")
    if slide_mpp > card.tiling.target_mpp * 1.1:
        coarse = f"slide mpp {slide_mpp:.3f} is coarser than the model's {card.tiling.target_mpp}"
        out.append(f"{coarse}: tiles are upsampled and lack detail the model was trained on")
    if card.stain is not None and float(card.stain.distance(stain.astype(np.float64))[0]) > card.stain.threshold:
        out.append("stain colours are unlike the training slides' (beyond their 99th percentile)")
    if card.ood is not None and float(card.ood.distance(mean_feature.astype(np.float64))[0]) > card.ood.threshold:
        out.append("tile features are unlike the training slides' (beyond their 99th percentile)")
    return out
