"""The mitosis generators: figure families, randomised styles, and the independent (evaluation-only) process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openslide

from liposcope.synth.mitoses import (
    FAMILIES,
    HELD_OUT_FAMILIES,
    SHAPES,
    TRAIN_FAMILIES,
    TRAIN_SHAPES,
    UNSEEN_SHAPES,
    family_of,
    load_mitosis_truth,
)
from liposcope.synth.mitoses_blind import BLIND_FIGURES, write_blind_slide
from liposcope.synth.mitosis_shapes import draw_object


def test_families_split_training_from_testing() -> None:
    assert set(TRAIN_FAMILIES) | set(HELD_OUT_FAMILIES) == set(FAMILIES)
    assert not set(TRAIN_SHAPES) & set(UNSEEN_SHAPES)
    assert {family_of(s) for s in UNSEEN_SHAPES} == set(HELD_OUT_FAMILIES)
    assert family_of("pyknotic") == "lookalike"


def test_each_shape_is_restyled_per_object() -> None:
    """Two draws of one shape differ in size and halo; every shape has chromatin inside its reach."""
    for name in SHAPES:
        sizes = []
        for seed in range(6):
            (bodies, segments), rough = draw_object(name, np.random.default_rng(seed))
            assert segments, name
            assert bodies, name
            assert 0.0 <= rough <= 0.4
            ends = np.array([s[:4] for s in segments])
            assert np.abs(ends).max() < 16.0, name  # within the generator's reach
            sizes.append(np.ptp(ends))
        assert np.ptp(sizes) > 0.5, name


def test_blind_slide_has_truth_in_its_own_shapes(tmp_path: Path) -> None:
    path = tmp_path / "blind.tiff"
    _, truth = write_blind_slide(path, label="MLPS", seed=3, width_px=2048, height_px=2048, per_10hpf=900.0)
    assert truth.mitotic.sum() >= 5
    assert {truth.shapes[i] for i in np.flatnonzero(truth.mitotic)} <= set(BLIND_FIGURES)
    again = load_mitosis_truth(path)
    np.testing.assert_allclose(again.xy, truth.xy, atol=0.06)
    with openslide.OpenSlide(str(path)) as slide:
        x, y = truth.xy[truth.mitotic][0]
        patch = np.asarray(slide.read_region((int(x) - 8, int(y) - 8), 0, (16, 16)).convert("RGB"), np.float64)
    assert patch.mean() < 170  # dark chromatin where the truth says
