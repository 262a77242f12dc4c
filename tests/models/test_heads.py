"""MIL heads: shapes, attention over valid tiles, the registry's errors."""

from __future__ import annotations

import pytest
import torch

from liposcope.errors import ConfigError
from liposcope.models.mil import MILOutput, create_mil, list_mil
from liposcope.models.mil.bag_linear import bag_moments
from liposcope.models.mil.standardise import fit_standardiser

HEADS = ("abmil", "meanpool", "transmil")
OPTIONS = ({}, {"pool_std": True}, {"pool_std": True, "pooled_linear": True})


def test_registry_lists_all_heads() -> None:
    assert list_mil() == sorted(HEADS)


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("name", HEADS)
def test_output_shapes_and_attention_sums_to_one(name: str, options: dict[str, bool]) -> None:
    torch.manual_seed(0)
    head = create_mil(name, in_dim=16, n_classes=4, **options).eval()
    out = head(torch.randn(3, 11, 16))
    assert isinstance(out, MILOutput)
    assert out.logits.shape == (3, 4)
    assert out.attention.shape == (3, 11)
    assert torch.allclose(out.attention.sum(dim=1), torch.ones(3), atol=1e-5)
    assert bool((out.attention >= 0).all())


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("name", HEADS)
def test_mask_zeroes_padding_and_matches_unpadded_bag(name: str, options: dict[str, bool]) -> None:
    torch.manual_seed(0)
    head = create_mil(name, in_dim=8, n_classes=3, **options).eval()
    if head.bag_linear is not None:  # zero at init; random weights make padding leaking into it visible
        torch.nn.init.normal_(head.bag_linear.linear.weight)
    bag = torch.randn(1, 5, 8)
    padded = torch.cat([bag, torch.randn(1, 4, 8) * 100], dim=1)  # b x 9 x d, last 4 are padding
    mask = torch.tensor([[True] * 5 + [False] * 4])
    with torch.no_grad():
        alone, masked = head(bag), head(padded, mask)
    assert torch.equal(masked.attention[0, 5:], torch.zeros(4))
    assert torch.allclose(masked.attention[0, :5], alone.attention[0], atol=1e-5)
    assert torch.allclose(masked.logits, alone.logits, atol=1e-4)


def test_meanpool_attention_is_uniform() -> None:
    head = create_mil("meanpool", in_dim=4, n_classes=2)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    out = head(torch.randn(2, 4, 4), mask)
    assert torch.allclose(out.attention, torch.tensor([[0.5, 0.5, 0, 0], [0.25] * 4]))


@pytest.mark.parametrize("pool_std", [False, True])
def test_std_pooling_tells_apart_bags_with_the_same_mean(pool_std: bool) -> None:
    """Tiles (1, 1) and (0, 2) average alike; only the pooled standard deviation separates them."""
    torch.manual_seed(0)
    head = create_mil("meanpool", in_dim=2, n_classes=2, hidden_dim=2, dropout=0.0, pool_std=pool_std).eval()
    with torch.no_grad():
        head.project[0].weight.copy_(torch.eye(2))  # non-negative inputs pass the ReLU unchanged
        head.project[0].bias.zero_()
        same = head(torch.tensor([[[1.0, 1.0], [1.0, 1.0]]])).logits
        spread = head(torch.tensor([[[0.0, 0.0], [2.0, 2.0]]])).logits
    assert torch.allclose(same, spread) != pool_std


def test_pooled_linear_rescales_a_small_between_slide_shift_to_unit_spread() -> None:
    """Slides whose mean tile differs by 0.05 tile spreads: after slide-level standardisation, by about one."""
    torch.manual_seed(0)
    bags = [torch.randn(2500, 4) + 0.05 * (i % 2) for i in range(20)]
    head = create_mil("meanpool", in_dim=4, n_classes=2, pooled_linear=True).eval()
    assert head.bag_linear is not None
    assert torch.count_nonzero(head.bag_linear.linear.weight) == 0  # the linear read starts at zero
    fit_standardiser(head, bags)
    read = head.bag_linear.standardise(bag_moments(head.standardise(torch.stack(bags)), torch.ones(20, 2500).bool()))
    shift = read[1::2, :4].mean(dim=0) - read[0::2, :4].mean(dim=0)  # between the two groups of slides, per dim
    assert bool((shift > 0.5).all())  # the tile-level standardiser alone leaves a shift of ~0.05


def test_default_pooling_keeps_the_original_classifier_width() -> None:
    """Cards written before ``pool_std`` existed rebuild to the same shapes."""
    assert create_mil("abmil", 8, 3, hidden_dim=16, branches=2).classifier.in_features == 32
    assert create_mil("abmil", 8, 3, hidden_dim=16, branches=2, pool_std=True).classifier.in_features == 64


@pytest.mark.parametrize("options", OPTIONS)
def test_gradients_reach_all_parameters(options: dict[str, bool]) -> None:
    head = create_mil("transmil", in_dim=8, n_classes=2, n_layers=1, n_heads=2, hidden_dim=16, **options)
    head(torch.randn(2, 6, 8)).logits.sum().backward()
    assert all(p.grad is not None for p in head.parameters())


def test_unknown_head_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown MIL head 'clam'.*abmil, meanpool, transmil"):
        create_mil("clam", 8, 2)


def test_unknown_option_lists_valid_options() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'hiden_dim'.*hidden_dim"):
        create_mil("abmil", 8, 2, hiden_dim=4)


@pytest.mark.parametrize(
    ("shape", "mask"),
    [
        ((5, 8), None),
        ((1, 5, 7), None),
        ((1, 0, 8), None),
        ((2, 5, 8), torch.ones(2, 4, dtype=torch.bool)),
        ((1, 3, 8), torch.zeros(1, 3, dtype=torch.bool)),
    ],
)
def test_bad_shapes_raise_value_error(shape: tuple[int, ...], mask: torch.Tensor | None) -> None:
    head = create_mil("abmil", 8, 2)
    with pytest.raises(ValueError, match=r"expected|valid tile"):
        head(torch.randn(*shape), mask)


def test_multi_branch_abmil_reports_one_branch_attention() -> None:
    from liposcope.models.mil import create_mil

    torch.manual_seed(0)
    head = create_mil("abmil", 16, 4, hidden_dim=8, attn_dim=4, branches=3).eval()
    x = torch.randn(2, 7, 16)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 5:] = False
    out = head(x, mask)
    assert out.logits.shape == (2, 4)
    torch.testing.assert_close(out.attention.sum(dim=1), torch.ones(2))
    assert torch.all(out.attention[1, 5:] == 0)
    h = head.project(x)
    scores = head.attn_score(head.attn_tanh(h) * head.attn_gate(h)).transpose(1, 2)[0]  # k x n
    branches = torch.softmax(scores, dim=-1)
    assert any(torch.allclose(out.attention[0], branch) for branch in branches)
