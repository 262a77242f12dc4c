"""Slide-level classification metrics (numpy in, JSON-ready dict out), temperature scaling, confusion image.

Undefined values (AUROC of a class absent from a fold) are ``None``, which JSON writes as ``null``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Balanced accuracy, macro one-vs-rest AUROC, per-class F1 and AUROC, confusion matrix and ECE.

    Args:
        y_true: true class indices (n).
        probs: predicted probabilities (n x c), rows summing to 1.
        classes: class names, in column order.

    Example:
        >>> m = classification_metrics(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), ["A", "B"])
        >>> m["balanced_accuracy"], m["auroc_macro"]
        (1.0, 1.0)
    """
    n_classes = len(classes)
    if probs.ndim != 2 or probs.shape != (len(y_true), n_classes):
        msg = f"expected probabilities of shape ({len(y_true)}, {n_classes}), got {probs.shape}"
        raise ValueError(msg)
    y_pred = probs.argmax(axis=1)
    labels = list(range(n_classes))
    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    present = confusion.sum(axis=1) > 0
    recall = np.diag(confusion)[present] / confusion.sum(axis=1)[present]
    f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    auroc = {name: _auroc(y_true == c, probs[:, c]) for c, name in enumerate(classes)}
    defined = [v for v in auroc.values() if v is not None]
    return {
        "n": len(y_true),
        "balanced_accuracy": float(recall.mean()) if len(recall) else None,
        "auroc_macro": float(np.mean(defined)) if defined else None,
        "auroc_per_class": auroc,
        "f1_per_class": {name: float(f1[c]) for c, name in enumerate(classes)},
        "confusion": confusion.tolist(),
        "ece": expected_calibration_error(y_true, probs),
    }


def _auroc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """One-vs-rest AUROC, or None when only one side is present."""
    if positive.all() or not positive.any():
        return None
    return float(roc_auc_score(positive, score))


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE: |accuracy - confidence| averaged over equal-width confidence bins, weighted by size.

    Example:
        >>> expected_calibration_error(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]]))
        0.0
    """
    if len(y_true) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(float)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        total += in_bin.sum() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total / len(y_true))


def draw_confusion(confusion: np.ndarray, classes: Sequence[str], title: str = "") -> np.ndarray:
    """A readable RGB image of a confusion matrix: counts in cells, true classes down, predicted across.

    Example:
        >>> draw_confusion(np.eye(2, dtype=int), ["A", "B"]).shape[2]
        3
    """
    n, cell, margin = len(classes), 90, 150
    size = margin + n * cell + 20
    image = np.full((size + 30, size, 3), 255, np.uint8)
    font, peak = cv2.FONT_HERSHEY_SIMPLEX, max(int(confusion.max()), 1)
    _text(image, title or "confusion matrix (rows: true, columns: predicted)", (10, 25), 0.5)
    for i in range(n):
        _text(image, classes[i], (10, margin + i * cell + cell // 2 + 5), 0.55)
        _text(image, classes[i], (margin + i * cell + 8, margin - 15), 0.55)
        for j in range(n):
            x0, y0, count = margin + j * cell, margin + i * cell, int(confusion[i, j])
            shade = int(255 - 200 * count / peak)
            cv2.rectangle(image, (x0, y0), (x0 + cell, y0 + cell), (shade, shade, 255), -1)
            cv2.rectangle(image, (x0, y0), (x0 + cell, y0 + cell), (120, 120, 120), 1)
            (w, h), _ = cv2.getTextSize(str(count), font, 0.8, 2)
            colour = (255, 255, 255) if shade < 128 else (0, 0, 0)
            cv2.putText(image, str(count), (x0 + (cell - w) // 2, y0 + (cell + h) // 2), font, 0.8, colour, 2)
    _text(image, "predicted", (margin + n * cell // 2 - 40, margin - 45), 0.55)
    _text(image, "true", (10, margin - 15), 0.55)
    return image


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float) -> None:
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def abstention_threshold(y_true: np.ndarray, probs: np.ndarray, target: float = 0.95) -> dict[str, float]:
    """The lowest top probability in 0.50, 0.55, ... 0.95 above which out-of-fold calls are ``target`` accurate.

    Returns ``min_confidence`` (0.95 when no step reaches the target), ``target_accuracy``, and the
    out-of-fold ``coverage`` (share of slides called) and ``accuracy`` of the calls at that threshold.

    Example:
        >>> abstention_threshold(np.array([0, 1]), np.array([[0.9, 0.1], [0.6, 0.4]]))["min_confidence"]
        0.65
    """
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == y_true
    steps = np.round(np.arange(0.50, 0.951, 0.05), 2)
    chosen = next((t for t in steps if (confidence >= t).any() and correct[confidence >= t].mean() >= target), 0.95)
    called = confidence >= chosen
    return {
        "min_confidence": float(chosen),
        "target_accuracy": target,
        "oof_coverage": float(called.mean()) if len(called) else 0.0,
        "oof_accuracy": float(correct[called].mean()) if called.any() else 0.0,
    }


def draw_confusions(panels: Sequence[tuple[np.ndarray, str]], classes: Sequence[str]) -> np.ndarray:
    """Confusion matrices side by side (each ``(matrix, title)``), e.g. a model beside its baseline.

    Example:
        >>> draw_confusions([(np.eye(2, dtype=int), "a"), (np.eye(2, dtype=int), "b")], ["A", "B"]).shape[2]
        3
    """
    images = [draw_confusion(matrix, classes, title) for matrix, title in panels]
    gap = np.full((images[0].shape[0], 20, 3), 255, np.uint8)
    return np.concatenate([part for image in images for part in (image, gap)][:-1], axis=1)
