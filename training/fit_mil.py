"""Fit one MIL head on feature bags: input standardisation, AdamW with warm-up and schedule, clipping, early stopping.

The head's input standardisation is learnt from the tiles of the bags it trains on, so a fold's
statistics never see its validation or test slides. Early stopping watches the validation loss,
but only from ``min_epochs`` on and once the model has left chance on its training bags (see
:mod:`training.schedule`); earlier epochs are never picked, so a noisy small validation set
cannot choose a model that has barely trained.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from liposcope.models.mil import create_mil
from liposcope.models.mil.standardise import fit_standardiser
from liposcope.training.data import SlideBag
from liposcope.training.schedule import clipped_step, left_chance, warmup_schedule

if TYPE_CHECKING:
    from liposcope.training.crossval import TrainConfig


@dataclass(frozen=True)
class FitResult:
    """A trained head (weights of its best epoch), its per-epoch losses and when it left chance (0 = never)."""

    module: nn.Module
    best_epoch: int
    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    left_chance_epoch: int = 0


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` intra-op CPU threads inside the block, then restore the previous number.

    Example:
        >>> with torch_threads(1):
        ...     pass
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_head(
    train: Sequence[SlideBag],
    val: Sequence[SlideBag],
    cfg: TrainConfig,
    in_dim: int,
    seed: int,
    epochs: int | None = None,
) -> FitResult:
    """Train a fresh head; early-stop on ``val`` loss, or run ``epochs`` when ``val`` is empty.

    The learning-rate schedule always spans ``cfg.max_epochs``, so a final model trained for a
    fold's best epoch count sees the same learning rates that fold did.

    Example:
        >>> fit = fit_head(train_bags, val_bags, cfg, in_dim=384, seed=0)  # doctest: +SKIP
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    head = cfg.head_spec
    module = create_mil(head.name, in_dim, len(cfg.classes), **head.config)
    fit_standardiser(module, [b.features for b in train])
    optimiser = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = math.ceil(len(train) / cfg.batch_size)
    scheduler = warmup_schedule(optimiser, cfg.warmup_epochs * steps, cfg.max_epochs * steps, cfg.schedule)
    loss_fn = nn.CrossEntropyLoss(weight=_class_weights(train, len(cfg.classes), cfg.class_balance))
    best_state, best_epoch, best_loss, left, train_loss, val_loss = None, 0, float("inf"), 0, [], []
    with torch_threads(cfg.threads):
        for epoch in range(1, (epochs or cfg.max_epochs) + 1):
            loss, y, pred = _train_epoch(module, optimiser, scheduler, loss_fn, train, cfg, generator)
            train_loss.append(loss)
            if not left and left_chance(y, pred, len(cfg.classes), cfg.chance_margin):
                left = epoch
            if not val or not left or epoch < cfg.min_epochs:  # the early epochs are never the pick
                best_epoch = epoch
                continue
            logits = torch.from_numpy(predict_logits(module, val)).float()
            val_loss.append(float(loss_fn(logits, torch.tensor([b.label for b in val]))))
            if val_loss[-1] < best_loss:
                best_state, best_epoch, best_loss = copy.deepcopy(module.state_dict()), epoch, val_loss[-1]
            elif epoch >= cfg.min_epochs and epoch - best_epoch >= cfg.patience:
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    return FitResult(module.eval(), best_epoch, tuple(train_loss), tuple(val_loss), left)


def _class_weights(bags: Sequence[SlideBag], n_classes: int, balance: str) -> torch.Tensor:
    """Inverse-frequency class weights (n / (c * count)), zero for absent classes; ones for 'none'."""
    counts = np.bincount([b.label for b in bags], minlength=n_classes).astype(np.float64)
    if balance == "none":
        return torch.ones(n_classes)
    weights = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def _train_epoch(
    module: nn.Module,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: nn.Module,
    bags: Sequence[SlideBag],
    cfg: TrainConfig,
    generator: torch.Generator,
) -> tuple[float, np.ndarray, np.ndarray]:
    """One pass over shuffled minibatches of (subsampled) bags: mean loss, true and predicted labels."""
    module.train()
    total, truth, preds = 0.0, [], []
    for x, mask, y in _batches(bags, cfg.batch_size, cfg.max_tiles, generator):
        logits = module(x, mask).logits
        loss = loss_fn(logits, y)
        clipped_step(module, optimiser, loss, cfg.grad_clip)
        scheduler.step()
        total += loss.item() * len(y)
        truth.append(y.numpy())
        preds.append(logits.argmax(dim=1).numpy())
    return total / len(bags), np.concatenate(truth), np.concatenate(preds)


def _batches(
    bags: Sequence[SlideBag], batch_size: int, max_tiles: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Shuffled minibatches of subsampled bags: x (b x n x d), mask (b x n), labels (b)."""
    order = torch.randperm(len(bags), generator=generator).tolist()
    for start in range(0, len(order), batch_size):
        chosen = [bags[i] for i in order[start : start + batch_size]]
        x, mask = _pad([_subsample(b.features, max_tiles, generator) for b in chosen])
        yield x, mask, torch.tensor([b.label for b in chosen])


def _pad(feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad bags (n_i x d) to one batch x (b x n x d) with its mask (b x n, True = real tile)."""
    n_max, dim = max(len(f) for f in feats), feats[0].shape[1]
    x = torch.zeros(len(feats), n_max, dim)  # b x n x d
    mask = torch.zeros(len(feats), n_max, dtype=torch.bool)  # b x n
    for i, f in enumerate(feats):
        x[i, : len(f)], mask[i, : len(f)] = f, True
    return x, mask


def _subsample(features: torch.Tensor, max_tiles: int, generator: torch.Generator) -> torch.Tensor:
    """At most ``max_tiles`` random tiles of a bag (all when ``max_tiles`` is 0)."""
    if max_tiles == 0 or len(features) <= max_tiles:
        return features
    return features[torch.randperm(len(features), generator=generator)[:max_tiles]]


def predict_logits(module: nn.Module, bags: Sequence[SlideBag], batch_size: int = 8) -> np.ndarray:
    """Slide logits (n x c) of whole bags in eval mode (padded batches; the mask makes padding exact).

    Example:
        >>> probs = softmax(predict_logits(head, bags), card.temperature)  # doctest: +SKIP
    """
    module.eval()
    rows = []
    with torch.no_grad():
        for start in range(0, len(bags), batch_size):
            x, mask = _pad([b.features for b in bags[start : start + batch_size]])
            rows.append(module(x, mask).logits.double().numpy())  # b x c
    return np.concatenate(rows)
