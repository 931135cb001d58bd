"""Video files and live cameras: detect (every N frames), track, smooth per track, summarise.

Faces are tracked by box geometry only (:class:`moodlens.recognition.track.FaceTracker`); between detection
frames the boxes follow the image by sparse optical flow, and every frame is classified (cheap).
Per-track probabilities are smoothed with an exponential moving average.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
from tqdm import tqdm

from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.faces import Faces
from moodlens.recognition.preprocess import to_gray
from moodlens.recognition.track import FaceTracker
from moodlens.spec import EMOTIONS, NUM_CLASSES
from moodlens.textsafe import csv_rows

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


#: Columns of :meth:`moodlens.recognition.faces.Faces.to_records` rows.
FACE_FIELDS = ["face", "track_id", "x", "y", "w", "h", "detector_score", "emotion", "confidence", *EMOTIONS]
#: Columns of video and camera CSV files: a timestamp on every row.
CSV_FIELDS = ["frame", "time_s", *FACE_FIELDS]


class CsvWriter:
    """Face rows written as they come (a camera may run for hours); ``fields`` fixes the columns."""

    def __init__(self, path: str | Path, fields: list[str] = CSV_FIELDS) -> None:  # noqa: B006 - never mutated
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = self.path.open("w", newline="")
        self._writer = csv.DictWriter(self._fh, fieldnames=fields, extrasaction="ignore")
        self._writer.writeheader()

    def write(self, result: FrameResult) -> None:
        self._writer.writerows(csv_rows(result.to_records()))

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        self._writer.writerows(csv_rows(rows))

    def close(self) -> None:
        self._fh.close()


def _video_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps or 25.0, size)
    if not writer.isOpened():
        raise VideoError(f"{path}: cannot write video (unsupported extension or codec; use .mp4)")
    return writer


def analyze_video(path: str | Path, analyzer: Analyzer | None = None, *, out: str | Path | None = None,
                  csv_path: str | Path | None = None, every: int = 1, smoothing: float = 0.4, scores: bool = False,
                  blur: bool = False, progress: bool = True,
                  on_frame: Callable[[FrameResult], None] | None = None) -> VideoSummary:
    """Analyse a video file; optionally write an annotated copy (``out``) and per-face rows (``csv_path``).

    A video that stops before its announced frame count is analysed up to there and the summary says so
    (``ended_early``); one that cannot be opened raises :class:`VideoError`.
    """
    from moodlens.recognition.annotate import annotate

    analyzer = analyzer or Analyzer()
    cap, fps, expected = open_video(path)
    runner = VideoAnalyzer(analyzer, every=every, smoothing=smoothing, source=str(path))
    runner.summary.fps = fps
    writer: cv2.VideoWriter | None = None
    rows = CsvWriter(csv_path) if csv_path else None
    try:
        bar = tqdm(video_frames(cap, fps), total=expected or None, desc=Path(path).name, unit="frame",
                   disable=not progress)
        for frame in bar:
            result = runner.process(frame)
            if rows:
                rows.write(result)
            if out is not None:
                if writer is None:
                    writer = _video_writer(Path(out), fps, (frame.image.shape[1], frame.image.shape[0]))
                writer.write(annotate(frame.image, result.faces, scores=scores, blur=blur, copy=False))
            if on_frame:
                on_frame(result)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
        if rows:
            rows.close()
    summary = runner.finish()
    if summary.frames == 0:
        raise VideoError(f"{path}: no frame could be decoded")
    # Containers estimate their frame count; only a clear shortfall means the file stopped early.
    if expected and summary.frames < expected - max(2, expected // 50):
        summary.ended_early = f"decoded {summary.frames} of {expected} frames announced by the container"
    return summary


def open_camera(index: int = 0) -> cv2.VideoCapture:
    """Open camera ``index``; raises :class:`VideoError` with a clear reason when there is none."""
    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise VideoError(f"camera {index}: cannot be opened (no camera attached, no permission, or in use)")
    return cap


def display_available() -> str | None:
    """None when OpenCV can open a window here, else the reason it cannot."""
    import os
    import sys

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY/WAYLAND_DISPLAY not set)"
    try:
        cv2.namedWindow("moodlens-probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("moodlens-probe")
    except cv2.error:
        return "this OpenCV build has no GUI support (opencv-python-headless); install opencv-python for a window"
    return None


def run_camera(index: int | str = 0, analyzer: Analyzer | None = None, *, headless: bool = False,
               csv_path: str | Path | None = None, every: int = 1, smoothing: float = 0.4, scores: bool = False,
               max_frames: int | None = None, on_frame: Callable[[FrameResult], None] | None = None,
               on_track_end: Callable[[TrackSummary], None] | None = None) -> VideoSummary:
    """Live analysis of camera ``index`` (or a stream URL): a window with boxes, labels and FPS,
    or with ``headless`` no window and rows written to ``csv_path``.

    Stops on q/Esc in the window, Ctrl+C, after ``max_frames``, or when the camera disappears
    (then the summary's ``ended_early`` says so and everything seen so far is kept).
    """
    from moodlens.recognition.annotate import annotate, draw_text

    if not headless:
        reason = display_available()
        if reason:
            raise VideoError(f"cannot show a camera window: {reason}. Use --headless (with --csv FILE) "
                             "to analyse without a window")
    analyzer = analyzer or Analyzer()
    name = f"camera {index}"
    cap = open_camera(int(index) if isinstance(index, str) and index.isdigit() else index)
    runner = VideoAnalyzer(analyzer, every=every, smoothing=smoothing, source=name, on_track_end=on_track_end)
    rows = CsvWriter(csv_path) if csv_path else None
    started = tick = time.monotonic()
    shown_fps = 0.0
    try:
        for frame in camera_frames(cap, name):
            last_tick, tick = tick, time.monotonic()
            result = runner.process(frame)
            if rows:
                rows.write(result)
            if on_frame:
                on_frame(result)
            if not headless:
                rate = 1.0 / max(tick - last_tick, 1e-6)  # frame to frame, so capture and display count too
                shown_fps = rate if not shown_fps else 0.9 * shown_fps + 0.1 * rate
                view = annotate(frame.image, result.faces, scores=scores, copy=False)
                cv2.imshow("moodlens", draw_text(view, f"{shown_fps:.0f} FPS  {len(result.faces)} faces"))
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            if max_frames is not None and runner.summary.frames >= max_frames:
                break
    except VideoError as exc:
        runner.summary.ended_early = str(exc)
    except KeyboardInterrupt:
        pass
    finally:
        cap.release()
        if rows:
            rows.close()
        if not headless:
            cv2.destroyAllWindows()
    summary = runner.finish()
    elapsed = time.monotonic() - started
    summary.fps = summary.frames / elapsed if elapsed > 0 else 0.0
    return summary
