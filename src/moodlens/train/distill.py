"""Knowledge distillation: teachers whose softened probabilities the student also learns.

A teacher is a checkpoint (run on every augmented batch) or an exported ONNX model (a shipped name such as
``accurate``, or an ``.onnx`` path), which scores the unaugmented training faces once: affordable on a CPU,
at the price of targets that do not follow the augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from moodlens.spec import NUM_CLASSES
from moodlens.train.checkpoints import load_checkpoint
from moodlens.train.config import TrainConfig


def is_onnx_teacher(teacher: str) -> bool:
    """A teacher given as an ONNX model (a shipped name such as ``accurate``, or an ``.onnx`` path)."""
    from moodlens.recognition.classifier import shipped_models

    return teacher.endswith(".onnx") or teacher in shipped_models()


def onnx_teacher_probs(teachers: list[str], faces: np.ndarray, cache: Path) -> np.ndarray | None:
    """Averaged probabilities of ONNX teachers on the (unaugmented) training faces, computed once
    with the runtime classifier (its own test-time augmentation included) and cached in ``cache``."""
    if not teachers:
        return None
    if cache.exists():  # reused only for the same teachers and faces (e.g. when resuming)
        with np.load(cache) as saved:
            if list(saved["teachers"]) == teachers and saved["probs"].shape == (len(faces), NUM_CLASSES):
                return saved["probs"]
    from moodlens.recognition.classifier import EmotionClassifier

    probs = np.zeros((len(faces), NUM_CLASSES), np.float32)
    for teacher in teachers:
        clf = EmotionClassifier(teacher)
        chunks = range(0, len(faces), 1024)
        for i in tqdm(chunks, desc=f"teacher {Path(teacher).name} on the training faces", unit="chunk", leave=False):
            probs[i:i + 1024] += clf.predict(faces[i:i + 1024]) / len(teachers)
    np.savez(cache, probs=probs, teachers=np.array(teachers))
    return probs


def soften(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities softened as their logits divided by ``temperature`` would be: p^(1/T), renormalised."""
    return torch.softmax(torch.log(probs.clamp_min(1e-8)) / temperature, 1)


def distill_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target loss: T^2 * KL(teacher || student), both softened by T."""
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    return F.kl_div(log_p, teacher_probs, reduction="batchmean") * temperature**2


@dataclass
class Teachers:
    """The teachers of a run: checkpoint nets (on the device, frozen) and the ONNX teachers' fixed,
    already softened probabilities for every training face (``None`` without ONNX teachers)."""

    nets: list[torch.nn.Module]
    fixed_soft: torch.Tensor | None

    def fixed_for(self, idx: torch.Tensor) -> torch.Tensor | None:
        """The fixed soft targets of the faces at ``idx``."""
        return None if self.fixed_soft is None else self.fixed_soft[idx]


def load_teachers(cfg: TrainConfig, train_faces: np.ndarray, run_dir: Path, dev: torch.device) -> Teachers:
    """Load ``cfg.teachers``: checkpoints as frozen nets, ONNX models scored once on ``train_faces``
    (cached in ``run_dir/teacher_probs.npz`` for a resumed run)."""
    nets = [load_checkpoint(t)[0].to(dev, memory_format=torch.channels_last).requires_grad_(False)
            for t in cfg.teachers if not is_onnx_teacher(t)]
    fixed = onnx_teacher_probs([t for t in cfg.teachers if is_onnx_teacher(t)], train_faces,
                               run_dir / "teacher_probs.npz")
    soft = soften(torch.from_numpy(fixed), cfg.distill_temperature).to(dev) if fixed is not None else None
    return Teachers(nets, soft)
