"""The baseline beside every learned model: logistic regression on standardised pooled features.

A slide becomes one vector, the per-dimension mean and standard deviation of its tile features;
the vectors are standardised on each fold's training slides and fitted with an L2-penalised,
class-balanced multinomial logistic regression. It needs no tuning and does not care about the
features' scale, so a MIL head that falls well below it on the same folds has an optimisation
problem, not a feature problem.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

DESCRIPTION = "logistic regression (L2, C=1, class-balanced) on standardised mean+std pooled tile features"
WARN_GAP = 0.05  # a head this far below the baseline's balanced accuracy gets a warning


def pooled(features: Sequence[torch.Tensor]) -> np.ndarray:
    """One row per bag: the per-dimension mean and standard deviation of its tiles (n x 2d, float64).

    Example:
        >>> pooled([torch.ones(3, 2)]).tolist()
        [[1.0, 1.0, 0.0, 0.0]]
    """
    rows = [torch.cat([f.double().mean(dim=0), f.double().std(dim=0, correction=0)]) for f in features]
    return torch.stack(rows).numpy()


def baseline_probabilities(
    x: np.ndarray, labels: np.ndarray, fold_of: np.ndarray, n_classes: int, seed: int
) -> np.ndarray:
    """Out-of-fold class probabilities (n x c) of the baseline, one fit per fold on the other folds.

    A class absent from a fold's training slides gets probability 0 there.

    Example:
        >>> probs = baseline_probabilities(pooled(feats), labels, fold_of, 4, seed=0)  # doctest: +SKIP
    """
    probs = np.zeros((len(labels), n_classes))
    for k in np.unique(fold_of):
        train, test = fold_of != k, fold_of == k
        probs[test] = fit_predict(x[train], labels[train], x[test], n_classes, seed)
    return probs


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """Standardise on ``x_train``, fit the logistic regression, return test probabilities (n_test x c).

    Example:
        >>> fit_predict(np.array([[0.0], [1.0]]), np.array([0, 1]), np.array([[2.0]]), 3, 0).shape
        (1, 3)
    """
    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed)
    model.fit(scaler.transform(x_train), y_train)
    probs = np.zeros((len(x_test), n_classes))
    probs[:, model.classes_] = model.predict_proba(scaler.transform(x_test))
    return probs


def gap_warning(head_bacc: float | None, baseline_bacc: float | None, head: str, hint: str = "") -> str | None:
    """The end-of-run warning when the head is more than ``WARN_GAP`` balanced accuracy below the baseline.

    Example:
        >>> gap_warning(0.5, 0.9, "abmil") is not None, gap_warning(0.88, 0.9, "abmil")
        (True, None)
    """
    if head_bacc is None or baseline_bacc is None or head_bacc >= baseline_bacc - WARN_GAP:
        return None
    hint = hint or (
        "Try more max_epochs and patience, a lower lr (or a higher one if the training loss barely falls), "
        "dropout 0, head.pooled_linear: true where it is off, or the meanpool config; with few slides, the baseline "
        "may simply be the better model"
    )
    return (
        f"the {head}'s balanced accuracy {head_bacc:.3f} is {baseline_bacc - head_bacc:.3f} below the "
        f"logistic-regression baseline's {baseline_bacc:.3f} on the same slides: the features carry signal the "
        f"model does not find. {hint}"
    )
