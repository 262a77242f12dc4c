"""Mitoses per 10 HPF on H&E: two-stage detection, counting by physical area, FNCLCC scores.

Example:
    >>> from mitoses import mitoses_to_folder  # doctest: +SKIP
    >>> result, folder = mitoses_to_folder("case.svs", "out")  # doctest: +SKIP
    >>> result.counts.hotspot_per_10hpf, result.counts.mitotic_score  # doctest: +SKIP
"""

from mitoses.annotations import PointAnnotations, read_annotations, write_points_csv
from mitoses.count import MitosisCount, count_mitoses
from mitoses.detect import Detector, find_candidates, suppress
from mitoses.fnclcc import Grade, fnclcc_grade, hpf_area_mm2, mitotic_score
from mitoses.run import MitosisResult, detect_mitoses, mitoses_to_folder
from mitoses.settings import MitosisSettings, load_settings
from mitoses.train import MitosisTrainConfig, train_mitosis

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
