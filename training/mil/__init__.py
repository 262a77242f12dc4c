"""Multiple-instance learning heads, created by name: ``create_mil("abmil", in_dim, n_classes)``."""

from training.mil._registry import create_mil, list_mil, mil_config, register_mil
from training.mil.heads import GatedABMIL, MeanPool, MILOutput, TransMIL

__all__ = ["GatedABMIL", "MILOutput", "MeanPool", "TransMIL", "create_mil", "list_mil", "mil_config", "register_mil"]
