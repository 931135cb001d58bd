"""The machine a benchmark's numbers were measured on, printed and saved next to them: CPU, cores, load,
OS, Python and the versions of the packages that set the speed.

Imported by the benchmark scripts beside it (``from machine import machine_facts``; a script's own folder
is on its import path)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from moodlens.train.speed import cpu_model

PACKAGES = ("numpy", "onnxruntime", "opencv-python-headless", "torch")


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
