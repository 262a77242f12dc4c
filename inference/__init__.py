"""The pathologist's side: one slide in, a prediction with heatmaps, GeoJSON and an HTML report out."""

from typing import TYPE_CHECKING

from liposcope._lazy import lazy_exports

if TYPE_CHECKING:
    from liposcope.inference.compute import Model, load_model, predict_slide
    from liposcope.inference.heatmap import render_heatmap
    from liposcope.inference.result import SlidePrediction
    from liposcope.inference.run import predict_to_folder, write_outputs

__all__ = [
    "Model",
    "SlidePrediction",
    "load_model",
    "predict_slide",
    "predict_to_folder",
    "render_heatmap",
    "write_outputs",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
