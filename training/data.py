"""Cohorts for MIL training: ``labels.csv`` + ``FEATURES_DIR/<slide_id>.h5`` bags, patient-grouped folds."""

from __future__ import annotations

import csv
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold

from liposcope.errors import AnnotationError, LiposcopeError, where
from liposcope.models.card import BackboneSpec, Normalisation
from liposcope.progress import progress
from liposcope.wsi.grid import TileSpec

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
    """All labelled bags of a run, with the backbone and tiling the features were made with."""

    bags: tuple[SlideBag, ...]
    classes: tuple[str, ...]
    backbone: BackboneSpec
    tiling: TileSpec

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
    bags, infos = [], []
    for row in progress(rows, desc="loading features", unit="slide"):
        path = folder / f"{row.slide_id}.h5"
        features, info, (slide_mpp, stain) = _read_bag(path)
        infos.append((path, info))
        label = list(classes).index(row.label)
        bags.append(SlideBag(row.slide_id, row.patient_id, label, features, path, slide_mpp, stain))
    backbone, tiling = _check_consistent(infos)
    log.info("loaded %d bags (%d tiles, %d dims)", len(bags), sum(len(b.features) for b in bags), backbone.feature_dim)
    return Cohort(tuple(bags), tuple(classes), backbone, tiling)


def _read_bag(path: Path) -> tuple[torch.Tensor, tuple[BackboneSpec, TileSpec], tuple[float, tuple[float, ...]]]:
    """Features (n x d float32), the backbone/tiling description, and the slide's mpp and stain descriptor."""
    try:
        with h5py.File(path, "r") as h5:
            features = np.asarray(h5["features"][:], dtype=np.float32)  # n x d
            a = dict(h5.attrs)
            norm = json.loads(str(a["normalisation"]))
            backbone = BackboneSpec(
                name=str(a["backbone"]),
                weights_sha256=str(a["weights_sha256"]),
                normalisation=Normalisation(tuple(norm["mean"]), tuple(norm["std"])),
                feature_dim=int(features.shape[1]) if features.ndim == 2 else -1,
                kwargs=json.loads(str(a.get("backbone_kwargs", "{}"))),
                input_px=int(a["input_px"]) if int(a.get("input_px", 0)) > 0 else None,
            )
            tiling = TileSpec(float(a["target_mpp"]), int(a["tile_size"]), int(a["overlap"]), float(a["min_tissue"]))
            slide = float(a.get("slide_mpp", 0.0)), tuple(json.loads(str(a.get("stain_descriptor", "[]"))))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise LiposcopeError(where(path, f"not a liposcope feature file ({exc})", "re-extract its features")) from exc
    if features.ndim != 2 or len(features) == 0:
        problem = f"features have shape {features.shape}, expected n x d with n >= 1"
        raise LiposcopeError(where(path, problem, "re-extract its features or drop the slide"))
    return torch.from_numpy(features), (backbone, tiling), slide


def _check_consistent(infos: list[tuple[Path, tuple[BackboneSpec, TileSpec]]]) -> tuple[BackboneSpec, TileSpec]:
    """The shared backbone and tiling, or an error naming two files that disagree."""
    first_path, (backbone, tiling) = infos[0]
    for path, (other, other_tiling) in infos[1:]:
        for what, a, b in (
            ("feature dimension", backbone.feature_dim, other.feature_dim),
            ("backbone", backbone.name, other.name),
            ("backbone weights", backbone.weights_sha256, other.weights_sha256),
            ("tiling", tiling, other_tiling),
        ):
            if a != b:
                problem = f"{what} {b} differs from {a} in {first_path}"
                raise LiposcopeError(where(path, problem, "extract all slides' features with the same settings"))
    return backbone, tiling


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
