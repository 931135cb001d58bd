"""How fast a released model classifies, and on what: the CPU's name and the one timer of classifier
throughput, both recorded on the model card (:class:`~moodlens.card.Speed`) and in training checkpoints."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from moodlens.spec import IMAGE_SIZE


def cpu_model() -> str:
    """The CPU's marketing name (Linux ``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def faces_per_second(predict: Callable[[np.ndarray], Any], batch: int, seconds: float = 3.0) -> float:
    """Faces/second of ``predict`` on batches of random 48x48 uint8 faces: the best of three timed windows
    of ``seconds / 3`` each, after a warm-up (less noise on a busy machine)."""
    faces = np.random.default_rng(0).integers(0, 256, (batch, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for _ in range(3):
        predict(faces)
    best = 0.0
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds / 3:
            predict(faces)
            n += batch
        best = max(best, n / elapsed)
    return best
