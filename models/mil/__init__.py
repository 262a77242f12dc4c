"""Multiple-instance learning heads, created by name: ``create_mil("abmil", in_dim, n_classes)``.

Importing the package registers the heads (so it imports torch; the packages above it import it lazily).
"""

from liposcope.models.mil._registry import create_mil, list_mil, mil_config, register_mil
from liposcope.models.mil.heads import GatedABMIL, MeanPool, MILOutput, TransMIL

__all__ = ["GatedABMIL", "MILOutput", "MeanPool", "TransMIL", "create_mil", "list_mil", "mil_config", "register_mil"]
