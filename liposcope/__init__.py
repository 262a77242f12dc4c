"""liposcope: whole-slide image analysis for liposarcoma."""

__version__ = "0.1.0"
