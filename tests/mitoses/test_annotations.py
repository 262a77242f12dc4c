"""Point annotations: the real MIDOG++ file, malformed inputs and the CSV round trip."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from liposcope.errors import AnnotationError
from liposcope.mitoses.annotations import LOOKALIKE, MITOSIS, PointAnnotations, read_annotations, write_points_csv

MIDOG = ("mitosis", "MIDOG++.json")


@pytest.fixture(scope="module")
def midog_raw(shared_data: Path) -> dict[str, Any]:
    with open(shared_data.joinpath(*MIDOG), encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@pytest.fixture(scope="module")
def midog(shared_data: Path) -> PointAnnotations:
    return read_annotations(shared_data.joinpath(*MIDOG))


@pytest.mark.realdata
def test_midog_counts_match_raw_json(midog: PointAnnotations, midog_raw: dict[str, Any]) -> None:
    ann = midog
    assert len(ann.slide_ids) == 553
    assert int((ann.label == MITOSIS).sum()) == 11_937
    assert int((ann.label == LOOKALIKE).sum()) == 14_349
    assert ann.xy.shape == (26_286, 2)
    assert ann.xy.dtype == np.float64
    assert ann.label.dtype == np.int8

    # Independent count straight from the JSON: category 1 is "mitotic figure" in this file.
    names = {c["id"]: c["name"] for c in midog_raw["categories"]}
    assert names == {1: "mitotic figure", 2: "not mitotic figure"}
    stem = {i["id"]: str(i["file_name"]).rsplit(".", 1)[0] for i in midog_raw["images"]}
    raw = Counter((stem[a["image_id"]], a["category_id"]) for a in midog_raw["annotations"])
    expected = {s: (raw[s, 1], raw[s, 2]) for s in stem.values()}
    assert ann.counts() == expected
    assert ann.slide_ids == tuple(stem.values())
    empty = [s for s, c in expected.items() if c == (0, 0)]
    assert empty  # images without annotations stay listed
    assert ann.for_slide(empty[0])[0].shape == (0, 2)


@pytest.mark.realdata
def test_midog_points_are_bbox_centres(midog: PointAnnotations, midog_raw: dict[str, Any]) -> None:
    ann = midog
    raw = midog_raw["annotations"]
    for i in (0, 3, 1000, 17_000, len(raw) - 1):
        x1, y1, x2, y2 = raw[i]["bbox"]
        assert ann.xy[i].tolist() == [(x1 + x2) / 2, (y1 + y2) / 2]
        assert ann.label[i] == (MITOSIS if raw[i]["category_id"] == 1 else LOOKALIKE)
    assert ann.xy[0].tolist() == [4361.0, 371.0]  # bbox [4336, 346, 4386, 396]
    xy, label = ann.for_slide("001")
    assert len(xy) == len(label) == sum(ann.counts()["001"])


def _midog(tmp_path: Path, **change: object) -> Path:
    data: dict[str, object] = {
        "images": [{"id": 7, "file_name": "roi/a.tiff"}, {"id": 8, "file_name": "b.tiff"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 5, "bbox": [10, 20, 60, 70]},
            {"id": 2, "image_id": 7, "category_id": 9, "bbox": [0.5, 1.5, 50.5, 51.5]},
        ],
        "categories": [{"id": 9, "name": "Not Mitotic Figure"}, {"id": 5, "name": "mitotic figure"}],
    }
    data.update(change)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}), encoding="utf-8")
    return path


def test_json_maps_categories_by_name(tmp_path: Path) -> None:
    ann = read_annotations(_midog(tmp_path))
    assert ann.slide_ids == ("a", "b")
    assert ann.xy.tolist() == [[35.0, 45.0], [25.5, 26.5]]
    assert ann.label.tolist() == [MITOSIS, LOOKALIKE]
    assert ann.counts() == {"a": (1, 1), "b": (0, 0)}


@pytest.mark.parametrize(
    ("change", "offending"),
    [
        ({"annotations": None}, "'annotations'"),
        ({"annotations": [{"id": 3, "image_id": 7, "category_id": 5, "bbox": [1, 2, 3]}]}, "[1, 2, 3]"),
        ({"annotations": [{"id": 3, "image_id": 99, "category_id": 5, "bbox": [1, 2, 3, 4]}]}, "image_id 99"),
        ({"annotations": [{"id": 3, "image_id": 7, "category_id": 5, "bbox": [9, 2, 3, 4]}]}, "x2 < x1"),
        ({"annotations": [{"id": 3, "image_id": 7, "category_id": 6, "bbox": [1, 2, 3, 4]}]}, "category_id 6"),
        ({"categories": [{"id": 5, "name": "mitotic figure"}, {"id": 9, "name": "tumour cell"}]}, "'tumour cell'"),
        ({"images": [{"id": 7, "file_name": "a.tiff"}, {"id": 7, "file_name": "c.tiff"}]}, "image id 7"),
    ],
)
def test_malformed_json_names_file_and_problem(tmp_path: Path, change: dict[str, object], offending: str) -> None:
    path = _midog(tmp_path, **change)
    with pytest.raises(AnnotationError) as err:
        read_annotations(path)
    assert str(path) in str(err.value)
    assert offending in str(err.value)


def test_annotation_index_and_id_in_message(tmp_path: Path) -> None:
    good = {"id": 1, "image_id": 7, "category_id": 5, "bbox": [1, 2, 3, 4]}
    path = _midog(tmp_path, annotations=[good, {**good, "id": 42, "bbox": [1, 2, 3]}])
    with pytest.raises(AnnotationError, match=r"annotation #1 \(id 42\)"):
        read_annotations(path)


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"images": [', encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"broken\.json: not valid JSON"):
        read_annotations(path)


def test_missing_file_and_bad_suffix(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=r"nope\.csv: annotation file not found"):
        read_annotations(tmp_path / "nope.csv")
    path = tmp_path / "points.txt"
    path.write_text("slide_id,x,y,label\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"points\.txt: unsupported suffix '\.txt'"):
        read_annotations(path)


@pytest.mark.parametrize(
    ("text", "line", "offending"),
    [
        ("slide_id,x,y,label\ns1,1,2,mitosis\ns1,3,4,maybe\n", 3, "'maybe'"),
        ("slide_id,x,y\ns1,1,2\n", 1, "label"),
        ("slide_id,x,y,label\ns1,abc,2,mitosis\n", 2, "'abc'"),
        ("slide_id,x,y,label\ns1,1,inf,mitosis\n", 2, "'inf'"),
        ("slide_id,x,y,label\ns1,1,2\n", 2, "fields"),
        ("slide_id,x,y,label\n,1,2,mitosis\n", 2, "empty slide_id"),
    ],
)
def test_malformed_csv_names_file_line_and_problem(tmp_path: Path, text: str, line: int, offending: str) -> None:
    path = tmp_path / "points.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AnnotationError) as err:
        read_annotations(path)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert offending in str(err.value)


def test_csv_labels_for_slide_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    path.write_text(
        "slide_id,x,y,label\n"
        "s2,10,20,Mitosis\n"
        "s1,1.5,2.5, non-mitosis \n"
        "s2,30,40,1\n"
        "s2,50,60,look-alike\n"
        "s1,7,8,MITOTIC FIGURE\n"
        "s2,9,9,imposter\n"
        "s2,9,9,0\n"
        "s1,0,0,not mitotic figure\n",
        encoding="utf-8",
    )
    ann = read_annotations(path)
    assert ann.slide_ids == ("s2", "s1")
    assert ann.source == str(path)
    assert ann.counts() == {"s2": (2, 3), "s1": (1, 2)}
    xy, label = ann.for_slide("s1")
    assert xy.tolist() == [[1.5, 2.5], [7.0, 8.0], [0.0, 0.0]]
    assert label.tolist() == [LOOKALIKE, MITOSIS, LOOKALIKE]
    xy, label = ann.for_slide("unknown")
    assert xy.shape == (0, 2)
    assert label.shape == (0,)


def test_csv_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    rng = np.random.default_rng(0)
    boxes = [[x, y, x + 50, y + 50] for x, y in rng.uniform(0, 5000, (200, 2)).tolist()]
    boxes[0] = [100, 200, 150, 250]
    source.write_text(
        json.dumps(
            {
                "images": [{"id": i, "file_name": f"slide,{i}.tiff"} for i in range(3)],
                "annotations": [
                    {"image_id": k % 3, "category_id": 1 + k % 2, "bbox": box} for k, box in enumerate(boxes)
                ],
                "categories": [{"id": 1, "name": "mitotic figure"}, {"id": 2, "name": "not mitotic figure"}],
            }
        ),
        encoding="utf-8",
    )
    first = read_annotations(source)
    out = tmp_path / "out.csv"
    write_points_csv(out, first)
    assert out.read_text(encoding="utf-8").splitlines()[:2] == ["slide_id,x,y,label", '"slide,0",125,225,mitosis']
    second = read_annotations(out)
    assert second.slide_ids == first.slide_ids
    np.testing.assert_array_equal(second.slide, first.slide)
    np.testing.assert_array_equal(second.xy, first.xy)
    np.testing.assert_array_equal(second.label, first.label)
    assert second.label.dtype == np.int8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "out.csv"]  # no temporary left behind
