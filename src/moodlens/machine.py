"""Facts about the machine a number was measured on, and the one timer of classifier throughput
(for benchmarks and model cards)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from moodlens.spec import IMAGE_SIZE

PACKAGES = ("numpy", "onnxruntime", "opencv-python-headless", "torch")


def cpu_model() -> str:
    """The CPU's marketing name (Linux ``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts(packages: tuple[str, ...] = PACKAGES) -> dict[str, Any]:
    """CPU, core counts, load, OS, Python and the versions of ``packages`` (``None`` if not installed)."""
    facts: dict[str, Any] = {"cpu": cpu_model(), "logical_cores": os.cpu_count(),
                             "python": platform.python_version(), "os": platform.platform()}
    if hasattr(os, "sched_getaffinity"):
        facts["usable_cores"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):  # a busy machine slows everything down; say so next to the numbers
        facts["load_average_1min"] = round(os.getloadavg()[0], 2)
    for package in packages:
        try:
            facts[package] = version(package)
        except PackageNotFoundError:
            facts[package] = None
    return facts


def faces_per_second(predict: Callable[[np.ndarray], Any], batch: int, seconds: float = 3.0) -> float:
    """Faces/second of ``predict`` on batches of random 48x48 uint8 faces: the best of three timed windows
    of ``seconds / 3`` each, after a warm-up (less noise on a shared machine)."""
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


def resident_memory_bytes() -> int:
    """This process's resident memory now (Linux ``/proc/self/statm``; elsewhere the peak from
    ``resource``, or 0 where neither exists), for memory-growth checks without extra packages."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024
