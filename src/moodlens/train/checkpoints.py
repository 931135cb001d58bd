"""Checkpoints: build the net of a recipe, load a run's weights, and save a run so ``--resume`` is exact."""

from __future__ import annotations

from pathlib import Path

import torch

from moodlens.train.config import TrainConfig
from moodlens.train.model import EmotionNet


def build_model(cfg: TrainConfig) -> EmotionNet:
    return EmotionNet(widths=cfg.widths, convs_per_stage=cfg.convs_per_stage, dropout=cfg.dropout)


def checkpoint_weights(ck: dict) -> dict[str, torch.Tensor]:
    """The weights that ship from a checkpoint: ``final.pt``'s, or the EMA copy inside a ``last.pt``."""
    if "ema" in ck:  # AveragedModel state: ``module.`` prefix plus an update counter
        return {k.removeprefix("module."): v for k, v in ck["ema"].items() if k.startswith("module.")}
    return ck["model"]


def load_checkpoint(path: str | Path) -> tuple[EmotionNet, dict]:
    """Load ``final.pt`` (EMA weights) or ``last.pt`` (its EMA copy) as an eval-mode net, with the checkpoint."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    net = build_model(TrainConfig.from_dict(ck["config"]))
    net.load_state_dict(checkpoint_weights(ck))
    return net.eval(), ck


def save_atomically(state: dict, path: Path) -> None:
    """``torch.save`` through a temporary file, so a kill mid-save never corrupts ``path``."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
