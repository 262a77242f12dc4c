"""Metrics on perfect, random and incomplete predictions; temperature scaling."""

from __future__ import annotations

import json

import numpy as np

from liposcope.models.calibration import fit_temperature, softmax
from liposcope.training.metrics import classification_metrics, expected_calibration_error

CLASSES = ["A", "B", "C"]


def test_perfect_predictions() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    m = classification_metrics(y, np.eye(3)[y], CLASSES)
    assert m["balanced_accuracy"] == 1.0
    assert m["auroc_macro"] == 1.0
    assert m["f1_per_class"] == {"A": 1.0, "B": 1.0, "C": 1.0}
    assert m["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert m["ece"] == 0.0


def test_random_predictions_are_near_chance() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3000)
    m = classification_metrics(y, rng.dirichlet(np.ones(3), 3000), CLASSES)
    assert abs(m["balanced_accuracy"] - 1 / 3) < 0.05
    assert abs(m["auroc_macro"] - 0.5) < 0.05
    assert np.sum(m["confusion"]) == 3000


def test_missing_class_gives_null_auroc_not_nan() -> None:
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]])
    m = classification_metrics(y, probs, CLASSES)
    assert m["auroc_per_class"]["C"] is None
    assert m["auroc_macro"] == 1.0
    assert m["balanced_accuracy"] == 0.75  # recall of A = 1, B = 0.5; C has no slides
    json.dumps(m, allow_nan=False)


def test_ece_of_overconfident_wrong_predictions() -> None:
    y = np.array([0, 0, 0, 0])
    probs = np.array([[0.1, 0.9]] * 4)
    assert expected_calibration_error(y, probs) == 0.9


def test_temperature_softens_overconfident_logits() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 500)
    logits = rng.normal(size=(500, 3))
    logits[np.arange(500), y] += 1.0
    hot = logits * 8  # right about 2/3 of the time but sure of itself
    t = fit_temperature(hot, y)
    assert 4 < t < 16
    assert expected_calibration_error(y, softmax(hot, t)) < expected_calibration_error(y, softmax(hot))


def test_temperature_stays_1_when_every_out_of_fold_call_is_right() -> None:
    """With no error the NLL only falls as T shrinks; the fit must not return its lower bound."""
    y = np.array([0, 1, 2, 0])
    logits = np.eye(3)[y] * 2.0
    assert fit_temperature(logits, y) == 1.0
    logits[3] = [0.0, 2.0, 0.0]  # one wrong call: now there is a minimum to fit
    assert fit_temperature(logits, y) != 1.0
