"""``predict_to_folder``: one slide in, ``OUT/<slide_id>/`` with every reviewable file out; resumable."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from liposcope.inference.compute import Model, predict_slide
from liposcope.inference.export import render_top_tiles, subtype_section, write_heatmap_geojson, write_prediction_json
from liposcope.inference.heatmap import render_heatmap
from liposcope.inference.result import SlidePrediction
from liposcope.io import output_dir, write_png
from liposcope.report import write_section
from liposcope.resume import is_done, output_lock, resume_key
from liposcope.wsi import Slide, slide_id_from_path

PREDICTION_JSON = "prediction.json"
#: Options of :func:`predict_slide` that change how fast a result comes, not what it is.
RUNTIME_OPTIONS = frozenset({"device", "batch_size", "workers"})


def predict_to_folder(
    path: str | Path, model: Model, out: str | Path, **options: object
) -> tuple[SlidePrediction | None, Path]:
    """Predict ``path`` and write prediction.json, heatmap.png, heatmap.geojson, top_tiles.png, report.html.

    ``options`` go to :func:`predict_slide`. A slide already done by the same model (card and weights) with the same
    settings is skipped (returns ``None``); see :mod:`liposcope.resume`.

    Example:
        >>> pred, folder = predict_to_folder("case.svs", load_model("run/model"), "out")  # doctest: +SKIP
    """
    folder = Path(out) / slide_id_from_path(path)
    settings = {k: v for k, v in options.items() if k not in RUNTIME_OPTIONS}
    tissue = options.get("tissue") or model.card.tissue_settings
    key = resume_key(path, {**settings, "tissue": asdict(tissue)}, model.hash)  # type: ignore[call-overload]
    with output_lock(folder):
        if is_done(folder / PREDICTION_JSON, key):
            return None, folder
        pred = predict_slide(path, model, **options)  # type: ignore[arg-type]
        write_outputs(pred, folder, resume=key)
    return pred, folder


def write_outputs(pred: SlidePrediction, folder: Path, *, resume: dict[str, Any] | None = None) -> None:
    """All per-slide files; prediction.json last (with the ``resume`` manifest), so its presence means done."""
    heatmap = render_heatmap(pred)
    with Slide(pred.slide_path, mpp=pred.slide_mpp) as slide:
        gallery = render_top_tiles(pred, slide)
    with output_dir(folder):
        write_png(folder / "heatmap.png", heatmap)
        write_png(folder / "top_tiles.png", gallery)
        write_heatmap_geojson(folder / "heatmap.geojson", pred)
        write_section(folder, subtype_section(pred, heatmap, gallery))
        write_prediction_json(folder / PREDICTION_JSON, pred, resume=resume)
