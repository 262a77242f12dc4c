"""Cohorts for MIL training: ``labels.csv`` + ``FEATURES_DIR/<slide_id>.h5`` bags, patient-grouped folds."""

from __future__ import annotations

import csv
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold

from liposcope.errors import AnnotationError, LiposcopeError, where
from liposcope.models.card import BackboneSpec
from liposcope.models.feature_file import FeatureFile, read_feature_file
from liposcope.progress import progress
from liposcope.wsi.grid import TileSpec
from liposcope.wsi.tissue import TissueParams

log = logging.getLogger(__name__)

LABEL_COLUMNS = ("slide_id", "patient_id", "label")


@dataclass(frozen=True)
class LabelRow:
    """One line of ``labels.csv``."""

    slide_id: str
    patient_id: str
    label: str


@dataclass(frozen=True)
class SlideBag:
    """One slide's tile features (n x d float32) with its patient and class index."""

    slide_id: str
    patient_id: str
    label: int
    features: torch.Tensor
    path: Path
    slide_mpp: float = 0.0
    stain: tuple[float, ...] = ()


@dataclass(frozen=True)
class Cohort:
    """All labelled bags of a run, with the backbone, tiling and tissue detection the features were made with."""

    bags: tuple[SlideBag, ...]
    classes: tuple[str, ...]
    backbone: BackboneSpec
    tiling: TileSpec
    tissue: TissueParams | None = None  # None: feature files from before they recorded it

    @property
    def labels(self) -> np.ndarray:
        """Class index per slide."""
        return np.array([b.label for b in self.bags], dtype=np.int64)

    @property
    def patients(self) -> np.ndarray:
        """Patient id per slide."""
        return np.array([b.patient_id for b in self.bags])


def read_labels(path: str | Path, classes: Sequence[str]) -> list[LabelRow]:
    """Read ``slide_id,patient_id,label`` rows.

    Raises:
        AnnotationError: missing file or columns, empty fields, duplicate slides or unknown labels,
            naming the file and line.

    Example:
        >>> read_labels("labels.csv", ["WDLPS", "DDLPS"])[0].label  # doctest: +SKIP
        'WDLPS'
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(where(path, "labels file not found", "check the --labels path"))
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in LABEL_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            fix = f"the header must name {','.join(LABEL_COLUMNS)}"
            raise AnnotationError(where(path, f"missing column(s) {', '.join(missing)}", fix))
        rows: list[LabelRow] = []
        seen: set[str] = set()
        for line, raw in enumerate(reader, start=2):
            row = LabelRow(*((raw.get(c) or "").strip() for c in LABEL_COLUMNS))
            _check_row(row, line, path, classes, seen)
            seen.add(row.slide_id)
            rows.append(row)
    if not rows:
        raise AnnotationError(where(path, "no slides listed", "add one line per slide"))
    return rows


def _check_row(row: LabelRow, line: int, path: Path, classes: Sequence[str], seen: set[str]) -> None:
    if not (row.slide_id and row.patient_id and row.label):
        problem = "empty slide_id, patient_id or label"
        raise AnnotationError(where(f"{path}:{line}", problem, "fill in all three columns"))
    if row.label not in classes:
        problem = f"label '{row.label}' is not one of the configured classes {', '.join(classes)}"
        raise AnnotationError(where(f"{path}:{line}", problem, "fix the label or the config's classes"))
    if row.slide_id in seen:
        raise AnnotationError(where(f"{path}:{line}", f"slide '{row.slide_id}' listed twice", "keep one line"))


def load_cohort(labels_csv: str | Path, features_dir: str | Path, classes: Sequence[str]) -> Cohort:
    """Load the bag of every labelled slide and check all were made with the same backbone.

    Raises:
        AnnotationError: malformed labels (see :func:`read_labels`).
        LiposcopeError: slides without a feature file, unreadable files, empty bags, or files
            that differ in feature dimension or backbone.

    Example:
        >>> cohort = load_cohort("labels.csv", "features/", ["WDLPS", "DDLPS", "MLPS", "PLPS"])  # doctest: +SKIP
    """
    rows = read_labels(labels_csv, classes)
    folder = Path(features_dir)
    missing = [r.slide_id for r in rows if not (folder / f"{r.slide_id}.h5").is_file()]
    if missing:
        problem = (
            f"{len(missing)} of {len(rows)} slides in {labels_csv} have no features file: {', '.join(missing[:5])}"
        )
        more = " ..." if len(missing) > 5 else ""
        raise LiposcopeError(where(folder, problem + more, "extract their features or drop them from the labels"))
    bags, files = [], []
    for row in progress(rows, desc="loading features", unit="slide"):
        path = folder / f"{row.slide_id}.h5"
        file = read_feature_file(path)
        files.append((path, file))
        label = list(classes).index(row.label)
        features = torch.from_numpy(file.features)
        bags.append(SlideBag(row.slide_id, row.patient_id, label, features, path, file.grid.slide_mpp, file.stain))
    _check_consistent(files)
    first = files[0][1]
    tiles = sum(len(b.features) for b in bags)
    log.info("loaded %d bags (%d tiles, %d dims)", len(bags), tiles, first.backbone.feature_dim)
    return Cohort(tuple(bags), tuple(classes), first.backbone, first.grid.spec, first.tissue)


def _check_consistent(files: list[tuple[Path, FeatureFile]]) -> None:
    """Raise an error naming two feature files made with different backbones, tiling or tissue settings."""
    first_path, first = files[0]
    for path, other in files[1:]:
        for what, a, b in (
            ("feature dimension", first.backbone.feature_dim, other.backbone.feature_dim),
            ("backbone", first.backbone.name, other.backbone.name),
            ("backbone weights", first.backbone.weights_sha256, other.backbone.weights_sha256),
            ("tiling", first.grid.spec, other.grid.spec),
            ("tissue detection", first.tissue, other.tissue),
        ):
            if a != b:
                problem = f"{what} {b} differs from {a} in {first_path}"
                raise LiposcopeError(where(path, problem, "extract all slides' features with the same settings"))


def make_folds(
    labels: np.ndarray, patients: np.ndarray, n_folds: int, seed: int, classes: Sequence[str], source: str = "labels"
) -> np.ndarray:
    """Fold index (0..n_folds-1) per slide: no patient in two folds, class proportions kept.

    Raises:
        LiposcopeError: ``n_folds`` < 2 or a class has fewer patients than ``n_folds`` (named after ``source``).

    Example:
        >>> make_folds(np.array([0, 0, 1, 1]), np.array(["p1", "p2", "p3", "p4"]), 2, 0, ["A", "B"])  # doctest: +SKIP
        array([1, 0, 0, 1])
    """
    if n_folds < 2:
        raise LiposcopeError(where("--folds", f"{n_folds} folds", "use at least 2"))
    for c, name in enumerate(classes):
        n_patients = len(set(patients[labels == c]))
        if n_patients < n_folds:
            problem = f"class {name} has {n_patients} patients, fewer than --folds {n_folds}"
            raise LiposcopeError(where(source, problem, "lower --folds or add slides"))
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.full(len(labels), -1, dtype=np.int64)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups=patients)):
        folds[test] = k
    return folds


def inner_split(
    labels: np.ndarray, patients: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of (train, validation) within one outer training set, grouped by patient.

    Example:
        >>> train, val = inner_split(np.array([0, 0, 1, 1, 0, 1]), np.array(list("abcdef")), 0.34, 0)
    """
    smallest = int(np.bincount(np.unique(labels, return_inverse=True)[1]).min())
    if smallest < 2:
        msg = "a class has a single slide in this training set; add slides or lower --folds"
        raise LiposcopeError(where("labels", msg, "every class needs slides on both sides of a validation split"))
    n_splits = max(2, min(round(1 / val_fraction), len(set(patients)), smallest))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # small classes cannot fill every split; that is expected here
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        train, val = next(splitter.split(np.zeros(len(labels)), labels, groups=patients))
    return train, val
