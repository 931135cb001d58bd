"""Sinks: where a stream's analysed frames go. Each gets every frame in order (``write``), the source's
offline/online events (``status``) and the final summary (``close``).

Annotated H.264 MP4 that browsers play (:class:`VideoSink`, PyAV's libx264), rows with timestamps
(:class:`CsvSink`), the summary over time as JSON (:class:`JsonSink`), a window (:class:`WindowSink`), a
progress bar (:class:`ProgressSink`). The event store's sink lives with the store
(:mod:`moodlens.events.stream_ingest`).
"""

from __future__ import annotations

import json
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from moodlens.csvfile import FACE_FIELDS, CsvWriter
from moodlens.outfiles import output_problem
from moodlens.recognition.faces import Faces
from moodlens.stream.frames import Frame, SourceEvent, StreamError
from moodlens.stream.summary import StreamSummary

#: Columns of video and camera CSV files: a timestamp on every row.
CSV_FIELDS = ["frame", "time_s", *FACE_FIELDS]
#: libx264 settings of annotated videos: quick to encode, small, played by every browser (yuv420p, faststart).
H264_OPTIONS = {"preset": "veryfast", "crf": "23"}


def _writable(path: str | Path) -> Path:
    """``path``, its folder made; a path that cannot be written is a :class:`StreamError` before the stream runs."""
    if problem := output_problem(path):
        raise StreamError(problem)
    return Path(path)


class Sink:
    """Base class: override what you need. Sinks run on the engine's finishing thread, one call at a time."""

    def write(self, frame: Frame, faces: Faces) -> None:
        """One analysed frame (BGR pixels in ``frame.image``) and its faces."""

    def status(self, event: SourceEvent) -> None:
        """The live source went offline or came back."""

    def close(self, summary: StreamSummary) -> None:
        """The stream ended; ``summary`` is final."""


class CsvSink(Sink):
    """One row per face per frame, with ``frame`` and ``time_s``; every cell passes through ``csv_row``."""

    def __init__(self, path: str | Path) -> None:
        self._rows = CsvWriter(_writable(path), CSV_FIELDS)

    def write(self, frame: Frame, faces: Faces) -> None:
        self._rows.write_rows(faces.to_records(frame=frame.index, time_s=round(frame.time_s, 3)))

    def close(self, summary: StreamSummary) -> None:
        self._rows.close()


class JsonSink(Sink):
    """The stream's summary over time (tracks, segments, timeline, drops, offline intervals) as JSON."""

    def __init__(self, path: str | Path) -> None:
        self.path = _writable(path)

    def close(self, summary: StreamSummary) -> None:
        self.path.write_text(json.dumps(summary.to_dict(), indent=2))


class VideoSink(Sink):
    """Annotated copy as H.264 in MP4 (yuv420p, ``+faststart``): plays in browsers. Odd frame sizes lose
    their last row or column (H.264 in 4:2:0 needs even sizes); a side under 2 pixels is padded to 2 instead.
    ``fps``: the output's frame rate (the source's divided by ``every``); live sources are timed by their
    frames' ``time_s``."""

    def __init__(self, path: str | Path, fps: float, live: bool = False, scores: bool = False,
                 blur: bool = False) -> None:
        import av  # imported here: only annotated videos need it

        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
            raise StreamError(f"{self.path}: annotated videos are written as H.264 MP4; use a .mp4 name")
        _writable(self.path)
        self._av = av
        self.fps, self.live, self.scores, self.blur = fps, live, scores, blur
        self._container: Any = None
        self._stream: Any = None
        self._first_s: float | None = None
        self._last_pts = -1

    def _open(self, width: int, height: int) -> None:
        self._container = self._av.open(str(self.path), "w", options={"movflags": "+faststart"})
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
        self._stream.options = dict(H264_OPTIONS)
        if self.live:  # frames arrive when they arrive: time them in milliseconds
            self._stream.codec_context.time_base = Fraction(1, 1000)

    def write(self, frame: Frame, faces: Faces) -> None:
        from moodlens.recognition.annotate import annotate

        image = frame.image
        h, w = image.shape[:2]
        if h < 2 or w < 2:  # nothing left after the crop to even sizes: repeat the edge to 2 pixels instead
            image = cv2.copyMakeBorder(image, 0, max(0, 2 - h), 0, max(0, 2 - w), cv2.BORDER_REPLICATE)
            h, w = image.shape[:2]
        even = image[: h - h % 2, : w - w % 2]
        if self._container is None:
            self._open(even.shape[1], even.shape[0])
        drawn = annotate(np.ascontiguousarray(even), faces, scores=self.scores, blur=self.blur, copy=False)
        video_frame = self._av.VideoFrame.from_ndarray(drawn, format="bgr24")
        if self.live:
            self._first_s = frame.time_s if self._first_s is None else self._first_s
            pts = max(self._last_pts + 1, round((frame.time_s - self._first_s) * 1000))
        else:
            pts = self._last_pts + 1
        video_frame.pts = self._last_pts = pts
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)

    def close(self, summary: StreamSummary) -> None:
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None


class WindowSink(Sink):
    """A window with boxes, labels and frames/second; q or Esc sets ``stop``."""

    def __init__(self, stop: threading.Event, title: str = "moodlens", scores: bool = False) -> None:
        self.stop, self.title, self.scores = stop, title, scores
        self._last: float | None = None
        self._fps = 0.0

    def write(self, frame: Frame, faces: Faces) -> None:
        from moodlens.recognition.annotate import annotate, draw_text

        if self._last is not None and frame.time_s > self._last:
            rate = 1.0 / (frame.time_s - self._last)
            self._fps = rate if not self._fps else 0.9 * self._fps + 0.1 * rate
        self._last = frame.time_s
        view = annotate(frame.image, faces, scores=self.scores, copy=False)
        cv2.imshow(self.title, draw_text(view, f"{self._fps:.0f} FPS  {len(faces)} faces"))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stop.set()

    def close(self, summary: StreamSummary) -> None:
        cv2.destroyWindow(self.title)


class ProgressSink(Sink):
    """A tqdm progress bar: frames analysed, people (tracks) seen, frames dropped."""

    def __init__(self, name: str, total: int | None = None, initial: int = 0, every: int = 1) -> None:
        from tqdm import tqdm

        self.every = every
        self._bar = tqdm(total=total, initial=initial, unit="frame", desc=name)
        self._people: set[int] = set()

    def write(self, frame: Frame, faces: Faces) -> None:
        self._people.update(faces.track_ids.tolist())
        self._bar.update(max(0, frame.index + 1 - self._bar.n))
        postfix = {"people": len(self._people)}
        if frame.dropped:
            postfix["dropped"] = frame.dropped
        self._bar.set_postfix(postfix, refresh=False)

    def status(self, event: SourceEvent) -> None:
        self._bar.write(f"{self._bar.desc}: {event.kind}" + (f" ({event.reason})" if event.reason else ""))

    def close(self, summary: StreamSummary) -> None:
        self._bar.close()


class CallbackSink(Sink):
    """Calls ``on_frame(frame, faces)`` for every frame (tests, custom consumers)."""

    def __init__(self, on_frame: Any) -> None:
        self.on_frame = on_frame

    def write(self, frame: Frame, faces: Faces) -> None:
        self.on_frame(frame, faces)
