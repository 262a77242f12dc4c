"""The model format: ``model.json`` (a :class:`ModelCard`) next to ``model.safetensors``.

Training, inference and the mitosis detector all read and write models through this module.
The card holds everything needed to rebuild and use the model: classes, head name and
hyperparameters, backbone name, weights hash and normalisation, tiling, calibration and
out-of-distribution statistics. Weights load with safetensors only; nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from liposcope import __version__
from liposcope.config import from_dict
from liposcope.errors import ConfigError, ModelCardError, where
from liposcope.io import atomic_path, sha256_file
from liposcope.models.mil import create_mil
from liposcope.wsi.grid import TileSpec
from liposcope.wsi.tissue import TissueParams

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CARD_FILE, WEIGHTS_FILE = "model.json", "model.safetensors"


@dataclass(frozen=True)
class HeadSpec:
    """The network to rebuild: a registered head ``name`` and its hyperparameters."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Normalisation:
    """Per-channel RGB ``mean`` and ``std`` the backbone's input tiles are normalised with."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class BackboneSpec:
    """The tile encoder the features came from: timm ``name`` and ``kwargs``, weights hash, input normalisation.

    ``input_px`` is the side tiles are resized to for models that need a fixed input (ViTs without
    dynamic image size); ``None`` feeds tiles at their tiled size.
    """

    name: str
    weights_sha256: str
    normalisation: Normalisation
    feature_dim: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_px: int | None = None


@dataclass(frozen=True)
class OODStats:
    """Where training slides' mean features lie: a probabilistic-PCA Mahalanobis distance.

    ``components`` (k x d, orthonormal rows) carry ``variances`` (k); the remaining directions
    share ``residual_variance``. ``threshold`` is the 99th percentile of the training slides'
    distances: a new slide above it is unlike the training data.
    """

    mean: tuple[float, ...]
    components: tuple[tuple[float, ...], ...]
    variances: tuple[float, ...]
    residual_variance: float
    threshold: float
    n_slides: int

    @classmethod
    def fit(cls, slide_means: np.ndarray, max_components: int = 8) -> OODStats:
        """Fit on one vector per training slide (n x d); the threshold comes from leave-one-out distances.

        Each training slide's distance is measured by a model fitted without it, so the 99th
        percentile reflects how far a new slide from the same source lies (distances of the fitted
        slides themselves are biased low and would flag ordinary new slides).

        Example:
            >>> stats = OODStats.fit(np.random.default_rng(0).normal(size=(20, 16)))
            >>> bool(stats.distance(np.zeros(16)) < stats.distance(np.full(16, 10.0)))
            True
        """
        stats = cls._fit(slide_means, max_components)
        if len(slide_means) < 3:
            return stats
        held_out = [
            float(cls._fit(np.delete(slide_means, i, axis=0), max_components).distance(slide_means[i])[0])
            for i in range(len(slide_means))
        ]
        return dataclasses.replace(stats, threshold=float(np.percentile(held_out, 99)))

    @classmethod
    def _fit(cls, slide_means: np.ndarray, max_components: int) -> OODStats:
        """Probabilistic PCA of the vectors; threshold = 99th percentile of their own distances."""
        mean = slide_means.mean(axis=0)
        centred = slide_means - mean
        _, sv, vt = np.linalg.svd(centred, full_matrices=False)
        eig = sv**2 / max(len(slide_means) - 1, 1)
        k = max(1, min(max_components, len(slide_means) // 2))
        # the residual variance is averaged over the directions the sample spans (at most n - 1), not
        # over all d: with few slides, most of d has zero sample variance and would shrink it to ~0
        rank = min(len(slide_means) - 1, slide_means.shape[1])
        residual = float(eig[k:rank].sum() / max(rank - k, 1)) if rank > k else 0.0
        floor = max(float(eig.max(initial=0.0)) * 1e-6, 1e-12)
        stats = cls(
            mean=tuple(mean.tolist()),
            components=tuple(tuple(row) for row in vt[:k].tolist()),
            variances=tuple(np.maximum(eig[:k], floor).tolist()),
            residual_variance=max(residual, floor),
            threshold=0.0,
            n_slides=len(slide_means),
        )
        return dataclasses.replace(stats, threshold=float(np.percentile(stats.distance(slide_means), 99)))

    def distance(self, slide_means: np.ndarray) -> np.ndarray:
        """Mahalanobis-type distance of mean features (d, or n x d) from the training slides."""
        delta = np.atleast_2d(slide_means) - np.asarray(self.mean)  # n x d
        proj = delta @ np.asarray(self.components).T  # n x k
        residual = np.maximum((delta**2).sum(axis=1) - (proj**2).sum(axis=1), 0.0)  # n
        d2 = (proj**2 / np.asarray(self.variances)).sum(axis=1) + residual / self.residual_variance
        distances: np.ndarray = np.sqrt(d2)
        return distances


@dataclass(frozen=True)
class ModelCard:
    """``model.json``: what a model predicts and how to feed it.

    ``tiling`` and ``tissue`` are the whole input recipe: inference tiles and detects tissue as the training
    run did, whatever today's ``configs/tiling.yaml`` says.
    ``standardisation`` describes the input standardisation whose location and scale are in the
    weights file (``standardise.loc``, ``standardise.scale``); ``None`` (cards from before it) means
    the head sees raw features. ``abstention`` holds ``min_confidence``, the calibrated top
    probability below which a slide gets no call, chosen on out-of-fold predictions.
    """

    kind: str
    classes: tuple[str, ...]
    head: HeadSpec
    backbone: BackboneSpec
    tiling: TileSpec
    tissue: TissueParams | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, float] = field(default_factory=lambda: {"temperature": 1.0})
    ood: OODStats | None = None
    stain: OODStats | None = None
    training: dict[str, Any] = field(default_factory=dict)
    standardisation: dict[str, Any] | None = None
    abstention: dict[str, Any] | None = None
    liposcope_version: str = __version__
    format_version: int = FORMAT_VERSION

    @property
    def tissue_settings(self) -> TissueParams:
        """The tissue detector the model was trained behind (cards from before it recorded none: the defaults)."""
        return self.tissue or TissueParams.default()

    @property
    def temperature(self) -> float:
        """Softmax temperature fitted on out-of-fold logits (1.0 = uncalibrated)."""
        return float(self.calibration.get("temperature", 1.0))

    @property
    def min_confidence(self) -> float:
        """Calibrated top probability below which the model abstains (0 when the card sets none)."""
        return float((self.abstention or {}).get("min_confidence", 0.0))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = CARD_FILE) -> ModelCard:
        """Parse card data, rejecting unknown keys and format versions.

        Raises:
            ModelCardError: naming ``source``, the problem and the fix.

        Example:
            >>> ModelCard.from_dict(card.to_dict()) == card  # doctest: +SKIP
            True
        """
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            msg = where(source, f"unknown model format version {version!r}", f"this liposcope reads {FORMAT_VERSION}")
            raise ModelCardError(msg)
        try:
            card = from_dict(cls, data, source)
        except (ConfigError, TypeError, ValueError) as exc:
            msg = f"{exc}; re-export the model with this liposcope version"
            raise ModelCardError(msg if str(exc).startswith(source) else f"{source}: {msg}") from exc
        validate_card(card, source)
        return card


#: Bounds of a usable card: tile mpp like PLAUSIBLE_MPP, tile and input sizes, feature width, head size.
CARD_MPP = (0.05, 20.0)
CARD_TILE_PX = (8, 4096)
MAX_FEATURE_DIM = 1 << 16
MAX_HEAD_INT = 1 << 14
MAX_HEAD_PARAMETERS = 1 << 28
_CARD_FIX = "restore model.json from the training run or re-train the model"


def validate_card(card: ModelCard, source: str = CARD_FILE) -> None:
    """Check the values of a parsed card (its existing fields), so a damaged card fails here, not mid-run.

    Raises:
        ModelCardError: naming ``source`` and the first bad value: classes empty or repeated, a temperature
            that is not finite and positive, tile mpp or size out of bounds, a bad backbone normalisation or
            feature width, head sizes past the limits, or OOD/stain statistics of inconsistent lengths.
    """
    for problem in _card_problems(card):
        raise ModelCardError(where(source, problem, _CARD_FIX))


def _card_problems(card: ModelCard) -> list[str]:
    """What is wrong with ``card`` (empty when it is sound); checks stop at the first problem of a kind."""
    problems = []
    classes = list(card.classes)
    if len(classes) < 2 or not all(isinstance(c, str) and c.strip() for c in classes):
        problems.append(f"classes {classes} must be at least two non-empty names")
    elif len(set(classes)) != len(classes):
        problems.append(f"classes {classes} repeat a name")
    temperature = card.calibration.get("temperature", 1.0)
    if not _finite(temperature) or temperature <= 0:
        problems.append(f"calibration temperature {temperature!r} is not a finite positive number")
    lo, hi = CARD_MPP
    if not _finite(card.tiling.target_mpp) or not lo <= card.tiling.target_mpp <= hi:
        problems.append(f"tiling target_mpp {card.tiling.target_mpp!r} is outside [{lo}, {hi}] µm/px")
    px_lo, px_hi = CARD_TILE_PX
    for name, value in (("tiling tile_px", card.tiling.tile_px), ("backbone input_px", card.backbone.input_px)):
        if value is not None and not (isinstance(value, int) and px_lo <= value <= px_hi):
            problems.append(f"{name} {value!r} is outside [{px_lo}, {px_hi}] px")
    threshold = (card.abstention or {}).get("min_confidence", 0.0)
    if not _finite(threshold) or not 0.0 <= threshold <= 1.0:
        problems.append(f"abstention.min_confidence {threshold!r} is not a probability in [0, 1]")
    problems += _backbone_problems(card.backbone)
    problems += _head_problems(card)
    for name, stats, dim in (("ood", card.ood, card.backbone.feature_dim), ("stain", card.stain, None)):
        if stats is not None:
            problems += [f"{name}: {p}" for p in _stats_problems(stats, dim)]
    return problems


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _backbone_problems(backbone: BackboneSpec) -> list[str]:
    problems = []
    if not (isinstance(backbone.feature_dim, int) and 1 <= backbone.feature_dim <= MAX_FEATURE_DIM):
        problems.append(f"backbone feature_dim {backbone.feature_dim!r} is outside [1, {MAX_FEATURE_DIM}]")
    norm = backbone.normalisation
    if len(norm.mean) != 3 or len(norm.std) != 3 or not all(map(_finite, [*norm.mean, *norm.std])):
        problems.append("backbone normalisation needs three finite means and stds (R, G, B)")
    elif min(norm.std) <= 0:
        problems.append(f"backbone normalisation std {list(norm.std)} must be positive")
    return problems


def _head_problems(card: ModelCard) -> list[str]:
    """Head hyperparameters: finite numbers, integers in [0, MAX_HEAD_INT], a MIL head within the parameter limit."""
    for key, value in card.head.config.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value) or (isinstance(value, int) and not 0 <= value <= MAX_HEAD_INT):
            return [f"head {key} {value!r} is outside [0, {MAX_HEAD_INT}]"]
    if card.kind != "mil" or _backbone_problems(card.backbone):
        return []
    try:
        with torch.device("meta"):  # sizes only: no memory is allocated
            module = create_mil(card.head.name, card.backbone.feature_dim, len(card.classes), **card.head.config)
    except (ConfigError, TypeError, ValueError) as exc:
        return [f"head {card.head.name!r}: {exc}"]
    n = sum(p.numel() for p in module.parameters())
    return [f"head has {n:,} parameters, over the limit of {MAX_HEAD_PARAMETERS:,}"] if n > MAX_HEAD_PARAMETERS else []


def _stats_problems(stats: OODStats, dim: int | None) -> list[str]:
    """Lengths and values of Mahalanobis statistics: mean (d), components (k x d), variances (k)."""
    d = len(stats.mean)
    if dim is not None and d != dim:
        return [f"mean has {d} values but the features have {dim}"]
    if any(len(row) != d for row in stats.components) or len(stats.variances) != len(stats.components):
        return [f"components must be k x {d} with k variances"]
    numbers = [*stats.mean, *(v for row in stats.components for v in row), *stats.variances]
    if not all(map(_finite, [*numbers, stats.residual_variance, stats.threshold])):
        return ["statistics must be finite numbers"]
    if min([*stats.variances, stats.residual_variance]) <= 0 or stats.threshold < 0:
        return ["variances must be positive and the threshold not negative"]
    return []


def save_model(model_dir: str | Path, module: nn.Module, card: ModelCard) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``model_dir`` atomically (replacing it).

    Example:
        >>> save_model("run/model", head, card)  # doctest: +SKIP
        PosixPath('run/model')
    """
    folder = Path(model_dir)
    folder.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "liposcope_version": __version__})
        (tmp / WEIGHTS_FILE).chmod(0o644)  # safetensors writes 0600; models are shared read-only
        text = json.dumps(_plain(card.to_dict()), indent=2, allow_nan=False)
        (tmp / CARD_FILE).write_text(text + "\n", encoding="utf-8")
    log.info("saved model to %s", folder)
    return folder


def _plain(obj: Any) -> Any:
    """JSON-ready copy: NaN/inf → None, paths → str, numpy → Python, tuples → lists."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray | np.generic):
        return _plain(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return str(obj) if isinstance(obj, Path) else obj


def model_hash(model_dir: str | Path, weights_sha256: str | None = None) -> str:
    """SHA-256 over the card's bytes and the weights' SHA-256 (hashed here unless given): editing either changes it."""
    folder = Path(model_dir)
    digest = hashlib.sha256((folder / CARD_FILE).read_bytes())
    digest.update((weights_sha256 or sha256_file(folder / WEIGHTS_FILE)).encode())
    return digest.hexdigest()


def load_card(model_dir: str | Path) -> ModelCard:
    """Read ``model_dir/model.json``.

    Raises:
        ModelCardError: the folder or card is missing, or the card is not valid JSON or not a card.

    Example:
        >>> load_card("run/model").classes  # doctest: +SKIP
        ('WDLPS', 'DDLPS', 'MLPS', 'PLPS')
    """
    path = Path(model_dir) / CARD_FILE
    if not Path(model_dir).is_dir():
        raise ModelCardError(where(model_dir, "model folder not found", "pass the folder holding model.json"))
    if not path.is_file():
        raise ModelCardError(where(path, "model card not found", "pass a folder written by `liposcope train`"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelCardError(where(path, f"invalid JSON ({exc})", "restore the file from the training run")) from exc
    if not isinstance(data, dict):
        raise ModelCardError(where(path, "expected a JSON object", "restore the file from the training run"))
    return ModelCard.from_dict(data, str(path))


def load_mil(model_dir: str | Path) -> tuple[nn.Module, ModelCard]:
    """Rebuild a MIL head from its card and load its safetensors weights (eval mode, CPU).

    Raises:
        ModelCardError: missing files, an invalid card, a card that is not a MIL model, or weights
            that do not match the head the card describes.

    Example:
        >>> head, card = load_mil("run/model")  # doctest: +SKIP
        >>> probs = torch.softmax(head(features[None]).logits / card.temperature, dim=1)  # doctest: +SKIP
    """
    card = load_card(model_dir)
    path = Path(model_dir) / WEIGHTS_FILE
    if card.kind != "mil":
        raise ModelCardError(where(path.parent, f"model kind is '{card.kind}', not 'mil'", "pass a MIL model"))
    if not path.is_file():
        raise ModelCardError(where(path, "weights not found", "copy model.safetensors next to model.json"))
    try:
        module = create_mil(card.head.name, card.backbone.feature_dim, len(card.classes), **card.head.config)
    except ConfigError as exc:
        raise ModelCardError(where(path.parent / CARD_FILE, str(exc), "check the card's head section")) from exc
    try:
        state = load_file(str(path))
        if card.standardisation is None:  # a card from before input standardisation: the identity
            state = {**{k: v for k, v in module.state_dict().items() if k.startswith("standardise.")}, **state}
        module.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        problem = f"weights do not match the card's head '{card.head.name}' ({str(exc).splitlines()[0]})"
        raise ModelCardError(where(path, problem, "use the model.json saved with these weights")) from exc
    return module.eval(), card
