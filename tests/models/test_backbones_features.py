"""Backbones from local weights (never the network) and resumable feature files."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import safetensors.torch
import timm
import torch

from liposcope.errors import ConfigError, ModelCardError
from liposcope.io import sha256_file
from liposcope.models.backbones import backbone_from_spec, create_backbone
from liposcope.models.encode import extract_features
from liposcope.models.feature_file import read_feature_file
from liposcope.wsi import TileGrid, tiling_config

NAME = "test_resnet"  # timm's tiny test model: real layers, no download


def _outputs(model: torch.nn.Module) -> torch.Tensor:
    torch.manual_seed(0)
    with torch.inference_mode():
        return model.eval()(torch.rand(2, 3, 64, 64))


def test_random_weights_are_seeded() -> None:
    a, b, c = (create_backbone(NAME, "random", seed=s) for s in (1, 1, 2))
    assert torch.equal(_outputs(a.model), _outputs(b.model))
    assert not torch.equal(_outputs(a.model), _outputs(c.model))
    assert a.spec.weights_sha256 == "random:seed1"
    assert a.spec.feature_dim == _outputs(a.model).shape[1]
    assert len(a.spec.normalisation.mean) == len(a.spec.normalisation.std) == 3


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_local_weight_files_load_exactly(tmp_path: Path, suffix: str) -> None:
    source = timm.create_model(NAME, pretrained=False, num_classes=0)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}  # DDP-style prefix is stripped
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        safetensors.torch.save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, path)
    backbone = create_backbone(NAME, path)
    assert torch.equal(_outputs(backbone.model), _outputs(source))
    assert backbone.spec.weights_sha256 == sha256_file(path)
    assert backbone_from_spec(backbone.spec, path).spec == backbone.spec


def test_hugging_face_folder(tmp_path: Path) -> None:
    source = timm.create_model(NAME, pretrained=False, num_classes=0)
    timm.models.save_for_hf(source, str(tmp_path / "hf"), model_config={"num_classes": 0})
    backbone = create_backbone(NAME, tmp_path / "hf")
    assert torch.equal(_outputs(backbone.model), _outputs(source))


def test_bad_weights_give_clear_errors(tmp_path: Path) -> None:
    other = tmp_path / "other.safetensors"
    safetensors.torch.save_file(timm.create_model("resnet18", num_classes=0).state_dict(), str(other))
    with pytest.raises(ModelCardError, match="do not fit timm model 'test_resnet'"):
        create_backbone(NAME, other)
    pickled = tmp_path / "pickled.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": object()}, pickled)
    with pytest.raises(ModelCardError, match="cannot read weights"):
        create_backbone(NAME, pickled)
    with pytest.raises(ModelCardError, match="not found"):
        create_backbone(NAME, tmp_path / "missing.safetensors")
    with pytest.raises(ModelCardError, match=r"not cached locally.*--weights PATH"):
        create_backbone("resnet18", None)
    with pytest.raises(ConfigError, match="did you mean"):
        create_backbone("resnet181", "random")
    fitting = tmp_path / "fitting.safetensors"
    safetensors.torch.save_file(create_backbone(NAME, "random", seed=5).model.state_dict(), str(fitting))
    with pytest.raises(ModelCardError, match="differ from the model's"):
        backbone_from_spec(create_backbone(NAME, "random", seed=3).spec, fitting)


def test_features_file_layout_and_skip(he_slides: dict[str, Path], tmp_path: Path) -> None:
    spec, tissue = tiling_config(tile_px=128)
    backbone = create_backbone(NAME, "random")
    path, skipped = extract_features(he_slides["MLPS"], tmp_path, backbone, spec, tissue, batch_size=16)
    assert not skipped
    assert path == tmp_path / "mlps.h5"
    with h5py.File(path) as h5:
        coords, feats, attrs = h5["coords"][:], h5["features"][:], dict(h5.attrs)
    assert coords.shape == (len(feats), 2)
    assert feats.shape[1] == backbone.spec.feature_dim
    assert np.isfinite(feats).all()
    assert feats.std(axis=0).mean() > 0  # tiles differ
    assert attrs["backbone"] == NAME
    assert attrs["weights_sha256"] == "random:seed0"
    assert attrs["mpp"] == attrs["target_mpp"] == 0.5
    assert attrs["tile_size"] == 128
    stamp = path.stat().st_mtime_ns
    assert extract_features(he_slides["MLPS"], tmp_path, backbone, spec, tissue)[1]
    assert path.stat().st_mtime_ns == stamp


def test_feature_file_reads_as_clam_and_trident_read_it(he_slides: dict[str, Path], tmp_path: Path) -> None:
    """Their readers take coords in level-0 px and the sizes from ``coords.attrs``; the crop they cut is our tile."""
    import openslide

    from liposcope.wsi import Slide, TileReader

    spec, tissue = tiling_config(tile_px=64, target_mpp=1.0)
    path, _ = extract_features(he_slides["DDLPS"], tmp_path, create_backbone(NAME, "random"), spec, tissue)
    with h5py.File(path) as h5:
        coords, a = h5["coords"][:], dict(h5["coords"].attrs)
    with openslide.OpenSlide(str(he_slides["DDLPS"])) as osr:
        assert tuple(a["level_dim"]) == osr.level_dimensions[a["patch_level"]]
        size0 = int(a["patch_size_level0"])
        assert size0 == round(a["patch_size"] * a["downsample"][0])
        x, y = (int(v) for v in coords[len(coords) // 2])
        crop = osr.read_region((x, y), int(a["patch_level"]), (size0, size0)).convert("RGB")
        theirs = np.asarray(crop.resize((int(a["patch_size"]),) * 2))
    assert a["patch_size"] == 64
    assert a["level0_magnification"] == pytest.approx(10 / 0.5)
    with Slide(he_slides["DDLPS"]) as slide:
        reader = TileReader(slide, TileGrid.load(path))
        ours = next(t for i, tiles in reader for j, t in zip(i, tiles, strict=True) if j == len(coords) // 2)
    assert np.abs(theirs.astype(float) - ours.astype(float)).mean() < 12


def test_features_recompute_when_the_tissue_settings_change(he_slides: dict[str, Path], tmp_path: Path) -> None:
    spec, tissue = tiling_config(tile_px=128)
    backbone = create_backbone(NAME, "random")
    path, _ = extract_features(he_slides["WDLPS"], tmp_path, backbone, spec, tissue)
    assert extract_features(he_slides["WDLPS"], tmp_path, backbone, spec, tissue)[1]
    other = dataclasses.replace(tissue, min_object_mm2=tissue.min_object_mm2 * 2)
    assert not extract_features(he_slides["WDLPS"], tmp_path, backbone, spec, other)[1]
    assert read_feature_file(path).tissue == other


def test_interrupted_extraction_resumes_to_the_same_files(he_slides: dict[str, Path], tmp_path: Path) -> None:
    slides = [str(he_slides["WDLPS"]), str(he_slides["PLPS"])]
    args = ["features", *slides, "--backbone", NAME, "--weights", "random", "--mpp", "1.0", "--workers", "0"]
    crash = (
        "import sys, h5py\n"
        "real = h5py.Group.create_dataset\n"
        "made = []\n"
        "def boom(self, name, *a, **k):\n"  # the second slide's features (files are built in memory: no name)
        "    made.append(name)\n"
        "    if made.count('features') == 2: raise SystemExit(9)\n"
        "    return real(self, name, *a, **k)\n"
        "h5py.Group.create_dataset = boom\n"
        "from liposcope.cli import main\n"
        f"sys.exit(main({[*args, '--out', str(tmp_path / 'a')]!r}))\n"
    )
    env = {**os.environ, "CI": "true"}
    assert subprocess.run([sys.executable, "-c", crash], env=env, check=False).returncode == 9
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["wdlps.h5"]  # no partial file left
    from liposcope.cli import main

    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in ("wdlps.h5", "plps.h5"):
        with h5py.File(tmp_path / "a" / name) as a, h5py.File(tmp_path / "b" / name) as b:
            np.testing.assert_array_equal(a["coords"][:], b["coords"][:])
            np.testing.assert_allclose(a["features"][:], b["features"][:], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["test_resnet", "mobilenetv3_small_050", "test_vit"])
def test_feature_dim_is_the_pooled_output_width(name: str) -> None:
    """mobilenetv3's pooled output passes a hidden head layer: wider than ``num_features``."""
    backbone = create_backbone(name, "random")
    side = backbone.spec.input_px or 96
    with torch.inference_mode():
        out = backbone.model(backbone.prepare(torch.zeros(1, 3, side, side, dtype=torch.uint8)))
    assert out.shape == (1, backbone.spec.feature_dim)
