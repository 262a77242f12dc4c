"""``<slide_id>.h5``: a slide's tile features, written and read here only.

Datasets ``features`` (N × D float32) and ``coords`` (N × 2 level-0 x, y, with the CLAM/TRIDENT attributes of
:meth:`TileGrid.coords_attrs`), ``tissue_fraction`` (N); file attributes: the tile grid's (:meth:`TileGrid.attrs`),
the backbone (``backbone``, ``weights_sha256``, ``normalisation``, ``feature_dim``, ...), ``mpp``, ``tissue`` (the
detector settings), ``precision``, ``stain_descriptor``, ``provenance`` and the ``resume`` manifest. Files from
earlier versions (no ``tissue_fraction``, ``tissue`` or coords attributes) still read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from liposcope.config import from_dict
from liposcope.errors import ConfigError, LiposcopeError, where
from liposcope.io import h5_output, provenance
from liposcope.models.card import BackboneSpec, Normalisation
from liposcope.resume import RESUME_KEY
from liposcope.wsi.grid import TileGrid
from liposcope.wsi.tissue import TissueParams


@dataclass(frozen=True)
class FeatureFile:
    """What a feature file holds: the features in grid order and how they were made."""

    features: np.ndarray  # N x D float32
    grid: TileGrid
    backbone: BackboneSpec
    tissue: TissueParams | None
    precision: str
    stain: tuple[float, ...]


def write_feature_file(path: str | Path, bag: FeatureFile, resume: dict[str, Any] | None = None) -> None:
    """Write ``bag`` to ``path`` atomically."""
    spec = bag.backbone
    attrs = {
        "mpp": bag.grid.spec.target_mpp,
        "backbone": spec.name,
        "backbone_kwargs": json.dumps(spec.kwargs),
        "weights_sha256": spec.weights_sha256,
        "normalisation": json.dumps(asdict(spec.normalisation)),
        "input_px": spec.input_px or 0,
        "feature_dim": spec.feature_dim,
        "tissue": json.dumps(asdict(bag.tissue) if bag.tissue else None),
        "precision": bag.precision,
        "stain_descriptor": json.dumps([round(float(v), 5) for v in bag.stain]),
        "provenance": json.dumps(provenance(slide_path=bag.grid.slide_path)),
        **({RESUME_KEY: json.dumps(resume)} if resume else {}),
    }
    with h5_output(path) as h5:
        h5.create_dataset("features", data=np.asarray(bag.features, np.float32))
        bag.grid.write(h5, attrs)


def read_feature_file(path: str | Path) -> FeatureFile:
    """Read a feature file (this version's or an earlier one's).

    Raises:
        LiposcopeError: the file is unreadable, not a liposcope feature file, or holds no n x d features.
    """
    try:
        with h5py.File(path, "r") as h5:
            features = np.asarray(h5["features"][:], dtype=np.float32)
            grid = TileGrid.read(h5)
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
        tissue = json.loads(str(a.get("tissue", "null")))
        bag = FeatureFile(
            features=features,
            grid=grid,
            backbone=backbone,
            tissue=from_dict(TissueParams, tissue, f"{path}: tissue") if tissue else None,
            precision=str(a.get("precision", "fp32")),
            stain=tuple(json.loads(str(a.get("stain_descriptor", "[]")))),
        )
    except (OSError, KeyError, ValueError, TypeError, ConfigError) as exc:
        raise LiposcopeError(where(path, f"not a liposcope feature file ({exc})", "re-extract its features")) from exc
    if features.ndim != 2 or len(features) == 0:
        problem = f"features have shape {features.shape}, expected n x d with n >= 1"
        raise LiposcopeError(where(path, problem, "re-extract its features or drop the slide"))
    return bag
