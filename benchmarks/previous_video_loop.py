"""The previous release's video loop, kept verbatim as the baseline of ``bench_pipeline.py``.

This is ``moodlens/video.py``'s ``VideoAnalyzer`` (with the pieces it uses) as it shipped before the stream
engine replaced it: one thread, detector on every ``every``-th frame, optical flow between, EMA smoothing,
frames decoded by a plain ``cv2.VideoCapture.read()`` loop. Only this docstring, the unused imports and the
writers/CLI helpers after the loop were removed; nothing in the loop changed.
"""


from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.faces import Faces
from moodlens.recognition.preprocess import to_gray
from moodlens.recognition.track import FaceTracker
from moodlens.spec import EMOTIONS, NUM_CLASSES

#: Consecutive failed reads after which a camera counts as gone.
CAMERA_READ_FAILURES: int = 30


class VideoError(RuntimeError):
    """A video or camera that cannot be opened or read; the message names it and says why."""


@dataclass
class Frame:
    """One decoded frame: its index, its time in seconds from the start, BGR pixels."""

    index: int
    time_s: float
    image: np.ndarray


@dataclass
class FrameResult:
    """Faces of one frame (boxes in frame pixels, smoothed probabilities, track ids)."""

    index: int
    time_s: float
    faces: Faces
    detected: bool  # False: boxes were carried over from the last detection by optical flow

    def to_records(self) -> list[dict[str, Any]]:
        return self.faces.to_records(frame=self.index, time_s=round(self.time_s, 3))


# --------------------------------------------------------------------------- smoothing


class ProbSmoother:
    """Exponential moving average of class probabilities per track id (``alpha`` = weight of the new frame)."""

    def __init__(self, alpha: float = 0.4) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError("smoothing alpha must be in (0, 1]")
        self.alpha = alpha
        self._state: dict[int, np.ndarray] = {}

    def update(self, faces: Faces) -> Faces:
        probs = faces.probs.copy()
        for i, tid in enumerate(faces.track_ids):
            if tid < 0 or np.isnan(probs[i]).any():
                continue
            prev = self._state.get(int(tid))
            if prev is not None:
                probs[i] = self.alpha * probs[i] + (1.0 - self.alpha) * prev
            self._state[int(tid)] = probs[i]
        return Faces(faces.boxes, faces.detector_scores, probs, faces.track_ids)

    def drop(self, track_ids: list[int]) -> None:
        for tid in track_ids:
            self._state.pop(tid, None)


# --------------------------------------------------------------------------- summaries


@dataclass
class TrackSummary:
    """What one tracked face showed over its lifetime (no identity: just a track id)."""

    track_id: int
    first_s: float
    last_s: float
    frames: int = 0
    prob_sum: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES, np.float64))

    @property
    def mean_probs(self) -> np.ndarray:
        return self.prob_sum / max(self.frames, 1)

    @property
    def emotion(self) -> str:
        return EMOTIONS[int(self.mean_probs.argmax())]

    def to_dict(self) -> dict[str, Any]:
        return {"track_id": self.track_id, "first_s": round(self.first_s, 3), "last_s": round(self.last_s, 3),
                "duration_s": round(self.last_s - self.first_s, 3), "frames": self.frames,
                "emotion": self.emotion,
                "scores": {e: round(float(p), 4) for e, p in zip(EMOTIONS, self.mean_probs, strict=True)}}


@dataclass
class VideoSummary:
    """Per-track and overall summary of a video or camera session."""

    source: str
    frames: int = 0
    fps: float = 0.0
    ended_early: str | None = None
    tracks: dict[int, TrackSummary] = field(default_factory=dict)

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        for i, tid in enumerate(result.faces.track_ids):
            p = result.faces.probs[i]
            if tid < 0 or np.isnan(p).any():
                continue
            t = self.tracks.setdefault(int(tid), TrackSummary(int(tid), result.time_s, result.time_s))
            t.last_s, t.frames = result.time_s, t.frames + 1
            t.prob_sum += p

    def overall(self) -> dict[str, Any]:
        face_frames = sum(t.frames for t in self.tracks.values())
        mean = sum((t.prob_sum for t in self.tracks.values()), np.zeros(NUM_CLASSES)) / max(face_frames, 1)
        per_track = {e: 0 for e in EMOTIONS}
        for t in self.tracks.values():
            per_track[t.emotion] += 1
        return {"tracks": len(self.tracks), "face_frames": face_frames,
                "tracks_by_emotion": per_track,
                "mean_scores": {e: round(float(p), 4) for e, p in zip(EMOTIONS, mean, strict=True)}}

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "frames": self.frames, "fps": round(self.fps, 3),
                "ended_early": self.ended_early, "overall": self.overall(),
                "tracks": [t.to_dict() for t in sorted(self.tracks.values(), key=lambda t: t.track_id)]}


# --------------------------------------------------------------------------- frame sources


def _capture_fps(cap: cv2.VideoCapture) -> float:
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 0.0


def open_video(path: str | Path) -> tuple[cv2.VideoCapture, float, int]:
    """Open a video file: (capture, fps, expected frame count or 0); raises :class:`VideoError`."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"{path}: cannot be opened as a video (not a video, unsupported codec, or corrupt)")
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return cap, _capture_fps(cap), max(count, 0)


def video_frames(cap: cv2.VideoCapture, fps: float) -> Iterator[Frame]:
    """Frames of an opened file; time from the frame index (container timestamps are often missing)."""
    index = 0
    while True:
        ok, image = cap.read()
        if not ok or image is None:
            return
        t = index / fps if fps else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        yield Frame(index, t, image)
        index += 1


def camera_frames(cap: cv2.VideoCapture, name: str, max_failures: int = CAMERA_READ_FAILURES) -> Iterator[Frame]:
    """Live frames until the camera stops delivering; raises :class:`VideoError` when it disappears."""
    start = time.monotonic()
    index, failures = 0, 0
    while True:
        ok, image = cap.read()
        if not ok or image is None:
            failures += 1
            if failures >= max_failures:
                raise VideoError(f"{name}: stopped delivering frames after {index} frames (disconnected?)")
            time.sleep(0.01)
            continue
        failures = 0
        yield Frame(index, time.monotonic() - start, image)
        index += 1


# --------------------------------------------------------------------------- the loop


def _follow_boxes(prev_gray: np.ndarray, gray: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Move each box by the median optical flow of a 5x5 grid of points inside it."""
    if len(boxes) == 0:
        return boxes
    grids = []
    for x, y, w, h in boxes.astype(np.float32):
        gx, gy = np.meshgrid(np.linspace(x + 0.2 * w, x + 0.8 * w, 5), np.linspace(y + 0.2 * h, y + 0.8 * h, 5))
        grids.append(np.stack([gx.ravel(), gy.ravel()], 1))
    pts = np.concatenate(grids).astype(np.float32).reshape(-1, 1, 2)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, pts, None, winSize=(15, 15), maxLevel=2)
    flow = (moved - pts).reshape(len(boxes), 25, 2)
    ok = status.reshape(len(boxes), 25).astype(bool)
    out = boxes.copy()
    for i in range(len(boxes)):
        if ok[i].sum() >= 5:
            dx, dy = np.median(flow[i][ok[i]], axis=0)
            out[i, 0] += int(round(float(dx)))
            out[i, 1] += int(round(float(dy)))
    H, W = gray.shape[:2]
    out[:, 0] = np.clip(out[:, 0], 0, W - 2)
    out[:, 1] = np.clip(out[:, 1], 0, H - 2)
    out[:, 2] = np.minimum(out[:, 2], W - out[:, 0])
    out[:, 3] = np.minimum(out[:, 3], H - out[:, 1])
    return out


class VideoAnalyzer:
    """Frame-by-frame analysis with tracking: feed frames to :meth:`process`, read :attr:`summary`.

    ``every``: run the detector on every N-th frame, follow boxes by optical flow in between.
    ``smoothing``: EMA weight of the newest frame in each track's probabilities (1 = no smoothing).
    ``on_track_end`` is called with each ended :class:`TrackSummary` (e.g. to store aggregates).
    """

    def __init__(self, analyzer: Analyzer, every: int = 1, smoothing: float = 0.4, iou_threshold: float = 0.3,
                 max_age: int = 15, source: str = "", on_track_end: Callable[[TrackSummary], None] | None = None,
                 ) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        self.analyzer = analyzer
        self.every = every
        # Every frame updates the tracker (detected or carried boxes), so max_age counts frames.
        self.tracker = FaceTracker(iou_threshold=iou_threshold, max_age=max(max_age, every))
        self.smoother = ProbSmoother(smoothing)
        self.summary = VideoSummary(source)
        self.on_track_end = on_track_end
        self._prev_gray: np.ndarray | None = None
        self._last: Faces = Faces()
        self._count = 0

    def process(self, frame: Frame) -> FrameResult:
        image = frame.image
        gray = to_gray(image)  # once per frame: optical flow and face crops share it
        detect_now = self._count % self.every == 0 or self._prev_gray is None
        self._count += 1
        if detect_now:
            found = self.analyzer.detect(image)
        else:
            # Carried boxes go through the tracker too, so the next detection is matched to where
            # each face is now, not to where it was detected N frames ago.
            found = Faces(_follow_boxes(self._prev_gray, gray, self._last.boxes), self._last.detector_scores)
        faces = self.tracker.update(found)
        self._end(self.tracker.ended)
        faces = self.smoother.update(self.analyzer.classify(image, faces, gray))
        self._prev_gray, self._last = gray, faces
        result = FrameResult(frame.index, frame.time_s, faces, detect_now)
        self.summary.add(result)
        return result

    def _end(self, track_ids: list[int]) -> None:
        self.smoother.drop(track_ids)
        if self.on_track_end is not None:
            for tid in track_ids:
                if tid in self.summary.tracks:
                    self.on_track_end(self.summary.tracks[tid])

    def finish(self) -> VideoSummary:
        """End all open tracks (calls ``on_track_end``) and return the summary."""
        self._end(self.tracker.finish())
        return self.summary
