"""labels.csv, feature files and patient-grouped stratified folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liposcope.errors import AnnotationError, LiposcopeError
from liposcope.training.data import inner_split, load_cohort, make_folds, read_labels
from tests.training import CLASSES, write_cohort, write_features


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cohort")
    write_cohort(folder, patients_per_class=6, dim=8)
    return folder


def test_load_cohort_reads_bags_and_backbone(cohort_dir: Path) -> None:
    cohort = load_cohort(cohort_dir / "labels.csv", cohort_dir / "features", CLASSES)
    assert len(cohort.bags) == 32  # 6 patients per class, every third with two slides
    assert all(b.features.dtype.is_floating_point and b.features.shape[1] == 8 for b in cohort.bags)
    assert str(cohort.bags[1].features.dtype) == "torch.float32"  # float16 files come back as float32
    assert cohort.backbone.name == "test_vit"
    assert cohort.backbone.feature_dim == 8
    assert cohort.tiling.tile_px == 224


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_folds_never_split_a_patient_and_keep_class_balance(cohort_dir: Path, seed: int) -> None:
    cohort = load_cohort(cohort_dir / "labels.csv", cohort_dir / "features", CLASSES)
    folds = make_folds(cohort.labels, cohort.patients, 3, seed, CLASSES)
    assert set(folds.tolist()) == {0, 1, 2}
    for patient in set(cohort.patients):
        assert len(set(folds[cohort.patients == patient])) == 1, patient
    for k in range(3):
        counts = np.bincount(cohort.labels[folds == k], minlength=4)
        assert counts.min() >= 2  # 6 patients per class over 3 folds


def test_inner_split_is_grouped(cohort_dir: Path) -> None:
    cohort = load_cohort(cohort_dir / "labels.csv", cohort_dir / "features", CLASSES)
    train, val = inner_split(cohort.labels, cohort.patients, 0.2, 0)
    assert not set(cohort.patients[train]) & set(cohort.patients[val])
    assert len(train) + len(val) == len(cohort.bags)


def test_too_few_patients_for_folds() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    patients = np.array(["a", "a", "b", "c", "d", "e", "f", "g"])
    with pytest.raises(LiposcopeError, match="class A has 2 patients, fewer than --folds 3; lower --folds"):
        make_folds(labels, patients, 3, 0, ["A", "B"])


def test_missing_slides_are_counted_and_named(cohort_dir: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    text = (cohort_dir / "labels.csv").read_text() + "ghost-1,px,MLPS\nghost-2,py,PLPS\n"
    labels.write_text(text)
    with pytest.raises(LiposcopeError, match=r"2 of 34 slides .* no features file: ghost-1, ghost-2"):
        load_cohort(labels, cohort_dir / "features", CLASSES)


def _two_slides(tmp_path: Path, dims: tuple[int, int], backbones: tuple[str, str]) -> Path:
    feats = tmp_path / "f"
    feats.mkdir()
    rng = np.random.default_rng(0)
    for name, dim, backbone in zip(("s1", "s2"), dims, backbones, strict=True):
        write_features(feats / f"{name}.h5", rng.normal(size=(5, dim)).astype(np.float32), backbone=backbone)
    (tmp_path / "labels.csv").write_text("slide_id,patient_id,label\ns1,p1,WDLPS\ns2,p2,DDLPS\n")
    return feats


def test_mixed_feature_dimensions_name_both_files(tmp_path: Path) -> None:
    feats = _two_slides(tmp_path, (8, 16), ("test_vit", "test_vit"))
    with pytest.raises(LiposcopeError, match=r"s2\.h5: feature dimension 16 differs from 8 in .*s1\.h5"):
        load_cohort(tmp_path / "labels.csv", feats, CLASSES)


def test_mixed_backbones_are_rejected(tmp_path: Path) -> None:
    feats = _two_slides(tmp_path, (8, 8), ("test_vit", "resnet50"))
    with pytest.raises(LiposcopeError, match="backbone resnet50 differs from test_vit"):
        load_cohort(tmp_path / "labels.csv", feats, CLASSES)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("slide,patient,label\n", "missing column.*slide_id, patient_id"),
        ("slide_id,patient_id,label\ns1,p1,WDLPS\ns2,p2,LIPOMA\n", r"labels\.csv:3: label 'LIPOMA' is not one of"),
        ("slide_id,patient_id,label\ns1,,WDLPS\n", r"labels\.csv:2: empty"),
        ("slide_id,patient_id,label\ns1,p1,WDLPS\ns1,p1,WDLPS\n", r"labels\.csv:3: slide 's1' listed twice"),
        ("slide_id,patient_id,label\n", "no slides listed"),
    ],
)
def test_malformed_labels(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=pattern):
        read_labels(path, CLASSES)


def test_missing_labels_file(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="labels file not found"):
        read_labels(tmp_path / "nope.csv", CLASSES)
