"""``predict_to_folder``: one slide in, ``OUT/<slide_id>/`` with every reviewable file out; resumable."""

from __future__ import annotations

import json
from pathlib import Path

from liposcope.inference.export import render_top_tiles, subtype_section, write_heatmap_geojson, write_prediction_json
from liposcope.inference.heatmap import render_heatmap
from liposcope.inference.predict import Model, predict_slide
from liposcope.inference.result import SlidePrediction
from liposcope.io import output_dir, write_png
from liposcope.report import write_section
from liposcope.wsi import Slide, slide_id_from_path

PREDICTION_JSON = "prediction.json"


def predict_to_folder(
    path: str | Path, model: Model, out: str | Path, **options: object
) -> tuple[SlidePrediction | None, Path]:
    """Predict ``path`` and write prediction.json, heatmap.png, heatmap.geojson, top_tiles.png, report.html.

    ``options`` go to :func:`predict_slide`. A slide whose prediction.json was made by the same model
    file from the same slide is skipped (returns ``None``).

    Example:
        >>> pred, folder = predict_to_folder("case.svs", load_model("run/model"), "out")  # doctest: +SKIP
    """
    folder = Path(out) / slide_id_from_path(path)
    if _done(folder, path, model):
        return None, folder
    pred = predict_slide(path, model, **options)  # type: ignore[arg-type]
    write_outputs(pred, folder)
    return pred, folder


def write_outputs(pred: SlidePrediction, folder: Path) -> None:
    """All per-slide files; prediction.json last, so its presence means the folder is complete."""
    heatmap = render_heatmap(pred)
    with Slide(pred.slide_path, mpp=pred.slide_mpp) as slide:
        gallery = render_top_tiles(pred, slide)
    with output_dir(folder):
        write_png(folder / "heatmap.png", heatmap)
        write_png(folder / "top_tiles.png", gallery)
        write_heatmap_geojson(folder / "heatmap.geojson", pred)
        write_section(folder, subtype_section(pred, heatmap, gallery))
        write_prediction_json(folder / PREDICTION_JSON, pred)


def _done(folder: Path, slide: str | Path, model: Model) -> bool:
    try:
        saved = json.loads((folder / PREDICTION_JSON).read_text(encoding="utf-8"))["provenance"]
    except (OSError, ValueError, KeyError):
        return False
    same_slide = saved.get("slide", {}).get("slide_path") == str(Path(slide).resolve())
    return bool(same_slide and saved.get("model", {}).get("sha256") == model.sha256)
