"""Tests of training/; helpers that write synthetic feature files (the ``<slide_id>.h5`` contract)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np

CLASSES = ("WDLPS", "DDLPS", "MLPS", "PLPS")


def write_features(path: Path, features: np.ndarray, *, backbone: str = "test_vit", slide_id: str = "") -> Path:
    """Write one feature file with the attributes the feature extractor writes."""
    with h5py.File(path, "w") as h5:
        h5.create_dataset("coords", data=np.arange(2 * len(features), dtype=np.int64).reshape(-1, 2) * 256)
        h5.create_dataset("features", data=features)
        h5.attrs.update(
            {
                "backbone": backbone,
                "weights_sha256": "0" * 64,
                "target_mpp": 0.5,
                "tile_size": 224,
                "tile_size_level0": 224,
                "overlap": 0,
                "min_tissue": 0.5,
                "normalisation": json.dumps({"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}),
                "version": "0.1.0",
                "slide_id": slide_id or path.stem,
            }
        )
    return path


def write_cohort(
    folder: Path,
    *,
    patients_per_class: int = 8,
    dim: int = 32,
    seed: int = 0,
    signal: float = 3.0,
    classes: tuple[str, ...] = CLASSES,
) -> Path:
    """Gaussian bags whose class shows only in a few tiles (so attention matters); returns labels.csv.

    Every third patient has two slides. Tiles are N(0, 1); 4 to 8 tiles per slide get the class
    prototype times ``signal`` added.
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(len(classes), dim))
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
    feats_dir = folder / "features"
    feats_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for c, label in enumerate(classes):
        for p in range(patients_per_class):
            patient = f"{label.lower()}-p{p}"
            for s in range(2 if p % 3 == 0 else 1):
                slide_id = f"{patient}-s{s}"
                n = int(rng.integers(30, 80))
                x = rng.normal(size=(n, dim)).astype(np.float32)
                hot = rng.choice(n, size=int(rng.integers(4, 9)), replace=False)
                x[hot] += (signal * prototypes[c]).astype(np.float32)
                write_features(feats_dir / f"{slide_id}.h5", x.astype(np.float16 if s else np.float32))
                rows.append((slide_id, patient, label))
    labels = folder / "labels.csv"
    with labels.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["slide_id", "patient_id", "label"])
        writer.writerows(rows)
    return labels
