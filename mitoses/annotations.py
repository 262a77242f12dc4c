"""Point annotations of mitotic figures and look-alikes, read from CSV or MIDOG-style COCO JSON.

CSV: header ``slide_id,x,y,label`` with x, y in level-0 pixels. Labels (case-insensitive; ``-``, ``_`` and
spaces are interchangeable): ``mitosis``, ``1``, ``mitotic figure`` for a mitotic figure; ``non-mitosis``,
``0``, ``not mitotic figure``, ``look-alike``, ``imposter`` for a look-alike (hard negative).

JSON: the MIDOG / MIDOG++ layout: ``images`` (id, file_name), ``annotations`` (image_id, category_id,
bbox as ``[x1, y1, x2, y2]``, not COCO's ``[x, y, w, h]``) and ``categories`` (id, name). A point is the
centre of its box, the slide id is the image file name without directory and extension, and categories
are matched by name, so files with other category ids work.

Bounds: at most ``MAX_POINTS_PER_SLIDE`` points per slide (a file with more is refused while it is read, so
memory and time stay bounded), and ``PointAnnotations.check_on_slide`` refuses points off a slide's level-0
pixels.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from liposcope.errors import AnnotationError, printable, where
from liposcope.io import atomic_path

MITOSIS, LOOKALIKE = 1, 0
#: Most points accepted on one slide: far above any real annotation of one slide, yet training's patches of
#: that many points stay near 1.2 GB (64 px RGB patches).
MAX_POINTS_PER_SLIDE = 100_000

CSV_COLUMNS = ("slide_id", "x", "y", "label")
_LABELS = {
    "mitosis": MITOSIS,
    "1": MITOSIS,
    "mitotic figure": MITOSIS,
    "non mitosis": LOOKALIKE,
    "0": LOOKALIKE,
    "not mitotic figure": LOOKALIKE,
    "look alike": LOOKALIKE,
    "imposter": LOOKALIKE,
}
_LABEL_NAMES = {MITOSIS: "mitosis", LOOKALIKE: "non-mitosis"}
_ACCEPTED = "mitosis / 1 / mitotic figure, or non-mitosis / 0 / not mitotic figure / look-alike / imposter"
_NEGATED = re.compile(r"\bnot\b|\bnon")


@dataclass(frozen=True, eq=False)
class PointAnnotations:
    """Annotated points of one file; arrays are aligned, one entry per point.

    Attributes:
        slide_ids: Every slide listed: for JSON all images, also those without annotations; for CSV the
            slides in order of first appearance.
        slide: ``N`` object array, the slide id of each point.
        xy: ``N x 2`` float64 level-0 pixel coordinates.
        label: ``N`` int8, ``MITOSIS`` (1) or ``LOOKALIKE`` (0).
        source: The path read.

    Example:
        >>> ann = read_annotations("points.csv")  # doctest: +SKIP
        >>> xy, label = ann.for_slide("001")  # doctest: +SKIP
    """

    slide_ids: tuple[str, ...]
    slide: np.ndarray
    xy: np.ndarray
    label: np.ndarray
    source: str

    def __post_init__(self) -> None:
        n = len(self.slide)
        if self.xy.shape != (n, 2) or self.label.shape != (n,):
            msg = f"inconsistent shapes: slide {self.slide.shape}, xy {self.xy.shape}, label {self.label.shape}"
            raise ValueError(msg)

    def for_slide(self, slide_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(xy, label)`` of the points on ``slide_id``; empty ``(0, 2)`` and ``(0,)`` arrays if it has none."""
        mask = self.slide == slide_id
        return self.xy[mask], self.label[mask]

    def counts(self) -> dict[str, tuple[int, int]]:
        """``slide_id -> (mitotic figures, look-alikes)`` for every listed slide, zeros included."""
        index = {s: i for i, s in enumerate(self.slide_ids)}
        codes = np.fromiter((index[s] for s in self.slide), dtype=np.int64, count=len(self.slide))
        n = len(self.slide_ids)
        mitoses = np.bincount(codes[self.label == MITOSIS], minlength=n)
        lookalikes = np.bincount(codes[self.label == LOOKALIKE], minlength=n)
        return {s: (int(mitoses[i]), int(lookalikes[i])) for i, s in enumerate(self.slide_ids)}

    def check_on_slide(self, slide_id: str, slide_path: str | Path, width: int, height: int) -> None:
        """Refuse points of ``slide_id`` outside ``[0, width) x [0, height)`` level-0 pixels.

        Raises:
            AnnotationError: Names this file, the slide, how many points are off and the first one.
        """
        xy, _ = self.for_slide(slide_id)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
        off = np.flatnonzero(~inside)
        if len(off):
            x, y = xy[off[0]].tolist()
            problem = (
                f"{len(off)} of {len(xy)} points lie off slide {printable(slide_path)} ({width} x {height} level-0 px),"
                f" the first at x={_format_number(x)}, y={_format_number(y)}"
            )
            fix = "check that the coordinates are level-0 pixels of this slide"
            raise AnnotationError(where(self.source, problem, fix))


def read_annotations(path: str | Path) -> PointAnnotations:
    """Read points from a ``.csv`` or MIDOG-style ``.json`` file, chosen by suffix.

    Raises:
        AnnotationError: The file is missing, has another suffix or is malformed; the message names the
            file (and line or annotation) and the fix.

    Example:
        >>> ann = read_annotations("MIDOG++.json")  # doctest: +SKIP
        >>> ann.counts()["001"]  # doctest: +SKIP
        (0, 4)
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(where(path, "annotation file not found", "check the path"))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".json":
        return _read_midog_json(path)
    raise AnnotationError(where(path, f"unsupported suffix {path.suffix!r}", "pass a .csv or MIDOG-style .json file"))


def write_points_csv(path: str | Path, annotations: PointAnnotations) -> None:
    """Write ``annotations`` as ``slide_id,x,y,label`` CSV, atomically; slides without points are not kept.

    Coordinates are written exactly (shortest round-trip form), labels as ``mitosis`` / ``non-mitosis``.

    Example:
        >>> write_points_csv("points.csv", read_annotations("MIDOG++.json"))  # doctest: +SKIP
    """
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for slide_id, (x, y), label in zip(
            annotations.slide, annotations.xy.tolist(), annotations.label.tolist(), strict=True
        ):
            writer.writerow((slide_id, _format_number(x), _format_number(y), _LABEL_NAMES[label]))


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _label(text: str) -> int | None:
    return _LABELS.get(" ".join(re.split(r"[\s_-]+", text.strip().lower())))


def _build(
    source: Path, slide_ids: list[str], slide: list[str], xy: list[tuple[float, float]], label: list[int]
) -> PointAnnotations:
    return PointAnnotations(
        slide_ids=tuple(slide_ids),
        slide=np.array(slide, dtype=object),
        xy=np.array(xy, dtype=np.float64).reshape(-1, 2),
        label=np.array(label, dtype=np.int8),
        source=str(source),
    )


def _count(path: Path, counts: dict[str, int], slide_id: str) -> None:
    """Count one more point on ``slide_id``; refuse the file once a slide has more than the limit."""
    counts[slide_id] = counts.get(slide_id, 0) + 1
    if counts[slide_id] > MAX_POINTS_PER_SLIDE:
        problem = f"more than {MAX_POINTS_PER_SLIDE:,} points on slide {slide_id!r}"
        raise AnnotationError(where(path, problem, "check the file: at most that many points per slide are accepted"))


def _read_csv(path: Path) -> PointAnnotations:
    slide_ids: dict[str, int] = {}
    slide: list[str] = []
    xy: list[tuple[float, float]] = []
    label: list[int] = []
    fix_row = "write slide_id,x,y,label with numeric level-0 x and y"
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [name.strip().lower() for name in reader.fieldnames or []]
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                msg = where(
                    f"{path}:1", f"header lacks column(s) {', '.join(missing)}", f"start with {','.join(CSV_COLUMNS)}"
                )
                raise AnnotationError(msg)
            reader.fieldnames = header
            for row in reader:
                at = f"{path}:{reader.line_num}"
                values = [row.get(c) for c in CSV_COLUMNS]
                if any(v is None for v in values) or None in row:
                    raise AnnotationError(
                        where(at, f"row does not have the {len(header)} fields of the header", fix_row)
                    )
                slide_id, x_text, y_text, label_text = (str(v).strip() for v in values)
                if not slide_id:
                    raise AnnotationError(where(at, "empty slide_id", fix_row))
                try:
                    x, y = float(x_text), float(y_text)
                except ValueError:
                    x = y = math.nan
                if not (math.isfinite(x) and math.isfinite(y)):
                    raise AnnotationError(where(at, f"x={x_text!r}, y={y_text!r} is not a finite number pair", fix_row))
                code = _label(label_text)
                if code is None:
                    raise AnnotationError(where(at, f"unknown label {label_text!r}", f"use {_ACCEPTED}"))
                _count(path, slide_ids, slide_id)
                slide.append(slide_id)
                xy.append((x, y))
                label.append(code)
    except UnicodeDecodeError as exc:
        raise AnnotationError(where(path, "not UTF-8 text", "save the CSV as UTF-8")) from exc
    except csv.Error as exc:
        raise AnnotationError(where(path, f"malformed CSV ({exc})", fix_row)) from exc
    return _build(path, list(slide_ids), slide, xy, label)


def _read_midog_json(path: Path) -> PointAnnotations:
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationError(where(path, f"not valid JSON ({exc})", "pass a MIDOG-style COCO JSON file")) from exc
    fix = "expected MIDOG-style COCO JSON with images, annotations and categories"
    if not isinstance(data, dict):
        raise AnnotationError(where(path, f"top level is {type(data).__name__}, not an object", fix))
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise AnnotationError(where(path, f"missing list {key!r}", fix))
    categories = _categories(path, data["categories"])
    images = _images(path, data["images"])

    slide: list[str] = []
    xy: list[tuple[float, float]] = []
    label: list[int] = []
    counts: dict[str, int] = {}
    fix_ann = "fix or remove this annotation"
    for index, ann in enumerate(data["annotations"]):
        name = f"annotation #{index}" + (f" (id {ann.get('id')})" if isinstance(ann, dict) and "id" in ann else "")
        if not isinstance(ann, dict) or not {"image_id", "category_id", "bbox"} <= ann.keys():
            raise AnnotationError(where(path, f"{name} lacks image_id, category_id or bbox", fix_ann))
        slide_id = images.get(_key(ann["image_id"]))
        if slide_id is None:
            raise AnnotationError(where(path, f"{name} refers to unknown image_id {ann['image_id']!r}", fix_ann))
        code = categories.get(_key(ann["category_id"]))
        if code is None:
            raise AnnotationError(where(path, f"{name} refers to unknown category_id {ann['category_id']!r}", fix_ann))
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            raise AnnotationError(
                where(path, f"{name} has bbox {box!r}, not 4 finite numbers [x1, y1, x2, y2]", fix_ann)
            )
        x1, y1, x2, y2 = box
        if x2 < x1 or y2 < y1:
            raise AnnotationError(
                where(path, f"{name} has bbox {box!r} with x2 < x1 or y2 < y1", "write [x1, y1, x2, y2]")
            )
        _count(path, counts, slide_id)
        slide.append(slide_id)
        xy.append(((x1 + x2) / 2, (y1 + y2) / 2))
        label.append(code)
    return _build(path, list(images.values()), slide, xy, label)


def _categories(path: Path, entries: list[Any]) -> dict[object, int]:
    """Category id -> MITOSIS / LOOKALIKE, by name."""
    out: dict[object, int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("name"), str):
            raise AnnotationError(
                where(path, f"category #{index} lacks id or name", "give every category an id and a name")
            )
        code = _label(entry["name"])
        if code is None and _NEGATED.search(entry["name"].lower()):
            code = LOOKALIKE
        if code is None:
            msg = where(
                path,
                f"unknown category name {entry['name']!r}",
                'name categories "mitotic figure" / "not mitotic figure"',
            )
            raise AnnotationError(msg)
        if _key(entry["id"]) in out:
            raise AnnotationError(
                where(path, f"category id {entry['id']!r} listed twice", "give every category its own id")
            )
        out[_key(entry["id"])] = code
    return out


def _images(path: Path, entries: list[Any]) -> dict[object, str]:
    """Image id -> slide id (file name without directory and extension), in file order."""
    out: dict[object, str] = {}
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("file_name"), str):
            raise AnnotationError(
                where(path, f"image #{index} lacks id or file_name", "give every image an id and a file_name")
            )
        slide_id = PurePath(entry["file_name"]).stem
        if not slide_id:
            raise AnnotationError(where(path, f"image #{index} has empty file_name", "give every image a file_name"))
        if _key(entry["id"]) in out:
            raise AnnotationError(where(path, f"image id {entry['id']!r} listed twice", "give every image its own id"))
        if slide_id in seen:
            raise AnnotationError(
                where(path, f"two images are named {slide_id!r}", "give every image its own file name")
            )
        out[_key(entry["id"])] = slide_id
        seen.add(slide_id)
    return out


def _key(value: object) -> object:
    """A hashable id (JSON ids are numbers or strings; lists are never valid ids but must not crash)."""
    return value if isinstance(value, (int, float, str)) else repr(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
