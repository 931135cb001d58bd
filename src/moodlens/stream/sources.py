"""Sources: where frames come from. A video file, a camera device, a stream URL, or frames pushed in by a program.

Every source opens eagerly (so a bad path, index or URL is a clear :class:`StreamError` before anything
runs) and yields :class:`Frame` objects from :meth:`frames`, with one frame-rate rule (:func:`frame_rate`).
Live sources (cameras, URLs) that drop are reopened with backoff; they yield a :class:`SourceEvent` when they
go offline and when they are back, so sinks can record the interval.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cv2

from moodlens.recognition.imageio import sniff_format
from moodlens.settings import STREAM_DEFAULTS, StreamSettings
from moodlens.stream.frames import Frame, SourceEvent, SourceInfo, StreamError, frame_rate, utcnow

#: URL schemes read through OpenCV's FFmpeg backend (RTSP cameras, MJPEG over HTTP, HLS playlists).
URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
#: Seconds between attempts to reopen a dropped live source: doubles from the first to the last value.
RECONNECT_BACKOFF_S = (0.5, 10.0)
#: Live frames that may wait for analysis before the oldest is dropped.
LIVE_QUEUE = 4

FrameOrEvent = Frame | SourceEvent


def _quiet_opencv() -> None:
    """OpenCV prints a warning for every failed open; our errors say it once, in one line."""
    with contextlib.suppress(AttributeError):  # builds without the logging module
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def redact_url(url: str) -> str:
    """``url`` without a password (``rtsp://user:secret@host`` -> ``rtsp://user@host``): safe to store and show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def is_url(spec: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec))


class VideoFile:
    """A video file, read frame by frame; still images are refused (use ``moodlens analyze`` for photos).

    ``every``: yield every Nth frame (the others are skipped with ``grab()``, not decoded). ``start``: the
    first frame to yield (resuming; reached by ``grab()``, since seeking lands on keyframes in many codecs).
    """

    def __init__(self, path: str | Path, every: int = 1, start: int = 0) -> None:
        _quiet_opencv()
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise StreamError(f"{self.path}: a folder, not a video file")
        if not self.path.is_file():
            raise StreamError(f"{self.path}: video file not found")
        if self.path.stat().st_size == 0:
            raise StreamError(f"{self.path}: empty file (0 bytes)")
        with self.path.open("rb") as fh:
            head = fh.read(16)
        if (fmt := sniff_format(head)) is not None:
            raise StreamError(f"{self.path}: a still image ({fmt.upper()}), not a video; analyse photos with "
                              "`moodlens analyze` or `moodlens event ingest --photos`")
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise StreamError(f"{self.path}: cannot be opened as a video (not a video, unsupported codec, or corrupt)")
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.info = SourceInfo(name=self.path.name, uri=str(self.path.resolve()), kind="video",
                               fps=frame_rate(self._cap.get(cv2.CAP_PROP_FPS)), live=False,
                               frames=count if count > 0 else None)
        self.every, self.start = every, start
        self.started_at: datetime | None = None
        #: Set after :meth:`frames` ends: whether the file was read to its end, and if it stopped short, why.
        self.completed = False
        self.ended_early: str | None = None

    def frames(self, stop: threading.Event) -> Iterator[FrameOrEvent]:
        cap, fps, every = self._cap, self.info.fps, self.every
        index = 0
        try:
            while index < self.start:
                if not cap.grab():
                    break
                index += 1
            while not stop.is_set():
                if index % every:
                    ok, image = cap.grab(), None
                else:
                    ok, image = cap.read()
                if not ok:
                    self.completed = True
                    break
                if image is not None:
                    yield Frame(index, index / fps, image)
                index += 1
        finally:
            cap.release()
        expected = self.info.frames
        # Containers estimate their frame count; only a clear shortfall means the file stopped early.
        if self.completed and expected and index < expected - max(2, expected // 50):
            self.ended_early = f"decoded {index} of {expected} frames announced by the container"
        if self.completed and index == 0:
            raise StreamError(f"{self.path}: no frame could be decoded")

    def close(self) -> None:
        self._cap.release()


class _LiveSource:
    """Shared by cameras and stream URLs: read until stopped, reopen with backoff when the source drops.

    ``first_index``: frame number of the first frame read (a restarted ingest continues its numbering).
    ``stop_at``: wall time (naive UTC) after which reading ends, e.g. the end of an event.
    """

    info: SourceInfo

    def __init__(self, settings: StreamSettings, first_index: int = 0, stop_at: datetime | None = None) -> None:
        self.settings = settings
        self.first_index = first_index
        self.stop_at = stop_at
        self._cap = self._open()
        self.info = self._info(frame_rate(self._cap.get(cv2.CAP_PROP_FPS)))
        self.started_at: datetime | None = None
        self.completed = False
        self.ended_early: str | None = None

    def _open(self) -> cv2.VideoCapture:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def _info(self, fps: float) -> SourceInfo:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def frames(self, stop: threading.Event) -> Iterator[FrameOrEvent]:
        every = self.settings.every
        index = self.first_index
        t0 = time.monotonic()
        self.started_at = utcnow()
        cap: cv2.VideoCapture | None = self._cap
        try:
            while not stop.is_set():
                if self.stop_at is not None and utcnow() > self.stop_at:
                    break
                ok, image = cap.read() if cap is not None else (False, None)
                if not ok or image is None:
                    if cap is not None:
                        cap.release()
                    yield SourceEvent("offline", utcnow(), "stopped delivering frames")
                    cap = self._reopen(stop)
                    if cap is None:
                        break
                    yield SourceEvent("online", utcnow())
                    continue
                if index % every == 0:
                    yield Frame(index, time.monotonic() - t0, image)
                index += 1
        finally:
            if cap is not None:
                cap.release()

    def _reopen(self, stop: threading.Event) -> cv2.VideoCapture | None:
        """Try to open the source again, waiting longer after each failure; ``None`` when stopped or given up."""
        delay, longest = RECONNECT_BACKOFF_S
        offline_since = time.monotonic()
        limit = self.settings.max_offline_s
        while not stop.is_set():
            if self.stop_at is not None and utcnow() > self.stop_at:
                return None
            if limit is not None and time.monotonic() - offline_since > limit:
                self.ended_early = f"{self.info.name}: offline for more than {limit:g} s"
                return None
            if stop.wait(delay):
                return None
            try:
                return self._open()
            except StreamError:
                delay = min(2 * delay, longest)
        return None

    def close(self) -> None:
        self._cap.release()


def _device_missing(index: int) -> bool:
    return sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{index}")


class Camera(_LiveSource):
    """A camera device by index (``0`` is the first). Negative indices are refused before OpenCV sees them."""

    def __init__(self, index: int, settings: StreamSettings = STREAM_DEFAULTS, first_index: int = 0,
                 stop_at: datetime | None = None) -> None:
        if index < 0:
            raise StreamError(f"camera {index}: a camera index is 0 or more (0 is the first camera)")
        self.index = index
        _quiet_opencv()
        super().__init__(settings, first_index, stop_at)

    def _open(self) -> cv2.VideoCapture:
        if _device_missing(self.index):
            raise StreamError(f"camera {self.index}: no such device (/dev/video{self.index} does not exist)")
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            raise StreamError(f"camera {self.index}: cannot be opened (no camera attached, no permission, or in use)")
        return cap

    def _info(self, fps: float) -> SourceInfo:
        return SourceInfo(name=f"camera {self.index}", uri=f"camera:{self.index}", kind="camera", fps=fps, live=True)


class StreamURL(_LiveSource):
    """A network stream read through OpenCV's FFmpeg backend: ``rtsp://`` cameras, MJPEG over ``http(s)://``,
    HLS playlists. Opening and each read give up after ``settings.open_timeout_s``, so an unreachable or
    stalled server is an error (at open) or a drop (later), never a hang."""

    def __init__(self, url: str, settings: StreamSettings = STREAM_DEFAULTS, first_index: int = 0,
                 stop_at: datetime | None = None) -> None:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in URL_SCHEMES:
            raise StreamError(f"{redact_url(url)}: unsupported stream URL scheme {scheme!r}; use "
                              f"{', '.join(s + '://' for s in URL_SCHEMES)}")
        self.url = url
        _quiet_opencv()
        super().__init__(settings, first_index, stop_at)

    def _open(self) -> cv2.VideoCapture:
        ms = int(self.settings.open_timeout_s * 1000)
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        if not cap.isOpened():
            raise StreamError(f"{redact_url(self.url)}: cannot open the stream within "
                              f"{self.settings.open_timeout_s:g} s (unreachable, refused, or not a video stream)")
        return cap

    def _info(self, fps: float) -> SourceInfo:
        safe = redact_url(self.url)
        return SourceInfo(name=safe, uri=safe, kind="camera", fps=fps, live=True)


class PushSource:
    """Frames handed in by a program (the web live page, a frame grabber), one :meth:`push` at a time.

    Frames are numbered and timed as they arrive. At most ``capacity`` wait; when analysis is behind,
    the oldest waiting frame is dropped and counted in :attr:`dropped`. :meth:`close` ends :meth:`frames`.
    """

    def __init__(self, name: str = "push", fps: float | None = None, capacity: int = LIVE_QUEUE) -> None:
        self.info = SourceInfo(name=name, uri=f"push:{name}", kind="push", fps=frame_rate(fps), live=True)
        self.started_at: datetime | None = utcnow()
        self.completed = False
        self.ended_early: str | None = None
        self.dropped = 0
        self._waiting: deque[Frame] = deque()
        self._capacity = capacity
        self._ready = threading.Condition()
        self._closed = False
        self._t0 = time.monotonic()
        self._next = 0

    def push(self, image) -> Frame:  # noqa: ANN001 - a BGR numpy array
        """Queue one BGR frame; returns it as numbered and timed (drops the oldest waiting one when full)."""
        frame = Frame(self._next, time.monotonic() - self._t0, image)
        with self._ready:
            self._next += 1
            if len(self._waiting) >= self._capacity:
                self._waiting.popleft()
                self.dropped += 1
            frame.dropped = self.dropped
            self._waiting.append(frame)
            self._ready.notify()
        return frame

    def take(self) -> Frame | None:
        """The oldest waiting frame without blocking, or ``None``."""
        with self._ready:
            return self._waiting.popleft() if self._waiting else None

    def frames(self, stop: threading.Event) -> Iterator[FrameOrEvent]:
        while True:
            with self._ready:
                while not self._waiting and not self._closed and not stop.is_set():
                    self._ready.wait(0.1)
                if not self._waiting:
                    self.completed = self._closed
                    return
                frame = self._waiting.popleft()
            yield frame

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


Source = VideoFile | Camera | StreamURL | PushSource


def open_source(spec: str | int | Path, settings: StreamSettings = STREAM_DEFAULTS) -> Source:
    """A source from what a user typed: a camera index (``0``), a stream URL (live), or a video file path."""
    text = str(spec).strip()
    if isinstance(spec, int) or re.fullmatch(r"-?\d+", text):
        return Camera(int(text), settings)
    if is_url(text):
        return StreamURL(text, settings)
    return VideoFile(text, every=settings.every)
