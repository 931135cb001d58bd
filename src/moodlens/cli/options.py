"""Options shared by several commands, so they read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

from moodlens.settings import AnalysisSettings

ModelOpt = Annotated[str, typer.Option(help="Model: a shipped one by name (default, accurate) "
                                            "or a path to an .onnx file.")]
DetectorOpt = Annotated[str, typer.Option(help="Face detector: auto, yunet or centerface.")]
ConfOpt = Annotated[float, typer.Option(min=0.0, max=1.0, help="Least detector score for a face.")]
MaxSideOpt = Annotated[int, typer.Option(min=32, help="Long side images are scaled down to for detection.")]
RayOpt = Annotated[str | None, typer.Option(
    "--ray", metavar="ADDRESS", help="Run on a Ray cluster (needs the ray extra): local (start one on this machine), "
    "auto (the one `ray start` joined on this machine) or the head's HOST:PORT.")]


def analysis_settings(model: str, detector: str, min_confidence: float, max_side: int) -> AnalysisSettings:
    """The one settings object a command builds from its analysis options and passes on whole."""
    return AnalysisSettings(model=model, detector=detector, min_confidence=min_confidence, max_side=max_side)
