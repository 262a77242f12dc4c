"""Settings of the training commands that the command line reads without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from liposcope.errors import ConfigError, where

SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TileTrainConfig:
    """Settings of ``liposcope train-tiles``."""

    backbone: str
    weights: str | None = "random"
    classes: tuple[str, ...] = ("WDLPS", "DDLPS", "MLPS", "PLPS")
    epochs: int = 8
    patience: int = 3
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    schedule: str = "cosine"
    grad_clip: float = 1.0
    chance_margin: float = 0.5
    baseline: bool = True
    val_fraction: float = 0.25
    max_tiles_per_slide: int = 150
    stain_jitter: float = 0.3
    seed: int = 0
    workers: int = 2
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                where("train-tiles", f"unknown schedule {self.schedule!r}", f"use {', '.join(SCHEDULES)}")
            )
