"""``Faces``: the one result type that detector, classifier, tracker, annotators,
writers and the event store all speak.

Parallel numpy arrays, sliceable like supervision's ``Detections``; iterating
or indexing with an int gives a :class:`Face` view.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moodlens.spec import EMOTIONS, NUM_CLASSES


@dataclass(frozen=True)
class Face:
    """One detected face: box (x, y, w, h) in original-image pixels."""

    box: tuple[int, int, int, int]
    detector_score: float
    scores: dict[str, float]
    track_id: int | None = None

    @property
    def emotion(self) -> str:
        return max(self.scores, key=self.scores.__getitem__)

    @property
    def confidence(self) -> float:
        return self.scores[self.emotion]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"box": list(self.box), "detector_score": round(self.detector_score, 4),
                             "emotion": self.emotion, "confidence": round(self.confidence, 4),
                             "scores": {k: round(v, 4) for k, v in self.scores.items()}}
        if self.track_id is not None:
            d["track_id"] = self.track_id
        return d


@dataclass
class Faces:
    """All faces of one image or frame.

    boxes (N, 4) int32 x, y, w, h; detector_scores (N,) float32; probs (N, 7)
    float32 in :data:`moodlens.spec.EMOTIONS` order; track_ids (N,) int64, -1 when untracked.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32))
    detector_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, NUM_CLASSES), np.float32))
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.int32).reshape(-1, 4)
        self.detector_scores = np.asarray(self.detector_scores, np.float32).reshape(-1)
        n = len(self.boxes)
        if self.probs is None or len(self.probs) == 0:
            self.probs = np.full((n, NUM_CLASSES), np.nan, np.float32) if n else np.zeros((0, NUM_CLASSES), np.float32)
        self.probs = np.asarray(self.probs, np.float32).reshape(-1, NUM_CLASSES)
        if self.track_ids is None:
            self.track_ids = np.full(n, -1, np.int64)
        self.track_ids = np.asarray(self.track_ids, np.int64).reshape(-1)
        if not (len(self.detector_scores) == len(self.probs) == len(self.track_ids) == n):
            raise ValueError("Faces arrays must all have the same length")

    @classmethod
    def empty(cls) -> Faces:
        return cls()

    def __len__(self) -> int:
        return len(self.boxes)

    def __iter__(self) -> Iterator[Face]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            i = int(index)
            tid = int(self.track_ids[i])
            return Face(box=tuple(int(v) for v in self.boxes[i]), detector_score=float(self.detector_scores[i]),
                        scores={e: float(p) for e, p in zip(EMOTIONS, self.probs[i], strict=True)},
                        track_id=tid if tid >= 0 else None)
        return Faces(self.boxes[index], self.detector_scores[index], self.probs[index], self.track_ids[index])

    @property
    def class_ids(self) -> np.ndarray:
        return self.probs.argmax(1) if len(self) else np.zeros(0, np.int64)

    @property
    def emotions(self) -> list[str]:
        return [EMOTIONS[i] for i in self.class_ids]

    @property
    def confidences(self) -> np.ndarray:
        return self.probs.max(1) if len(self) else np.zeros(0, np.float32)

    def to_list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self]

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_list(), **kwargs)

    def to_records(self, **extra: Any) -> list[dict[str, Any]]:
        """Flat rows (one per face) for CSV writers and ``pandas.DataFrame``; ``extra`` columns repeat."""
        rows = []
        for i, f in enumerate(self):
            row: dict[str, Any] = dict(extra)
            row.update({"face": i, "x": f.box[0], "y": f.box[1], "w": f.box[2], "h": f.box[3],
                        "detector_score": round(f.detector_score, 4), "track_id": f.track_id,
                        "emotion": f.emotion, "confidence": round(f.confidence, 4)})
            row.update({e: round(p, 4) for e, p in f.scores.items()})
            rows.append(row)
        return rows

    def to_df(self, **extra: Any):  # noqa: ANN201 - pandas is optional at import time
        import pandas as pd

        return pd.DataFrame(self.to_records(**extra))
