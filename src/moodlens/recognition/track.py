"""``FaceTracker``: stable track ids for faces across video frames, from box geometry only.

Faces are never identified: a track is "the box that moved least since the last frame",
matched by IoU with a centroid-distance fallback for fast motion, solved as an assignment
problem. A track that goes unmatched for ``max_age`` updates ends, and its id is never reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from moodlens.recognition.faces import Faces

_NO_MATCH = 1e6


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of x, y, w, h boxes: (len(a), len(b))."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax1, ay1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1[:, None], bx1[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


@dataclass
class Track:
    """One tracked face: its latest box and bookkeeping (no appearance, no identity)."""

    track_id: int
    box: np.ndarray
    hits: int = 1
    missed: int = 0
    #: Centre motion per update (x, y), used only with ``predict_motion``.
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))


class FaceTracker:
    """Assign stable ``track_ids`` to successive :class:`Faces`.

    ``iou_threshold``: least IoU with a track's last box to continue it. ``max_distance``: fallback
    when IoU is too low, the largest centre distance as a fraction of the box side (fast motion, or
    several skipped frames). ``max_age``: updates a track may go unmatched before it ends.
    After each :meth:`update`, :attr:`ended` lists the ids of tracks that ended in it; :meth:`finish`
    ends all remaining tracks (end of video) and returns their ids. ``predict_motion``: match against
    where each track would be if it kept its recent velocity (people walking past a camera, short
    occlusions, analysing only every Nth frame).
    """

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 15, max_distance: float = 0.6,
                 predict_motion: bool = False) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError("iou_threshold must be in (0, 1]")
        if max_age < 0:
            raise ValueError("max_age must be >= 0")
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self.max_distance = max_distance
        self.predict_motion = predict_motion
        self.tracks: list[Track] = []
        self.ended: list[int] = []
        self._next_id = 0

    @property
    def active_ids(self) -> list[int]:
        return [t.track_id for t in self.tracks]

    def _cost(self, boxes: np.ndarray) -> np.ndarray:
        old = np.stack([t.box for t in self.tracks]).astype(np.float64)
        if self.predict_motion:
            old[:, :2] += np.stack([t.velocity * (t.missed + 1) for t in self.tracks])
        new = boxes.astype(np.float64)
        iou = iou_matrix(old, new)
        centre_old = old[:, :2] + old[:, 2:] / 2
        centre_new = new[:, :2] + new[:, 2:] / 2
        dist = np.linalg.norm(centre_old[:, None] - centre_new[None], axis=2)
        side = (np.sqrt(old[:, 2] * old[:, 3])[:, None] + np.sqrt(new[:, 2] * new[:, 3])[None]) / 2
        rel = dist / np.maximum(side, 1.0)
        # Size must also agree for the distance fallback, so a nearby face of another size is not taken.
        size_ratio = np.sqrt((old[:, 2] * old[:, 3])[:, None] / np.maximum((new[:, 2] * new[:, 3])[None], 1.0))
        similar = (size_ratio > 0.5) & (size_ratio < 2.0)
        cost = np.full(iou.shape, _NO_MATCH)
        by_iou = iou >= self.iou_threshold
        cost[by_iou] = 1.0 - iou[by_iou]
        by_dist = ~by_iou & similar & (rel <= self.max_distance)
        cost[by_dist] = 1.0 + rel[by_dist]  # always worse than any IoU match
        return cost

    def update(self, faces: Faces) -> Faces:
        """Match ``faces`` to current tracks; returns the same faces with ``track_ids`` set."""
        self.ended = []
        n = len(faces)
        ids = np.full(n, -1, np.int64)
        matched_tracks: set[int] = set()
        if n and self.tracks:
            cost = self._cost(faces.boxes)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] >= _NO_MATCH:
                    continue
                track = self.tracks[r]
                if self.predict_motion:
                    step = (faces.boxes[c, :2] + faces.boxes[c, 2:] / 2 - track.box[:2] - track.box[2:] / 2)
                    step = step / (track.missed + 1)
                    track.velocity = step if track.hits == 1 else 0.5 * track.velocity + 0.5 * step
                track.box, track.hits, track.missed = faces.boxes[c].copy(), track.hits + 1, 0
                ids[c] = track.track_id
                matched_tracks.add(r)
        survivors = []
        for i, track in enumerate(self.tracks):
            if i not in matched_tracks:
                track.missed += 1
                if track.missed > self.max_age:
                    self.ended.append(track.track_id)
                    continue
            survivors.append(track)
        self.tracks = survivors
        for c in np.flatnonzero(ids < 0):
            self.tracks.append(Track(self._next_id, faces.boxes[c].copy()))
            ids[c] = self._next_id
            self._next_id += 1
        return Faces(faces.boxes, faces.detector_scores, faces.probs, ids)

    def finish(self) -> list[int]:
        """End every remaining track (end of stream); returns their ids."""
        self.ended = [t.track_id for t in self.tracks]
        self.tracks = []
        return self.ended

    def reset(self) -> None:
        """Forget all tracks; new ids keep counting up so they are never reused."""
        self.tracks, self.ended = [], []
