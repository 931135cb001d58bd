"""Videos, cameras and stream URLs into an event: the stream engine with the event store as its sink.

One ingest may hold several sources (files, camera indices, stream URLs); their faces are classified in
shared batches (:func:`moodlens.stream.run_streams`). Each source's rows are committed in batches, each
batch together with the source's resume cursor, at least every ``commit_interval_s`` seconds.

Resuming a video is exact: the tracker's state is not stored, so the ingest goes back to the last frame
at which no track was alive (nothing the tracker, the smoother or the box follower remembers can differ
there) and on which the detector runs in an uninterrupted run, drops the observations after it and
replays from it. The resumed run therefore ends with the same people and faces as an uninterrupted one.
A live source continues its frame numbering after a restart; a person in view during the restart is
counted again. A live source that drops is reopened with backoff; the interval it was offline is stored
(``source_outages``) and shown in the report.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moodlens.events.ingest import IngestResult, _BatchWriter, _rows, _TrackNumbers
from moodlens.events.model_facts import ModelFacts, model_facts
from moodlens.events.store import EventStore, Source, to_utc_naive, utcnow
from moodlens.recognition.faces import Faces
from moodlens.settings import STREAM_DEFAULTS, StreamSettings
from moodlens.stream.engine import Stream, run_streams
from moodlens.stream.frames import Frame, SourceEvent, StreamError
from moodlens.stream.sinks import ProgressSink, Sink
from moodlens.stream.sources import Camera, StreamURL, VideoFile, is_url, redact_url
from moodlens.stream.stages import max_age, tracking_note
from moodlens.stream.summary import StreamSummary

if TYPE_CHECKING:
    from moodlens.recognition.analyzer import Analyzer


def quiet_frame(spans: list[tuple[int, int, int]], frame: int, every: int, max_age: int) -> int | None:
    """``frame`` if no stored track could still be alive in the tracker there, else the earliest start of
    a track that could (to go back further); ``None`` when ``frame`` is quiet.

    A track last seen at processed update ``u`` can still be matched up to update ``u + max_age + 1``.
    """
    update = -(-frame // every)  # the next analysed frame at or after ``frame``
    alive = [first for _, first, last in spans if first < frame and last // every + max_age + 1 >= update]
    return min(alive) if alive else None


def rewind_to_quiet_frame(store: EventStore, source: Source, max_age: int, detect_every: int = 1) -> int:
    """Move a partly ingested video source back to its last quiet frame on which the detector runs
    (a multiple of ``every * detect_every``); returns that frame."""
    period = source.every * detect_every
    frame = source.frames_done
    while frame > 0:
        frame -= frame % period
        since = max(0, frame - (max_age + 2) * source.every)
        earlier = quiet_frame(store.track_spans(source.id, since), frame, source.every, max_age)
        if earlier is None:
            break
        frame = earlier
    store.rewind_source(source.id, frame)
    return frame


class StoreSink(Sink):
    """Observations of one source into the event store, in batches that advance its resume cursor.

    ``clock``: wall time of the source's time zero (files: the ingest's start time); ``None`` for live
    sources, whose frames are stamped from the moment the source started reading.
    """

    def __init__(self, store: EventStore, src: Source, source: Any, result: IngestResult,
                 commit_interval_s: float, clock: datetime | None, finish: bool) -> None:
        self.store, self.src, self.source, self.result = store, src, source, result
        self.clock, self.finish = clock, finish
        self.numbers = _TrackNumbers(store.max_track(src.id) + 1)
        self.writer = _BatchWriter(store, src.id, commit_interval_s)
        self.next_frame = src.frames_done
        self._dropped_before = src.frames_dropped or 0
        self._outage: int | None = None

    def write(self, frame: Frame, faces: Faces) -> None:
        clock = self.clock or self.source.started_at
        ts = clock + timedelta(seconds=frame.time_s)
        self.writer.fields["frames_dropped"] = self._dropped_before + frame.dropped
        self.next_frame = frame.index + 1
        self.writer.add(_rows(faces, frame.index, ts, self.numbers(faces.track_ids)), self.next_frame)
        self.result.frames += 1
        self.result.faces += len(faces)

    def status(self, event: SourceEvent) -> None:
        self.writer.commit(self.next_frame)
        if event.kind == "offline":
            self._outage = self.store.add_outage(self.src.id, event.at, event.reason)
            self.result.offline.append({"from": event.at, "to": None})
        elif self._outage is not None:
            self.store.end_outage(self._outage, event.at)
            self.result.offline[-1]["to"] = event.at
            self._outage = None

    def close(self, summary: StreamSummary) -> None:
        self.result.new_tracks = self.numbers.created
        self.result.finished = summary.completed and self.finish
        self.result.frames_dropped = summary.frames_dropped
        self.writer.fields["frames_dropped"] = self._dropped_before + summary.frames_dropped
        self.writer.commit(self.next_frame, finished=self.result.finished)
        if self._outage is not None:  # stopped while offline: the interval ends with the ingest
            self.status(SourceEvent("online", utcnow()))


def _check_resume(path: Path, src: Source, settings: StreamSettings) -> None:
    """Resuming replays part of the video: with other settings its tracks would not join up."""
    for name in ("every", "detect_every", "track_gap_s"):
        used, asked = getattr(src, name), getattr(settings, name)
        if used is not None and used != asked and not src.finished:
            raise ValueError(f"{path}: this ingest was started with {name}={used}; resume with the same value "
                             f"or delete the event's data first")


def _video_stream(store: EventStore, event: str, video: str | Path, settings: StreamSettings,
                  start: datetime | None, commit_interval_s: float, progress: bool,
                  model: ModelFacts) -> tuple[Stream | None, IngestResult]:
    path = Path(video).expanduser()
    source = VideoFile(path, every=settings.every)
    info = source.info
    total = info.frames or 0
    src = store.open_source(event, "video", info.uri, label=info.name, fps=info.fps, every=settings.every,
                            detect_every=settings.detect_every, track_gap_s=settings.track_gap_s,
                            frames_total=info.frames)
    _check_resume(path, src, settings)
    result = IngestResult(event, info.name, "video")
    if src.finished:
        source.close()
        result.finished = True
        return None, result
    if src.started_at is None:
        ev = store.get_event(event)
        if start is not None:
            started = to_utc_naive(start)
        elif ev.starts_at is not None:
            started = ev.starts_at
        else:
            started = to_utc_naive(datetime.fromtimestamp(path.stat().st_mtime)) - timedelta(seconds=total / info.fps)
        store.update_source(src.id, started_at=started, tracking=tracking_note(settings, info.fps))
    if src.detect_every is None:
        store.update_source(src.id, detect_every=settings.detect_every)
    src = store.get_source(src.id)
    if src.frames_done > 0:
        result.resumed_from = source.start = rewind_to_quiet_frame(store, src, max_age(settings, info.fps),
                                                                   settings.detect_every)
        src = store.get_source(src.id)
    store.record_model(src.id, model)
    sinks: list[Sink] = [StoreSink(store, src, source, result, commit_interval_s, src.started_at, finish=True)]
    if progress:
        sinks.append(ProgressSink(info.name, total=total or None, initial=source.start))
    return Stream(source, sinks, settings), result


def open_camera(camera: int | str, settings: StreamSettings = STREAM_DEFAULTS,
                stop_at: datetime | None = None) -> Camera | StreamURL:
    """A camera index or a stream URL as a live source; files are refused (ingest them with ``--video``)."""
    text = str(camera).strip()
    if isinstance(camera, int) or text.lstrip("-").isdigit():
        return Camera(int(text), settings, stop_at=stop_at)
    if is_url(text):
        return StreamURL(text, settings, stop_at=stop_at)
    raise StreamError(f"--camera {redact_url(text)!r}: give a camera index (0, 1, ...) or a stream URL "
                      "(rtsp://, http(s)://); ingest video files with --video")


def _camera_stream(store: EventStore, event: str, camera: int | str, settings: StreamSettings,
                   commit_interval_s: float, progress: bool, model: ModelFacts) -> tuple[Stream, IngestResult]:
    ev = store.get_event(event)
    source = open_camera(camera, settings, stop_at=ev.ends_at)
    info = source.info
    src = store.open_source(event, "camera", info.uri, label=info.name, fps=info.fps, every=settings.every,
                            detect_every=settings.detect_every, track_gap_s=settings.track_gap_s)
    store.update_source(src.id, finished=False, tracking=tracking_note(settings, info.fps),
                        started_at=src.started_at or utcnow(), detect_every=settings.detect_every)
    store.record_model(src.id, model)
    src = store.get_source(src.id)
    source.first_index = src.frames_done
    result = IngestResult(event, info.name, "camera", resumed_from=src.frames_done or None)
    sinks: list[Sink] = [StoreSink(store, src, source, result, commit_interval_s, None, finish=False)]
    if progress:
        sinks.append(ProgressSink(info.name, initial=src.frames_done))
    return Stream(source, sinks, settings), result


def check_request(store: EventStore, event: str, videos: Sequence[Any], cameras: Sequence[Any]) -> None:
    """An ingest names at least one source and an existing event: checked before any source is opened."""
    if not videos and not cameras:
        raise ValueError("nothing to ingest: give at least one video file or camera")
    store.get_event(event)


def open_streams(store: EventStore, event: str, videos: Sequence[str | Path], cameras: Sequence[int | str],
                 analyzer: Analyzer, *, settings: StreamSettings = STREAM_DEFAULTS,
                 start: datetime | None = None, commit_interval_s: float = 1.0, progress: bool = True,
                 max_frames: int | None = None) -> tuple[list[Stream], list[IngestResult]]:
    """The streams of :func:`ingest_streams`, opened (each source and its resume cursor: a video is rewound to
    its last quiet frame) but not run: pass them to :func:`moodlens.stream.run_streams`, which fills the
    results. Finished videos have a result and no stream. Returns (streams, one result per source in order)."""
    check_request(store, event, videos, cameras)
    model = model_facts(analyzer)
    streams: list[Stream] = []
    results: list[IngestResult] = []
    try:
        for video in videos:
            stream, result = _video_stream(store, event, video, settings, start, commit_interval_s, progress, model)
            results.append(result)
            if stream is not None:
                streams.append(stream)
        for camera in cameras:
            stream, result = _camera_stream(store, event, camera, settings, commit_interval_s, progress, model)
            stream.max_frames = max_frames
            results.append(result)
            streams.append(stream)
    except BaseException:
        for s in streams:
            s.source.close()
        raise
    return streams, results


def ingest_streams(store: EventStore, event: str, videos: Sequence[str | Path] = (),
                   cameras: Sequence[int | str] = (), analyzer: Analyzer | None = None, *,
                   settings: StreamSettings | None = None, start: datetime | None = None,
                   commit_interval_s: float = 1.0, progress: bool = True, stop: threading.Event | None = None,
                   max_frames: int | None = None, **overrides: Any) -> list[IngestResult]:
    """Analyse video files and live sources (camera indices, stream URLs) into ``event``, all at once.

    Files run to their end (running the same ingest again resumes an unfinished one); live sources run until
    ``stop``, Ctrl-C, ``max_frames`` frames read, the event's end time, or ``max_offline_s`` offline.
    ``start``: wall-clock time of a video's first frame (default: the event's start, else the file's
    modification time minus its duration). ``settings`` / ``overrides``: :class:`StreamSettings` fields.
    Returns one :class:`IngestResult` per source (videos first, in the order given).
    """
    check_request(store, event, videos, cameras)  # before a model is loaded
    if analyzer is None:
        from moodlens.recognition.analyzer import Analyzer
        from moodlens.settings import VIDEO_DEFAULTS

        analyzer = Analyzer(VIDEO_DEFAULTS)
    streams, results = open_streams(store, event, videos, cameras, analyzer,
                                    settings=(settings or STREAM_DEFAULTS).with_(**overrides), start=start,
                                    commit_interval_s=commit_interval_s, progress=progress, max_frames=max_frames)
    if streams:
        run_streams(streams, analyzer, stop)
    return results


def ingest_video(store: EventStore, event: str, video: str | Path, analyzer: Analyzer | None = None, *,
                 start: datetime | None = None, commit_interval_s: float = 1.0, progress: bool = True,
                 stop: threading.Event | None = None, settings: StreamSettings | None = None,
                 **overrides: Any) -> IngestResult:
    """One video file into ``event`` (see :func:`ingest_streams`); running it again resumes an unfinished ingest."""
    return ingest_streams(store, event, [video], analyzer=analyzer, settings=settings, start=start,
                          commit_interval_s=commit_interval_s, progress=progress, stop=stop, **overrides)[0]


def ingest_camera(store: EventStore, event: str, camera: int | str = 0, analyzer: Analyzer | None = None, *,
                  commit_interval_s: float = 1.0, progress: bool = True, stop: threading.Event | None = None,
                  max_frames: int | None = None, settings: StreamSettings | None = None,
                  **overrides: Any) -> IngestResult:
    """One camera index or stream URL into ``event`` until stopped (see :func:`ingest_streams`)."""
    return ingest_streams(store, event, cameras=[camera], analyzer=analyzer, settings=settings,
                          commit_interval_s=commit_interval_s, progress=progress, stop=stop,
                          max_frames=max_frames, **overrides)[0]
