"""Accuracy of the packaged detector on synthetic H&E slides it never saw: planted mitotic figures (also in
shapes the training never drew: telophase, polar rings, tripolar) and as many look-alikes, matched within
7.5 µm as in MIDOG; counts per 10 HPF and the FNCLCC mitotic score against the planted truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mitoses.count import count_mitoses
from mitoses.detect import Detector
from mitoses.run import detect_mitoses
from mitoses.settings import load_settings
from wsi.points import f1_score, match_points
from wsi.slide import Slide
from wsi.synth.mitoses import SHAPES, write_mitosis_slide
from wsi.tissue import detect_tissue

LABELS = ("PLPS", "MLPS", "WDLPS", "DDLPS")


@dataclass(frozen=True)
class Outcome:
    tp: int
    fp: int
    fn: int
    per_10hpf: float
    true_per_10hpf: float
    score: int
    true_score: int

    @property
    def count_ok(self) -> bool:
        """Within ±20 %, or ±2 below 10 per 10 HPF (the acceptance tolerance)."""
        tolerance = 2.0 if self.true_per_10hpf < 10 else 0.2 * self.true_per_10hpf
        return abs(self.per_10hpf - self.true_per_10hpf) <= tolerance


def evaluate(path: Path, seed: int, label: str, per_10hpf: float, variation: float, detector: Detector) -> Outcome:
    """Write a 8192² slide at 0.25 µm/px (≈ 4 mm², more than 10 HPF of tissue), detect, compare."""
    _, truth = write_mitosis_slide(
        path,
        label=label,
        seed=seed,
        width_px=8192,
        height_px=8192,
        per_10hpf=per_10hpf,
        shapes=SHAPES,
        stain_variation=variation,
    )
    result = detect_mitoses(path, detector=detector)
    with Slide(path) as slide:
        mask, _ = detect_tissue(slide)
    true_xy = truth.xy[truth.mitotic]
    true_xy = true_xy[mask.at(true_xy)]
    counting = load_settings().counting
    true = count_mitoses(true_xy, mask, result.region, 0.25, counting, result.counts.tissue_area_mm2)
    tp, fp, fn = match_points(result.xy * 0.25, true_xy * 0.25, 7.5)
    c = result.counts
    return Outcome(tp, fp, fn, c.per_10hpf, true.per_10hpf, c.mitotic_score, true.mitotic_score)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load()


def test_held_out_slide(detector: Detector, tmp_path: Path) -> None:
    """A fixed seed never used in training, every figure shape, 25 figures per 10 HPF."""
    out = evaluate(tmp_path / "held-out.tiff", 91_001, "MLPS", 25.0, 1.0, detector)
    assert f1_score(out.tp, out.fp, out.fn) >= 0.8, out
    assert out.count_ok, out
    assert out.score == out.true_score, out


def test_unseen_seed_and_colours(detector: Detector, tmp_path: Path, unseen_seed: int) -> None:
    """A fresh seed and stain colours each session, at the generator's lab-to-lab spread; reproduce with
    LIPOSCOPE_UNSEEN_SEED. Wider spreads (to 1.4x) are measured in bench/README.md: very pale haematoxylin
    (half the usual strength) loses figures.

    One slide holds 5-30 figures, so one false positive (a scalloped lipoblast nucleus, say) moves its count by
    3-20 %: the acceptance tolerance (±20 %, ±2 below 10) is checked over many slides in the slow sweep; here
    a looser bound (3 + 35 % per 10 HPF) still catches a detector that has stopped generalising. DDLPS is left
    to the sweep: its figures lie only in the dedifferentiated region, often fewer than five per slide."""
    rng = np.random.default_rng(unseen_seed)
    label, rate = LABELS[int(rng.integers(3))], float(rng.uniform(10, 40))
    out = evaluate(tmp_path / "unseen.tiff", unseen_seed, label, rate, 1.0, detector)
    assert f1_score(out.tp, out.fp, out.fn) >= 0.7, (unseen_seed, label, rate, out)
    tolerance = 3.0 + 0.35 * out.true_per_10hpf
    assert abs(out.per_10hpf - out.true_per_10hpf) <= tolerance, (unseen_seed, label, rate, out)


@pytest.mark.slow
def test_acceptance_sweep(detector: Detector, tmp_path: Path, unseen_seed: int) -> None:
    """12 slides from 0 to 40 figures per 10 HPF, all subtypes, half of them with fresh seeds: pooled F1 ≥ 0.80,
    counts within tolerance and the FNCLCC mitotic score right on ≥ 90 % of slides."""
    outcomes = []
    for k, rate in enumerate(np.linspace(0.0, 40.0, 12)):
        seed = 92_000 + k if k % 2 else unseen_seed + k
        outcomes.append(
            evaluate(tmp_path / f"s{k}.tiff", seed, LABELS[k % 4], float(rate), 1.0 + 0.1 * (k % 3), detector)
        )
        (tmp_path / f"s{k}.tiff").unlink()
    tp, fp, fn = (sum(getattr(o, f) for o in outcomes) for f in ("tp", "fp", "fn"))
    assert f1_score(tp, fp, fn) >= 0.8, (unseen_seed, outcomes)
    assert sum(o.count_ok for o in outcomes) >= 0.9 * len(outcomes), (unseen_seed, outcomes)
    assert sum(o.score == o.true_score for o in outcomes) >= 0.9 * len(outcomes), (unseen_seed, outcomes)
