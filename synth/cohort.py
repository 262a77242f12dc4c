"""Synthetic cohorts: class-balanced slides, some patients with two slides, and ``labels.csv``."""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from liposcope.errors import SlideError, where
from liposcope.io import atomic_path
from liposcope.progress import progress
from liposcope.synth.slide import LABELS, load_truth, write_slide
from liposcope.wsi.grid import TileGrid

log = logging.getLogger(__name__)


def assign_labels(
    n_slides: int, classes: Sequence[str], second_slide_fraction: float, rng: np.random.Generator
) -> list[tuple[int, str]]:
    """(patient index, label) per slide, balanced across classes to within one or two slides.

    About ``second_slide_fraction`` of the patients get two slides with the same label.
    """
    if n_slides < 1 or not classes:
        msg = f"need n_slides >= 1 and at least one class, got {n_slides} and {list(classes)}"
        raise ValueError(msg)
    if not 0.0 <= second_slide_fraction <= 1.0:
        msg = f"second_slide_fraction must be in [0, 1], got {second_slide_fraction}"
        raise ValueError(msg)
    n_pairs = round(second_slide_fraction * n_slides / (1.0 + second_slide_fraction))
    if second_slide_fraction > 0 and n_slides >= 2:
        n_pairs = max(n_pairs, 1)
    sizes = [2] * n_pairs + [1] * (n_slides - 2 * n_pairs)
    counts = dict.fromkeys(classes, 0)
    patients: list[tuple[int, str]] = []
    for size in sizes:
        label = min(classes, key=lambda c: (counts[c], classes.index(c)))
        counts[label] += size
        patients.append((size, label))
    order = rng.permutation(len(patients))
    slides: list[tuple[int, str]] = []
    for p, k in enumerate(order):
        size, label = patients[k]
        slides.extend([(p, label)] * size)
    return slides


def write_cohort(
    out_dir: str | os.PathLike[str],
    *,
    n_slides: int,
    seed: int,
    classes: Sequence[str] = LABELS,
    width_px: int,
    height_px: int,
    mpp: float = 0.5,
    second_slide_fraction: float = 0.25,
    stain_variation: float = 1.0,
) -> Path:
    """Write ``n_slides`` synthetic slides (``synth-<seed>-<k>.tiff`` + truth sidecars) and ``labels.csv``.

    Returns:
        Path of ``labels.csv`` (header ``slide_id,patient_id,label``).
    """
    unknown = [c for c in classes if c not in LABELS]
    if unknown:
        msg = f"classes {unknown} cannot be synthesised; supported: {LABELS}"
        raise ValueError(msg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0xC0407])
    slides = assign_labels(n_slides, list(classes), second_slide_fraction, rng)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["slide_id", "patient_id", "label"])
    for k, (patient, label) in enumerate(progress(slides, total=len(slides), desc="synth", unit="slide")):
        slide_id = f"synth-{seed}-{k:03d}"
        slide_seed = int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
        write_slide(
            out / f"{slide_id}.tiff",
            label=label,
            seed=slide_seed,
            width_px=width_px,
            height_px=height_px,
            mpp=mpp,
            stain_variation=stain_variation,
        )
        writer.writerow([slide_id, f"P{seed}-{patient:03d}", label])
    labels = out / "labels.csv"
    with atomic_path(labels) as tmp:
        tmp.write_text(buf.getvalue())
    log.debug("wrote cohort of %d slides to %s", len(slides), out)
    return labels


def write_tile_labels(cohort_dir: str | os.PathLike[str], tiles_dir: str | os.PathLike[str]) -> Path:
    """Tile labels from the generator's masks, for ``liposcope train-tiles --tile-labels``.

    For every tile grid under ``tiles_dir`` (a ``liposcope tile`` run over slides of ``cohort_dir``),
    tiles of a DDLPS slide mostly outside its dedifferentiated region are labelled WDLPS (its
    well-differentiated component); other tiles keep their slide's label and are not listed.

    Returns:
        ``tiles_dir/tile_labels.csv`` (``slide_id,x,y,label``).
    """
    grids = sorted(Path(tiles_dir).glob("*/tiles.h5"))
    if not grids:
        msg = where(Path(tiles_dir), "no tile grids (*/tiles.h5) found", "run `liposcope tile` on the cohort first")
        raise SlideError(msg)
    rows = []
    for grid_file in grids:
        truth = load_truth(Path(cohort_dir) / f"{grid_file.parent.name}.tiff")
        if truth.label != "DDLPS":
            continue
        grid = TileGrid.load(grid_file)
        side = grid.tile_size_level0
        for x, y in grid.coords_level0.tolist():
            label = "DDLPS" if truth.dediff_fraction(x, y, side, side) >= 0.5 else "WDLPS"
            rows.append(f"{truth.slide_id},{x},{y},{label}\n")
    out = Path(tiles_dir) / "tile_labels.csv"
    with atomic_path(out) as tmp:
        tmp.write_text("slide_id,x,y,label\n" + "".join(rows))
    return out
