"""Tile encoders: any timm model by name, weights from a local file, a local folder, or seeded random.

Nothing here touches the network. Pretrained timm weights are used only when already cached; a
hub name without cached weights fails with a message that says how to pass a local file.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import timm
import torch
import torch.nn.functional as F
from torch import nn

from liposcope.errors import ConfigError, ModelCardError, where
from liposcope.io import sha256_file
from liposcope.models.card import WEIGHTS_FILE, BackboneSpec, ModelCard, Normalisation, load_card

log = logging.getLogger(__name__)

RANDOM = "random"
_HEAD_PREFIXES = ("fc.", "head.", "head_dist.", "classifier.", "last_linear.")
_WRAPPER_PREFIXES = ("module.", "model.", "backbone.", "encoder.", "trunk.")


@dataclass(frozen=True)
class Backbone:
    """A timm encoder (``num_classes=0``, eval mode), its description, and where its weights came from."""

    model: nn.Module = field(repr=False)
    spec: BackboneSpec
    weights: str

    def prepare(self, tiles: torch.Tensor) -> torch.Tensor:
        """uint8 tiles (b × 3 × h × w, on any device) → normalised float input, resized if the model needs it."""
        norm = self.spec.normalisation
        mean = torch.tensor(norm.mean, device=tiles.device).view(1, 3, 1, 1)
        std = torch.tensor(norm.std, device=tiles.device).view(1, 3, 1, 1)
        x = (tiles.float() / 255.0 - mean) / std  # b x 3 x h x w
        size = self.spec.input_px
        if size is not None and x.shape[-1] != size:
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        return x


def create_backbone(
    name: str, weights: str | Path | None = None, *, kwargs: dict[str, Any] | None = None, seed: int = 0
) -> Backbone:
    """Build a timm encoder with local weights.

    Args:
        name: timm model name (``resnet50``, ``vit_large_patch16_224``...).
        weights: a ``.safetensors`` file, a torch checkpoint (loaded with ``weights_only=True``), a local
            Hugging Face folder (``config.json`` + weights), a ``train-tiles`` model folder, ``"random"``
            (seeded init, for tests), or ``None`` for timm's pretrained weights when already cached.
        kwargs: extra ``timm.create_model`` arguments; a string ``"py:module.attr"`` names a Python object
            (e.g. ``"py:timm.layers.SwiGLUPacked"``).
        seed: seed of the random initialisation.

    Raises:
        ConfigError: unknown model name or bad kwargs.
        ModelCardError: weights missing, unreadable or not matching the architecture.

    Example:
        >>> bb = create_backbone("resnet18", "random")
        >>> bb.feature_dim
        512
    """
    kwargs = dict(kwargs or {})
    model_args = {k: _resolve(v) for k, v in kwargs.items()}
    path = Path(weights) if weights is not None and str(weights) != RANDOM else None
    if path is not None and (path / "model.json").is_file():  # a liposcope model folder (train-tiles)
        path = path / "model.safetensors"
    if path is not None and path.is_dir():
        model, sha = _from_folder(path, model_args), _folder_sha(path)
    else:
        model = _create(name, model_args, seed)
        if weights is None:
            path = _cached_pretrained(name)
        sha = f"random:seed{seed}" if path is None else _load_file(model, path, name)
    model.eval()
    config = timm.data.resolve_model_data_config(model)
    spec = BackboneSpec(
        name=name,
        weights_sha256=sha,
        normalisation=Normalisation(tuple(map(float, config["mean"])), tuple(map(float, config["std"]))),
        feature_dim=_output_dim(model),
        kwargs=kwargs,
        input_px=_fixed_input_px(model),
    )
    return Backbone(model, spec, str(weights) if weights is not None else "timm-cache")


def _output_dim(model: nn.Module) -> int:
    """Width of the pooled output with ``num_classes=0`` (``head_hidden_size`` where a head has a hidden layer)."""
    return int(getattr(model, "head_hidden_size", None) or model.num_features)  # type: ignore[arg-type]


def _fixed_input_px(model: nn.Module) -> int | None:
    """The input side a ViT-style model requires, or ``None`` when it takes any size (CNNs, dynamic ViTs)."""
    embed = getattr(model, "patch_embed", None)
    if embed is None or getattr(embed, "dynamic_img_size", False) or getattr(embed, "strict_img_size", True) is False:
        return None
    size = getattr(embed, "img_size", None)
    return int(size[-1]) if isinstance(size, tuple | list) else (int(size) if size else None)


def _create(name: str, model_args: dict[str, Any], seed: int) -> nn.Module:
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models()"
        raise ConfigError(where(f"--backbone {name}", "not a timm model name", hint))
    torch.manual_seed(seed)
    try:
        model: nn.Module = timm.create_model(name, pretrained=False, num_classes=0, **model_args)
    except TypeError as exc:
        raise ConfigError(where(f"--backbone {name}", f"bad model arguments ({exc})", "check --model-arg")) from exc
    return model


def _resolve(value: Any) -> Any:
    """``"py:pkg.mod.Attr"`` → the object (timm and torch only); anything else unchanged."""
    if not (isinstance(value, str) and value.startswith("py:")):
        return value
    module, _, attr = value[3:].rpartition(".")
    if module.split(".")[0] not in ("timm", "torch"):
        raise ConfigError(where(value, "only timm.* and torch.* objects may be named", "e.g. py:torch.nn.SiLU"))
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(where(value, "no such object", "check the spelling")) from exc


def _cached_pretrained(name: str) -> Path:
    """The locally cached file of timm's default pretrained weights for ``name``, without network access."""
    from huggingface_hub import try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(name)
    hint = (
        "there is no network here: download the weights elsewhere and pass --weights PATH "
        "(.safetensors, torch checkpoint or a Hugging Face folder), or --weights random for a smoke test"
    )
    if cfg is not None and cfg.hf_hub_id:
        for filename in ("model.safetensors", "pytorch_model.bin"):
            hit = try_to_load_from_cache(cfg.hf_hub_id, filename)
            if isinstance(hit, str):
                return Path(hit)
    if cfg is not None and cfg.url:
        local = Path(torch.hub.get_dir()) / "checkpoints" / Path(str(cfg.url)).name
        if local.is_file():
            return local
    raise ModelCardError(where(f"--backbone {name}", "pretrained weights are not cached locally", hint))


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelCardError(where(path, "weights file not found", "check --weights"))
    try:
        if path.suffix == ".safetensors":
            state: Any = safetensors.torch.load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for a bad file
        msg = where(path, f"cannot read weights ({type(exc).__name__}: {exc})", "pass a .safetensors or torch file")
        raise ModelCardError(msg) from exc
    for key in ("state_dict", "model", "teacher"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return {_strip(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _strip(key: str) -> str:
    for prefix in _WRAPPER_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _load_file(model: nn.Module, path: Path, name: str) -> str:
    """Load weights into ``model`` (head keys ignored); return the file's sha256."""
    state = {k: v for k, v in _read_state(path).items() if not k.startswith(_HEAD_PREFIXES)}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).split("\n")[1].strip() if "\n" in str(exc) else str(exc)
        msg = where(path, f"weights do not fit timm model '{name}' ({first})", "check --backbone and --model-arg")
        raise ModelCardError(msg) from exc
    missing = [k for k in result.missing_keys if not k.startswith(_HEAD_PREFIXES)]
    if missing or result.unexpected_keys:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {result.unexpected_keys[:3]}"
        msg = where(path, f"weights do not fit timm model '{name}' ({detail})", "check --backbone and --model-arg")
        raise ModelCardError(msg)
    log.info("loaded %s weights from %s", name, path)
    return sha256_file(path)


def _from_folder(path: Path, model_args: dict[str, Any]) -> nn.Module:
    """A Hugging Face-layout folder (``config.json`` with timm's architecture + weights file)."""
    if not (path / "config.json").is_file():
        raise ModelCardError(where(path, "folder has no config.json", "pass the weights file itself"))
    try:
        model: nn.Module = timm.create_model(f"local-dir:{path}", pretrained=True, num_classes=0, **model_args)
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        raise ModelCardError(where(path, f"cannot build a timm model from it ({exc})", "check the folder")) from exc
    return model


def _folder_sha(path: Path) -> str:
    for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        if (path / filename).is_file():
            return sha256_file(path / filename)
    return sha256_file(path / "config.json")


def backbone_from_spec(spec: BackboneSpec, weights: str | Path | None) -> Backbone:
    """Rebuild the encoder a feature file or model card describes, and check the weights match it.

    Raises:
        ModelCardError: the weights' sha256 differs from the spec's.
    """
    backbone = create_backbone(spec.name, weights, kwargs=spec.kwargs, seed=_seed(spec.weights_sha256))
    if backbone.spec.weights_sha256 != spec.weights_sha256:
        msg = where(
            weights or spec.name,
            f"weights sha256 {backbone.spec.weights_sha256[:12]} differ from the model's {spec.weights_sha256[:12]}",
            "pass the backbone weights the model was trained with",
        )
        raise ModelCardError(msg)
    return backbone


def _seed(sha: str) -> int:
    return int(sha.removeprefix("random:seed")) if sha.startswith("random:seed") else 0


def load_classifier(model_dir: str | Path, kind: str) -> tuple[Backbone, ModelCard]:
    """Rebuild a timm classifier saved with :func:`liposcope.models.card.save_model` (eval mode, CPU).

    Raises:
        ModelCardError: missing or invalid card, another model kind, or weights not matching the card.

    Example:
        >>> backbone, card = load_classifier("mitoses/model", "mitosis-classifier")  # doctest: +SKIP
    """
    card = load_card(model_dir)
    path = Path(model_dir) / WEIGHTS_FILE
    if card.kind != kind:
        raise ModelCardError(where(model_dir, f"model kind is '{card.kind}', not '{kind}'", f"pass a {kind} model"))
    if not path.is_file():
        raise ModelCardError(where(path, "weights not found", "copy model.safetensors next to model.json"))
    model = _create(card.backbone.name, {k: _resolve(v) for k, v in card.backbone.kwargs.items()}, 0)
    model.reset_classifier(len(card.classes))  # type: ignore[operator]
    try:
        model.load_state_dict(safetensors.torch.load_file(str(path)), strict=True)
    except (safetensors.SafetensorError, RuntimeError, OSError) as exc:
        problem = f"weights do not match the card's '{card.backbone.name}' ({str(exc).splitlines()[0]})"
        raise ModelCardError(where(path, problem, "use the model.json saved with these weights")) from exc
    return Backbone(model.eval(), card.backbone, str(model_dir)), card
