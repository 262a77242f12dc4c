"""Mitoses per 10 HPF on H&E: two-stage detection, counting by physical area, FNCLCC scores.

Example:
    >>> from liposcope.mitoses import mitoses_to_folder  # doctest: +SKIP
    >>> result, folder = mitoses_to_folder("case.svs", "out")  # doctest: +SKIP
    >>> result.counts.hotspot_per_10hpf, result.counts.mitotic_score  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from liposcope._lazy import lazy_exports

if TYPE_CHECKING:
    from liposcope.mitoses.annotations import PointAnnotations, read_annotations, write_points_csv
    from liposcope.mitoses.compute import detect_mitoses
    from liposcope.mitoses.count import MitosisCount, count_mitoses
    from liposcope.mitoses.detect import Detector, find_candidates, suppress
    from liposcope.mitoses.fnclcc import Grade, fnclcc_grade, hpf_area_mm2, mitotic_score
    from liposcope.mitoses.result import MitosisResult
    from liposcope.mitoses.run import mitoses_to_folder
    from liposcope.mitoses.settings import MitosisSettings, MitosisTrainConfig, load_settings
    from liposcope.mitoses.train import train_mitosis

__all__ = [
    "Detector",
    "Grade",
    "MitosisCount",
    "MitosisResult",
    "MitosisSettings",
    "MitosisTrainConfig",
    "PointAnnotations",
    "count_mitoses",
    "detect_mitoses",
    "find_candidates",
    "fnclcc_grade",
    "hpf_area_mm2",
    "load_settings",
    "mitoses_to_folder",
    "mitotic_score",
    "read_annotations",
    "suppress",
    "train_mitosis",
    "write_points_csv",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
