"""Analysis stages of one shape: ``update(frame, faces) -> faces``, called in turn on every analysed frame.

:class:`DetectOrFollow` (detector on a schedule, optical flow in between) -> :class:`Track` (one
:class:`~moodlens.recognition.track.FaceTracker` configuration) -> :class:`Classify` -> :class:`Smooth`
(per-track moving average) -> :class:`Summarise` (per-track and overall summary over time).
A stage may record what it did on the frame (``frame.detected``, ``frame.ended``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from moodlens.recognition.faces import Faces
from moodlens.recognition.track import FaceTracker
from moodlens.settings import StreamSettings
from moodlens.stream.frames import Frame
from moodlens.stream.summary import StreamSummary

if TYPE_CHECKING:  # the Analyzer loads ONNX models: imported only where one is made
    from moodlens.recognition.analyzer import Analyzer

#: Points per side of the grid whose median optical flow moves a box between detections.
_GRID = 5
#: Lucas-Kanade settings: a 21-px window on 4 pyramid levels follows faces moving ~20 px between analysed frames.
_LK = {"winSize": (21, 21), "maxLevel": 3}


class Stage(Protocol):
    def update(self, frame: Frame, faces: Faces) -> Faces: ...


def _follow_one(prev_gray: np.ndarray, gray: np.ndarray, box: np.ndarray) -> tuple[float, float] | None:
    """Median flow (dx, dy) of a grid of points inside ``box``, tracked forward and back within a window around
    it (cheaper than whole-frame pyramids); ``None`` when fewer than half the points make the round trip."""
    x, y, w, h = (float(v) for v in box)
    margin = max(w, h) + 16
    H, W = gray.shape[:2]
    x0, y0 = int(max(0, x - margin)), int(max(0, y - margin))
    x1, y1 = int(min(W, x + w + margin)), int(min(H, y + h + margin))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    t = np.linspace(0.2, 0.8, _GRID, dtype=np.float32)
    gx, gy = np.meshgrid(x - x0 + w * t, y - y0 + h * t)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1).reshape(-1, 1, 2).astype(np.float32)
    a, b = prev_gray[y0:y1, x0:x1], gray[y0:y1, x0:x1]
    moved, forward, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, None, **_LK)
    back, backward, _ = cv2.calcOpticalFlowPyrLK(b, a, moved, None, **_LK)
    ok = (forward.ravel() == 1) & (backward.ravel() == 1) & (np.linalg.norm((back - pts).reshape(-1, 2), axis=1) < 1.0)
    if ok.sum() < (_GRID * _GRID) // 2:
        return None
    dx, dy = np.median((moved - pts).reshape(-1, 2)[ok], axis=0)
    return float(dx), float(dy)


def follow_boxes(prev_gray: np.ndarray, gray: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move each box by the median Lucas-Kanade flow of a grid of points inside it; returns (moved boxes,
    which boxes were followed). A box is lost when fewer than half its points track both ways (forward,
    then back to within a pixel of where they started): its face left or was covered."""
    out = boxes.copy()
    kept = np.zeros(len(boxes), bool)
    for i, box in enumerate(boxes):
        step = _follow_one(prev_gray, gray, box)
        if step is not None:
            kept[i] = True
            out[i, 0] += int(round(step[0]))
            out[i, 1] += int(round(step[1]))
    H, W = gray.shape[:2]
    out[:, 0] = np.clip(out[:, 0], 0, W - 2)
    out[:, 1] = np.clip(out[:, 1], 0, H - 2)
    out[:, 2] = np.minimum(out[:, 2], W - out[:, 0])
    out[:, 3] = np.minimum(out[:, 3], H - out[:, 1])
    return out, kept


class DetectOrFollow:
    """The detection schedule: the detector runs on an analysed frame when ``detect_every`` analysed frames
    have passed since it last ran (or it never ran); on the others the previous frame's boxes follow the image.

    Frames are counted by number (``index // every``), so a resumed file detects on the same frames as an
    uninterrupted run, and a live source that dropped frames detects again as soon as it is due.
    """

    def __init__(self, analyzer: Analyzer | None, detect_every: int, every: int) -> None:
        self.analyzer = analyzer
        self.detect_every, self.every = detect_every, every
        self._last_detection: int | None = None
        self._prev: Frame | None = None
        self._last = Faces()

    def update(self, frame: Frame, faces: Faces) -> Faces:
        step = frame.index // self.every
        gray = frame.gray  # made here, on this stage's thread: the flow and the face crops both use it
        if self._last_detection is None or step - self._last_detection >= self.detect_every:
            found = self.analyzer.detect(frame.image)
            self._last_detection = step
            frame.detected = True
        elif len(self._last) and self._prev is not None:
            moved, kept = follow_boxes(self._prev.gray, gray, self._last.boxes)
            found = Faces(moved[kept], self._last.detector_scores[kept])
        else:
            found = Faces()
        self._prev, self._last = frame, found
        return found


def max_age(settings: StreamSettings, fps: float) -> int:
    """Tracker updates a face may go unmatched: its track gap in seconds at this frame rate and ``every``."""
    return max(0, round(settings.track_gap_s * fps / settings.every) - 1)


def make_tracker(settings: StreamSettings, fps: float) -> FaceTracker:
    """The one tracker configuration: gap from seconds, constant-velocity prediction of each face."""
    return FaceTracker(max_age=max_age(settings, fps), predict_motion=True)


def tracking_note(settings: StreamSettings, fps: float) -> str:
    """How faces were linked into tracks, in words (printed on event reports)."""
    updates = max_age(settings, fps) + 1
    return (f"box-overlap tracker with motion prediction; a track ends after its face is unseen for {updates} "
            f"analysed frames ({updates * settings.every / fps:.1f} s); the detector runs on 1 analysed frame in "
            f"{settings.detect_every}, optical flow moves the boxes in between")


class Track:
    """Stable track ids from box geometry; ``frame.ended`` lists the tracks that ended with this frame."""

    def __init__(self, tracker: FaceTracker) -> None:
        self.tracker = tracker

    def update(self, frame: Frame, faces: Faces) -> Faces:
        out = self.tracker.update(faces)
        frame.ended = list(self.tracker.ended)
        return out


class Classify:
    """The 7 expression probabilities of every box, in one batch per frame (see :func:`classify_frames`
    for one batch over several frames or sources)."""

    def __init__(self, analyzer: Analyzer | None) -> None:
        self.analyzer = analyzer

    def update(self, frame: Frame, faces: Faces) -> Faces:
        return self.analyzer.classify(frame.image, faces, frame.gray)


def classify_frames(analyzer: Analyzer, items: list[tuple[Frame, Faces]],
                    mirror: list[bool] | None = None) -> list[Faces]:
    """Classify the faces of several frames (of one or several sources) in one batch; ``mirror``: per frame,
    the view the alternating flip shows (every other analysed frame of a source, so each track sees both)."""
    return analyzer.classify_frames([(frame.image, faces, frame.gray) for frame, faces in items], mirror)


class Smooth:
    """Exponential moving average of each track's probabilities (``alpha`` = weight of the newest frame)."""

    def __init__(self, alpha: float) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError("smoothing alpha must be in (0, 1]")
        self.alpha = alpha
        self._state: dict[int, np.ndarray] = {}

    def update(self, frame: Frame, faces: Faces) -> Faces:
        probs = faces.probs.copy()
        for i, tid in enumerate(faces.track_ids.tolist()):
            if tid < 0 or np.isnan(probs[i]).any():
                continue
            prev = self._state.get(tid)
            if prev is not None:
                probs[i] = self.alpha * probs[i] + (1.0 - self.alpha) * prev
            self._state[tid] = probs[i]
        self.drop(frame.ended)
        return Faces(faces.boxes, faces.detector_scores, probs, faces.track_ids)

    def drop(self, track_ids: list[int]) -> None:
        for tid in track_ids:
            self._state.pop(tid, None)


class Summarise:
    """Adds every frame to the stream's :class:`~moodlens.stream.summary.StreamSummary`; faces pass unchanged."""

    def __init__(self, summary: StreamSummary) -> None:
        self.summary = summary

    def update(self, frame: Frame, faces: Faces) -> Faces:
        self.summary.add(frame, faces)
        return faces
