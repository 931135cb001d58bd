"""The newcomer's first run: the shipped model on a real, public-domain photo.

The photo ships in the package (``moodlens/assets/astronaut.jpg``: astronaut Eileen Collins, NASA, public
domain, as distributed with scikit-image), so the demo needs no download, no camera and no extra package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from moodlens.events.model_facts import model_facts
from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.annotate import annotate
from moodlens.recognition.schema import ImageResult, ImageResults, ModelRef
from moodlens.samples import astronaut


def sample_photos() -> dict[str, np.ndarray]:
    """Public-domain sample images as BGR arrays: the astronaut (one face), and the lower half of the same
    photo (her suit and helmet, no face)."""
    photo = astronaut()
    return {"astronaut.png": photo, "spacesuit.png": np.ascontiguousarray(photo[photo.shape[0] // 2:])}


def run_demo(out: str | Path = "moodlens-demo", analyzer: Analyzer | None = None) -> dict[str, Any]:
    """Analyse the sample photos; write annotated copies and ``results.json`` into ``out``.

    ``results.json`` (and the returned dict) has the shape of ``moodlens analyze --json`` and the API:
    :class:`moodlens.recognition.schema.ImageResults`.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    analyzer = analyzer or Analyzer()
    results = ImageResults(model=ModelRef.from_facts(model_facts(analyzer)), images=[])
    for index, (name, bgr) in enumerate(sample_photos().items()):
        faces = analyzer.analyze(bgr)
        cv2.imwrite(str(out / f"annotated_{name}"), annotate(bgr, faces, scores=True))
        results.images.append(ImageResult.from_faces(index, name, bgr.shape, faces))
    (out / "results.json").write_text(results.to_json(indent=2))
    return results.model_dump(exclude_none=True)
