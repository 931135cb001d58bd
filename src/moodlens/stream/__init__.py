"""The stream engine: sources -> analysis -> sinks, for video files, cameras, stream URLs and the web live page.

>>> from moodlens.stream import VideoFile, CsvSink, run_stream          # doctest: +SKIP
>>> summary = run_stream(VideoFile("talk.mp4"), Analyzer(), [CsvSink("faces.csv")])  # doctest: +SKIP

Sources (:mod:`~moodlens.stream.sources`): :class:`VideoFile`, :class:`Camera`, :class:`StreamURL`,
:class:`PushSource`, :func:`open_source`. Analysis (:mod:`~moodlens.stream.pipeline`): :class:`Pipeline`, whose
stages (:mod:`~moodlens.stream.stages`) all have the shape ``update(frame, faces) -> faces``. Sinks
(:mod:`~moodlens.stream.sinks`): video, CSV, JSON, window, progress; the event store's in
:mod:`moodlens.events.stream_ingest`. :func:`run_streams` runs several streams on threads with shared
classification batches.
"""

from moodlens.stream.commands import analyze_video, run_camera
from moodlens.stream.engine import Stream, run_stream, run_streams
from moodlens.stream.frames import FALLBACK_FPS, Frame, SourceEvent, SourceInfo, StreamError, frame_rate
from moodlens.stream.pipeline import Pipeline
from moodlens.stream.sinks import CallbackSink, CsvSink, JsonSink, ProgressSink, Sink, VideoSink, WindowSink
from moodlens.stream.sources import Camera, PushSource, StreamURL, VideoFile, open_source
from moodlens.stream.summary import StreamSummary, TrackSummary

__all__ = [
    "FALLBACK_FPS", "CallbackSink", "Camera", "CsvSink", "Frame", "JsonSink", "Pipeline", "ProgressSink",
    "PushSource", "Sink", "SourceEvent", "SourceInfo", "Stream", "StreamError", "StreamSummary", "StreamURL",
    "TrackSummary", "VideoFile", "VideoSink", "WindowSink", "analyze_video", "frame_rate", "open_source",
    "run_camera", "run_stream", "run_streams",
]
