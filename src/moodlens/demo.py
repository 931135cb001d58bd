"""The newcomer's first run: the shipped model on a real, public-domain photo.

Uses scikit-image's ``astronaut()`` (Eileen Collins, NASA, public domain), so it
needs no download and no camera.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.annotate import annotate


def sample_photos() -> dict[str, np.ndarray]:
    """Public-domain sample images as BGR arrays: one with a face, one without."""
    from skimage import data

    return {"astronaut.png": cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
            "coffee.png": cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)}


def run_demo(out: str | Path = "moodlens-demo", analyzer: Analyzer | None = None) -> dict[str, Any]:
    """Analyse the sample photos; write annotated copies and ``results.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    analyzer = analyzer or Analyzer()
    results: dict[str, Any] = {"model": analyzer.classifier.card.get("name", "default"), "images": []}
    for name, bgr in sample_photos().items():
        faces = analyzer.analyze(bgr)
        cv2.imwrite(str(out / f"annotated_{name}"), annotate(bgr, faces, scores=True))
        results["images"].append({"filename": name, "width": bgr.shape[1], "height": bgr.shape[0],
                                  "faces": faces.to_list()})
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results
