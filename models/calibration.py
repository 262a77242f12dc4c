"""Temperature scaling: fitted on out-of-fold logits when training, applied to every prediction after."""

from __future__ import annotations

import logging

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

log = logging.getLogger(__name__)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (n x c).

    Example:
        >>> softmax(np.array([[0.0, 0.0]])).tolist()
        [[0.5, 0.5]]
    """
    probs: np.ndarray = np.exp(log_softmax(logits / temperature, axis=1))
    return probs


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """Temperature T minimising the NLL of ``softmax(logits / T)`` (bounded 1-D search over log T).

    Where every out-of-fold call is right, the NLL falls without bound as T shrinks, and the search would
    only return its lower bound, making every later call look certain: then T stays 1 (no evidence to sharpen).

    Example:
        >>> round(fit_temperature(np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0]]), np.array([0, 1, 1])), 1) > 1
        True
    """
    if len(y_true) == 0:
        return 1.0
    rows = np.arange(len(y_true))
    if bool((logits.argmax(axis=1) == y_true).all()):
        log.info("temperature 1 (every out-of-fold call is right: the NLL has no minimum to fit)")
        return 1.0

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[rows, y_true].mean())

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    temperature = float(np.exp(result.x))
    log.info("temperature %.3f (NLL %.4f → %.4f)", temperature, nll(0.0), result.fun)
    return temperature
