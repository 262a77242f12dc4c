"""The pathologist's side: one slide in, a prediction with heatmaps, GeoJSON and an HTML report out."""

from inference.heatmap import render_heatmap
from inference.predict import Model, load_model, predict_slide
from inference.report import Section, build_report, write_section
from inference.result import SlidePrediction
from inference.run import predict_to_folder, write_outputs

__all__ = [
    "Model",
    "Section",
    "SlidePrediction",
    "build_report",
    "load_model",
    "predict_slide",
    "predict_to_folder",
    "render_heatmap",
    "write_outputs",
    "write_section",
]
