"""The model format: card round trip, safetensors-only loading and clear errors."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import liposcope.models.card
from liposcope.errors import ModelCardError
from liposcope.models.card import BackboneSpec, HeadSpec, ModelCard, Normalisation, OODStats, load_mil, save_model
from liposcope.models.mil import create_mil
from liposcope.wsi.grid import TileSpec


def _card(head: str = "abmil", dim: int = 12) -> ModelCard:
    rng = np.random.default_rng(0)
    return ModelCard(
        kind="mil",
        classes=("WDLPS", "DDLPS", "MLPS"),
        head=HeadSpec(head, {"hidden_dim": 16, "attn_dim": 8, "dropout": 0.0}),
        backbone=BackboneSpec("test_vit", "ab" * 32, Normalisation((0.5, 0.5, 0.5), (0.2, 0.2, 0.2)), dim),
        tiling=TileSpec(target_mpp=0.5, tile_px=224, overlap_px=0, min_tissue=0.5),
        metrics={"balanced_accuracy": 0.8, "auroc_macro": None},
        calibration={"temperature": 1.7},
        ood=OODStats.fit(rng.normal(size=(20, dim))),
        training={"seed": 0},
    )


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, torch.nn.Module, ModelCard]:
    torch.manual_seed(0)
    card = _card()
    module = create_mil(card.head.name, 12, 3, **card.head.config)
    return save_model(tmp_path / "model", module, card), module, card


def test_round_trip_gives_identical_outputs(saved: tuple[Path, torch.nn.Module, ModelCard]) -> None:
    folder, module, card = saved
    loaded, loaded_card = load_mil(folder)
    assert loaded_card == card
    x = torch.randn(2, 9, 12)
    module.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, module(x).logits)
        assert torch.equal(loaded(x).attention, module(x).attention)


def test_files_are_json_and_safetensors_not_pickle(saved: tuple[Path, torch.nn.Module, ModelCard]) -> None:
    folder = saved[0]
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.safetensors"]
    json.loads((folder / "model.json").read_text())
    raw = (folder / "model.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    assert "project.0.weight" in header
    assert not raw.startswith((b"PK", b"\x80"))  # neither torch's zip nor a raw pickle
    source = Path(liposcope.models.card.__file__).read_text()
    assert "torch.load(" not in source
    assert "import pickle" not in source


def _break(folder: Path, edit: dict[str, object]) -> None:
    data = json.loads((folder / "model.json").read_text())
    data.update(edit)
    (folder / "model.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        ({"format_version": 99}, "unknown model format version 99"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"kind": "mitosis"}, "model kind is 'mitosis', not 'mil'"),
        ({"classes": ["A", "B"]}, "weights do not match the card's head 'abmil'"),
        ({"head": {"name": "clam", "config": {}}}, "unknown MIL head 'clam'"),
    ],
)
def test_invalid_cards_raise_model_card_error(
    saved: tuple[Path, torch.nn.Module, ModelCard], edit: dict[str, object], pattern: str
) -> None:
    _break(saved[0], edit)
    with pytest.raises(ModelCardError, match=pattern):
        load_mil(saved[0])


def test_feature_dim_mismatch(saved: tuple[Path, torch.nn.Module, ModelCard]) -> None:
    data = json.loads((saved[0] / "model.json").read_text())
    data["backbone"]["feature_dim"] = 768
    (saved[0] / "model.json").write_text(json.dumps(data))
    with pytest.raises(ModelCardError, match=r"model\.json: ood: mean has \d+ values but the features have 768"):
        load_mil(saved[0])
    data["ood"] = None  # consistent card, weights of another width
    (saved[0] / "model.json").write_text(json.dumps(data))
    with pytest.raises(ModelCardError, match=r"model\.safetensors: weights do not match"):
        load_mil(saved[0])


def test_missing_and_corrupt_files(tmp_path: Path, saved: tuple[Path, torch.nn.Module, ModelCard]) -> None:
    with pytest.raises(ModelCardError, match="model folder not found"):
        load_mil(tmp_path / "nowhere")
    (saved[0] / "model.safetensors").unlink()
    with pytest.raises(ModelCardError, match="weights not found"):
        load_mil(saved[0])
    (saved[0] / "model.json").write_text("{not json")
    with pytest.raises(ModelCardError, match="invalid JSON"):
        load_mil(saved[0])
    (saved[0] / "model.json").unlink()
    with pytest.raises(ModelCardError, match="model card not found"):
        load_mil(saved[0])


def test_save_replaces_an_existing_model(saved: tuple[Path, torch.nn.Module, ModelCard]) -> None:
    folder, module, card = saved
    save_model(folder, module, card)
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.safetensors"]
    assert not list(folder.parent.glob(".model.tmp-*"))


def test_card_values_are_made_json_safe(tmp_path: Path) -> None:
    card = dataclasses.replace(_card(), metrics={"auroc": float("nan"), "n": np.int64(3)}, training={"out": tmp_path})
    folder = save_model(tmp_path / "model", create_mil("abmil", 12, 3, **card.head.config), card)
    _, loaded = load_mil(folder)
    assert loaded.metrics == {"auroc": None, "n": 3}
    assert loaded.training == {"out": str(tmp_path)}
