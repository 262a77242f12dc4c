"""Training: cohorts of feature bags, cross-validated MIL training, metrics, and encoder retraining on tiles."""

from typing import TYPE_CHECKING

from liposcope._lazy import lazy_exports

if TYPE_CHECKING:
    from liposcope.training.crossval import TrainConfig, TrainResult, load_train_config, train_mil
    from liposcope.training.data import Cohort, SlideBag, load_cohort, make_folds, read_labels
    from liposcope.training.metrics import classification_metrics, expected_calibration_error

__all__ = [
    "Cohort",
    "SlideBag",
    "TrainConfig",
    "TrainResult",
    "classification_metrics",
    "expected_calibration_error",
    "load_cohort",
    "load_train_config",
    "make_folds",
    "read_labels",
    "train_mil",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
