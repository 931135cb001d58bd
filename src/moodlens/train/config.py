"""The training recipe's settings as plain dataclasses (no torch import).

Kept apart from the loop so the CLI and docs can read the defaults without
PyTorch installed; ``moodlens.train.loop`` and ``moodlens.train.augment``
re-export these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Ways to counter class imbalance; applied to the training split only.
BALANCING = ("none", "weighted-loss", "sqrt-weighted-loss", "oversample")


@dataclass(frozen=True)
class AugmentConfig:
    max_shift_px: float = 3.0
    max_rotation_deg: float = 12.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    flip: bool = True
    brightness: float = 0.25
    contrast: float = 0.25
    erase_prob: float = 0.5
    erase_max_frac: float = 0.35


@dataclass(frozen=True)
class TrainConfig:
    """The default recipe (see MODEL_CARD.md); frozen, so a card or checkpoint can hold it safely."""

    epochs: int = 45
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_frac: float = 0.1
    ema_decay: float = 0.998
    balance: str = "sqrt-weighted-loss"
    widths: tuple[int, ...] = (32, 64, 192, 384)
    convs_per_stage: int = 2
    dropout: float = 0.3
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train_split: str = "Training"
    val_split: str = "PublicTest"
    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    #: Start from the weights of an earlier run's ``final.pt``/``last.pt`` (a second, shorter cycle);
    #: the schedule, optimiser and EMA start fresh.
    init_from: str | None = None
    #: Knowledge distillation: checkpoints of teacher nets (``final.pt``/``last.pt``) whose averaged,
    #: temperature-softened probabilities on the same augmented batch the student also learns from.
    #: An ONNX teacher (a shipped model's name such as ``accurate``, or an ``.onnx`` path) is cheaper on a
    #: CPU: it scores the unaugmented training faces once, and those fixed targets count as one teacher.
    teachers: tuple[str, ...] = ()
    #: Share of the loss given to the teachers (the rest is cross-entropy with the labels).
    distill_weight: float = 0.7
    distill_temperature: float = 2.0

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["augment"] = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["augment"].items()})
        d["widths"] = tuple(d["widths"])
        d["teachers"] = tuple(d.get("teachers", ()))
        return cls(**d)
