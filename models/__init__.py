"""The model code that training and inference share: backbones, MIL heads, the model card, encoding tiles.

Example:
    >>> from liposcope.models import create_mil  # doctest: +SKIP
    >>> head = create_mil("abmil", in_dim=512, n_classes=4)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from liposcope._lazy import lazy_exports

if TYPE_CHECKING:
    from liposcope.models.backbones import Backbone, create_backbone
    from liposcope.models.calibration import fit_temperature, softmax
    from liposcope.models.card import (
        BackboneSpec,
        HeadSpec,
        ModelCard,
        Normalisation,
        OODStats,
        load_card,
        load_mil,
        save_model,
    )
    from liposcope.models.encode import encode, extract_features
    from liposcope.models.mil import MILOutput, create_mil, list_mil, register_mil

__all__ = [
    "Backbone",
    "BackboneSpec",
    "HeadSpec",
    "MILOutput",
    "ModelCard",
    "Normalisation",
    "OODStats",
    "create_backbone",
    "create_mil",
    "encode",
    "extract_features",
    "fit_temperature",
    "list_mil",
    "load_card",
    "load_mil",
    "register_mil",
    "save_model",
    "softmax",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
