"""``AnalysisSettings``: the analysis defaults, defined once.

The CLI and the web app build one of these from their options and pass it whole to
:class:`~moodlens.recognition.analyzer.Analyzer` (and everything that makes one), so a default
such as the least detector score lives here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from moodlens.spec import FACE_MARGIN

#: Groups (the whole event, a time bin, a source) with fewer people are never broken out in reports.
MIN_GROUP_SIZE: int = 5
#: Differential-privacy budget of each released expression mix of a group (``moodlens.events.privacy``):
#: one person's scores change the odds of any released numbers by at most a factor e**PRIVACY_EPSILON.
PRIVACY_EPSILON: float = 1.0


@dataclass(frozen=True)
class AnalysisSettings:
    """How faces are found and classified.

    ``model``: a shipped model's name (``default``, ``accurate``) or an ``.onnx`` path.
    ``detector``: ``auto`` (fastest that loads), ``yunet``, ``centerface``, or an object with
    ``detect(bgr) -> Faces``. ``min_confidence``: the detector score a face needs.
    ``max_side``: images with a longer side are scaled down for detection (boxes stay in original pixels).
    ``margin``: border added around each face box before cropping, as a fraction of its side.
    """

    model: str | Path = "default"
    detector: Any = "auto"
    min_confidence: float = 0.6
    max_side: int = 1280
    margin: float = FACE_MARGIN

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, got {self.min_confidence}")
        if self.max_side < 32:
            raise ValueError(f"max_side must be at least 32, got {self.max_side}")
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"margin must be between 0 and 1, got {self.margin}")

    def with_(self, **changes: Any) -> AnalysisSettings:
        """A copy with ``changes`` applied (unknown names are an error); ``None`` values are ignored."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown analysis setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


#: The defaults, for option declarations that must show them (CLI help, web forms).
DEFAULTS = AnalysisSettings()
