"""A tiny train-mitosis run: it learns, saves in the project's checkpoint format and reloads identically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree
from sklearn.metrics import roc_auc_score

from liposcope.cli import main
from liposcope.errors import AnnotationError
from liposcope.mitoses.annotations import read_annotations
from liposcope.mitoses.detect import KIND, Detector
from liposcope.mitoses.settings import MitosisTrainConfig, load_settings
from liposcope.mitoses.train import collect_samples, train_mitosis
from liposcope.synth.mitoses import load_mitosis_truth, mitosis_truth_path, write_mitosis_slide


def test_tiny_training_run(mitosis_slides: list[Path], tmp_path: Path) -> None:
    annotations = [str(mitosis_truth_path(p)) for p in mitosis_slides]
    run = tmp_path / "run"
    args = ["train-mitosis", *map(str, mitosis_slides), "--annotations", *annotations, "--out", str(run)]
    assert main([*args, "--epochs", "6", "--val-fraction", "0.34", "--seed", "1", "-q"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    history = metrics["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    validation = metrics["validation"]
    (held_out,) = validation["f1_by_slide"]  # one of three slides is validation, none of its patches trained on
    assert held_out in {p.stem for p in mitosis_slides}
    assert 0.0 <= validation["f1"] <= 1.0
    card = json.loads((run / "model" / "model.json").read_text())
    assert card["kind"] == KIND
    assert card["classes"] == ["non-mitosis", "mitosis"]
    assert card["tiling"]["target_mpp"] == 0.25
    assert card["calibration"]["threshold"] == validation["threshold"]

    detector = Detector.load(run / "model")
    k = [p.stem for p in mitosis_slides].index(held_out)
    samples = collect_samples(
        mitosis_slides[k], read_annotations(annotations[k]), load_settings(), MitosisTrainConfig(), keep_all=True
    )
    first = detector.score(samples.patches[:64])
    again = Detector.load(run / "model").score(samples.patches[:64])
    np.testing.assert_array_equal(first, again)
    positive = samples.label == 1
    assert positive.any()
    auroc = roc_auc_score(positive, detector.score(samples.patches))  # chance is 0.5
    assert auroc > 0.75


def test_candidates_label_by_annotation(mitosis_slides: list[Path]) -> None:
    annotations = read_annotations(mitosis_truth_path(mitosis_slides[0]))
    samples = collect_samples(mitosis_slides[0], annotations, load_settings(), MitosisTrainConfig(), keep_all=True)
    truth_xy, truth_label = annotations.for_slide(mitosis_slides[0].stem)
    assert samples.label.sum() >= (truth_label == 1).sum()  # every figure is reached by at least one candidate
    assert samples.hard.sum() >= 1
    positives = samples.xy[samples.label == 1]
    nearest = np.min(np.hypot(*(positives[:, None, :] - truth_xy[truth_label == 1][None]).transpose(2, 0, 1)), axis=1)
    assert np.all(nearest * 0.25 <= 7.5)
    only_first = [mitosis_truth_path(mitosis_slides[0])]
    with pytest.raises(AnnotationError, match="no annotations"):
        train_mitosis(mitosis_slides[:2], only_first, "unused", MitosisTrainConfig(), load_settings())


def test_lipoblasts_train_as_hard_negatives(tmp_path: Path) -> None:
    """A pleomorphic slide's truth lists its lipoblasts (scalloped dark nuclei, the texture's commonest mitosis
    mimic) as look-alikes; stage-1 candidates reach them, so training takes them as hard negatives."""
    path = tmp_path / "plps.tiff"
    _, truth = write_mitosis_slide(path, label="PLPS", seed=710, width_px=2048, height_px=2048, per_10hpf=10.0)
    lipoblast = np.array([s == "lipoblast" for s in truth.shapes])
    assert lipoblast.sum() >= 10
    assert not truth.mitotic[lipoblast].any()
    samples = collect_samples(
        path, read_annotations(mitosis_truth_path(path)), load_settings(), MitosisTrainConfig(), keep_all=True
    )
    distance, _ = cKDTree(samples.xy[samples.hard]).query(truth.xy[lipoblast])
    assert np.mean(distance * 0.25 <= 7.5) >= 0.9
    _, other = write_mitosis_slide(
        tmp_path / "mlps.tiff", label="MLPS", seed=710, width_px=512, height_px=512, per_10hpf=10.0
    )
    assert "lipoblast" not in other.shapes
    assert load_mitosis_truth(path).shapes == truth.shapes
