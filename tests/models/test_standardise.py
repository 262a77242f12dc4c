"""Input standardisation inside the heads: scale-free, robust, saved with the weights, old cards still load."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from liposcope.errors import ModelCardError
from liposcope.models.card import WEIGHTS_FILE, load_mil, save_model
from liposcope.models.mil import create_mil
from liposcope.models.mil.standardise import CLIP, InputStandardiser, fit_standardiser, robust_stats
from liposcope.training.metrics import abstention_threshold
from tests.models.test_card import _card


def _bags(scale: float = 1.0, seed: int = 0) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    spread = np.array([1e-2, 1.0, 300.0, 1.0, 0.5, 2.0, 1.0, 5.0, 1.0, 1.0, 1.0, 0.1])  # dims of very different scale
    return [torch.from_numpy((rng.normal(size=(40, 12)) * spread * scale).astype(np.float32)) for _ in range(6)]


@pytest.mark.parametrize("factor", [1e-3, 1e3])
def test_statistics_are_scale_equivariant(factor: float) -> None:
    loc, scale = robust_stats(_bags())
    loc_s, scale_s = robust_stats(_bags(factor))
    assert torch.allclose(loc_s, loc * factor, rtol=1e-4, atol=1e-6 * factor)
    assert torch.allclose(scale_s, scale * factor, rtol=1e-4)


def test_a_few_huge_dimensions_do_not_dominate() -> None:
    bags = _bags()
    s = InputStandardiser(12)
    s.fit(bags)
    out = s(torch.cat(bags))
    spread = out.std(dim=0)
    assert spread.min() > 0.5
    assert spread.max() < 2.0  # the 300x dimension is as wide as the others after standardising
    assert out.abs().max() <= CLIP


def test_sparse_dimension_falls_back_to_std_and_constant_dimension_is_finite() -> None:
    x = torch.zeros(100, 3)
    x[:5, 0] = 4.0  # post-ReLU-like: zero IQR
    x[:, 1] = torch.linspace(0, 1, 100)
    _, scale = robust_stats([x])
    assert float(scale[0]) == pytest.approx(float(x[:, 0].std(correction=0)), rel=1e-4)
    assert torch.isfinite(scale).all()
    assert float(scale[2]) > 0  # all-zero dimension: floored, not 0


@pytest.mark.parametrize("pooled_linear", [False, True])
@pytest.mark.parametrize("head", ["abmil", "meanpool", "transmil"])
def test_fitted_heads_give_the_same_logits_at_any_feature_scale(head: str, pooled_linear: bool) -> None:
    outputs = []
    for factor in (1.0, 1e-3, 1e3):
        torch.manual_seed(0)
        module = create_mil(head, 12, 3, hidden_dim=16, pooled_linear=pooled_linear).eval()
        if module.bag_linear is not None:  # zero at init: give the linear read weights that show a scale error
            torch.nn.init.normal_(module.bag_linear.linear.weight)
        bags = _bags(factor)
        fit_standardiser(module, bags)
        outputs.append(module(torch.stack(bags[:2])).logits)
    assert torch.allclose(outputs[0], outputs[1], atol=1e-4)
    assert torch.allclose(outputs[0], outputs[2], atol=1e-4)


def test_standardisation_travels_in_the_safetensors(tmp_path: Path) -> None:
    module = create_mil("abmil", 12, 3, hidden_dim=16, attn_dim=8, dropout=0.0, pooled_linear=True)
    fit_standardiser(module, _bags(50.0))
    torch.nn.init.normal_(module.bag_linear.linear.weight)
    head = dataclasses.replace(_card().head, config={**_card().head.config, "pooled_linear": True})
    card = dataclasses.replace(_card(), head=head, standardisation={"method": "test"})
    folder = save_model(tmp_path / "m", module, card)
    saved = set(load_file(str(folder / WEIGHTS_FILE)))
    assert {"standardise.loc", "standardise.scale", "bag_linear.standardise.loc", "bag_linear.standardise.scale"} <= (
        saved
    )
    loaded, _ = load_mil(folder)
    x = torch.stack(_bags(50.0, seed=1)[:2])
    assert torch.allclose(loaded(x).logits, module.eval()(x).logits, atol=1e-5)


def test_old_cards_without_standardisation_still_load_as_identity(tmp_path: Path) -> None:
    module = create_mil("abmil", 12, 3, hidden_dim=16, attn_dim=8, dropout=0.0)
    folder = save_model(tmp_path / "old", module, _card())
    path = folder / WEIGHTS_FILE
    state = {k: v for k, v in load_file(str(path)).items() if not k.startswith("standardise.")}
    save_file(state, str(path))  # the weights of a model saved before standardisation existed
    card = json.loads((folder / "model.json").read_text())
    del card["standardisation"], card["abstention"]
    (folder / "model.json").write_text(json.dumps(card))
    loaded, loaded_card = load_mil(folder)
    assert loaded_card.standardisation is None
    assert loaded_card.min_confidence == 0.0
    assert torch.equal(loaded.standardise.loc, torch.zeros(12))
    assert torch.equal(loaded.standardise.scale, torch.ones(12))
    card["standardisation"] = {"method": "claimed, but the weights lack it"}
    (folder / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="weights do not match"):
        load_mil(folder)


def test_card_rejects_an_abstention_threshold_outside_0_1(tmp_path: Path) -> None:
    module = create_mil("abmil", 12, 3, hidden_dim=16, attn_dim=8, dropout=0.0)
    folder = save_model(tmp_path / "m", module, dataclasses.replace(_card(), abstention={"min_confidence": 1.5}))
    with pytest.raises(ModelCardError, match="min_confidence"):
        load_mil(folder)


def test_abstention_threshold_is_the_lowest_step_whose_calls_reach_the_target() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array(
        [[0.9, 0.05, 0.05], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.52, 0.46, 0.02], [0.1, 0.1, 0.8], [0.3, 0.1, 0.6]]
    )
    chosen = abstention_threshold(y, probs, target=0.95)
    assert chosen["min_confidence"] == 0.55  # 0.50 would let the wrong 0.52 call through
    assert chosen["oof_accuracy"] == 1.0
    assert chosen["oof_coverage"] == pytest.approx(5 / 6)
    perfect = abstention_threshold(y, np.eye(3)[y] * 0.9 + 0.1 / 3)
    assert perfect["min_confidence"] == 0.5
    assert abstention_threshold(y, np.full((6, 3), 1 / 3))["min_confidence"] == 0.95
