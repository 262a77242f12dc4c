"""Training: MIL heads, the model card, cohorts of feature bags, metrics and cross-validated training."""

from training.checkpoint import (
    BackboneSpec,
    HeadSpec,
    ModelCard,
    Normalisation,
    OODStats,
    load_card,
    load_mil,
    save_model,
)
from training.data import Cohort, SlideBag, load_cohort, make_folds, read_labels
from training.metrics import classification_metrics, expected_calibration_error, fit_temperature
from training.mil import MILOutput, create_mil, list_mil, register_mil
from training.train_mil import TrainConfig, TrainResult, load_train_config, train_mil

__all__ = [
    "BackboneSpec",
    "Cohort",
    "HeadSpec",
    "MILOutput",
    "ModelCard",
    "Normalisation",
    "OODStats",
    "SlideBag",
    "TrainConfig",
    "TrainResult",
    "classification_metrics",
    "create_mil",
    "expected_calibration_error",
    "fit_temperature",
    "list_mil",
    "load_card",
    "load_cohort",
    "load_mil",
    "load_train_config",
    "make_folds",
    "read_labels",
    "register_mil",
    "save_model",
    "train_mil",
]
