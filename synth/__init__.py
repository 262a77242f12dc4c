"""Synthetic pyramidal H&E slides of liposarcoma subtypes, and H-DAB IHC slides, with ground truth.

Slides are rendered in physical units (µm) from hashed jittered grids, so any region renders
deterministically and seamlessly at any mpp; stains follow Beer-Lambert with per-slide styles.

Example:
    >>> from liposcope.synth import write_slide, load_truth  # doctest: +SKIP
    >>> truth = write_slide("s.tiff", label="DDLPS", seed=1, width_px=4000, height_px=3000)  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from liposcope._lazy import lazy_exports

if TYPE_CHECKING:
    from liposcope.synth.cohort import write_cohort, write_tile_labels
    from liposcope.synth.ihc import (
        IHCSlide,
        IHCTruth,
        ihc_sidecar_paths,
        load_ihc_truth,
        make_ihc_slide,
        random_ihc_style,
        write_ihc_slide,
    )
    from liposcope.synth.pyramid import level_dims, write_pyramid
    from liposcope.synth.slide import LABELS, SynthSlide, Truth, load_truth, make_slide, sidecar_paths, write_slide
    from liposcope.synth.stain import Stain, StainStyle, he_style, random_he_style, render_rgb

__all__ = [
    "LABELS",
    "IHCSlide",
    "IHCTruth",
    "Stain",
    "StainStyle",
    "SynthSlide",
    "Truth",
    "he_style",
    "ihc_sidecar_paths",
    "level_dims",
    "load_ihc_truth",
    "load_truth",
    "make_ihc_slide",
    "make_slide",
    "random_he_style",
    "random_ihc_style",
    "render_rgb",
    "sidecar_paths",
    "write_cohort",
    "write_ihc_slide",
    "write_pyramid",
    "write_slide",
    "write_tile_labels",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
