"""Multiple-instance learning heads, created by name: ``create_mil("abmil", in_dim, n_classes)``."""

from typing import TYPE_CHECKING

from liposcope._lazy import lazy_exports

if TYPE_CHECKING:
    from liposcope.models.mil._registry import create_mil, list_mil, mil_config, register_mil
    from liposcope.models.mil.heads import GatedABMIL, MeanPool, MILOutput, TransMIL

__all__ = ["GatedABMIL", "MILOutput", "MeanPool", "TransMIL", "create_mil", "list_mil", "mil_config", "register_mil"]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
