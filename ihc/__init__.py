"""IHC scoring of nuclear DAB markers (Ki-67, MDM2, ...): nuclei, intensity classes, indices, hotspot.

Example:
    >>> from liposcope.ihc import load_marker, ihc_to_folder  # doctest: +SKIP
    >>> result, folder = ihc_to_folder("case-ki67.svs", load_marker("ki67"), "out")  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from liposcope._lazy import lazy_exports

if TYPE_CHECKING:
    from liposcope.ihc.annotations import read_deepliif_mask
    from liposcope.ihc.compute import score_slide
    from liposcope.ihc.marker import Marker, load_marker
    from liposcope.ihc.nuclei import Deconvolver, Nuclei, detect_nuclei, make_deconvolver
    from liposcope.ihc.result import IHCResult
    from liposcope.ihc.run import ihc_to_folder
    from liposcope.ihc.score import CLASSES, find_hotspot, grade, summarise

__all__ = [
    "CLASSES",
    "Deconvolver",
    "IHCResult",
    "Marker",
    "Nuclei",
    "detect_nuclei",
    "find_hotspot",
    "grade",
    "ihc_to_folder",
    "load_marker",
    "make_deconvolver",
    "read_deepliif_mask",
    "score_slide",
    "summarise",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
