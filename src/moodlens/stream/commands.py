"""The library calls behind ``moodlens video`` and ``moodlens camera``: a source, the sinks the options ask
for, and the engine. Each keyword is the CLI option of the same name."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2

from moodlens.settings import STREAM_DEFAULTS, StreamSettings
from moodlens.stream.engine import run_stream
from moodlens.stream.frames import StreamError
from moodlens.stream.sinks import CsvSink, JsonSink, ProgressSink, Sink, VideoSink, WindowSink
from moodlens.stream.sources import Source, VideoFile, open_source
from moodlens.stream.summary import StreamSummary

if TYPE_CHECKING:
    from moodlens.recognition.analyzer import Analyzer


def _analyzer(analyzer: Analyzer | None) -> Analyzer:
    if analyzer is not None:
        return analyzer
    from moodlens.recognition.analyzer import Analyzer
    from moodlens.settings import VIDEO_DEFAULTS

    return Analyzer(VIDEO_DEFAULTS)


def output_sinks(source: Source, settings: StreamSettings, *, out: str | Path | None = None,
                 csv_path: str | Path | None = None, json_path: str | Path | None = None, scores: bool = False,
                 blur: bool = False, progress: bool = False) -> list[Sink]:
    """The file sinks a command's options ask for (annotated video, CSV rows, JSON summary, progress bar)."""
    info = source.info
    sinks: list[Sink] = []
    if out is not None:
        sinks.append(VideoSink(out, info.fps / settings.every, live=info.live, scores=scores, blur=blur))
    if csv_path is not None:
        sinks.append(CsvSink(csv_path))
    if json_path is not None:
        sinks.append(JsonSink(json_path))
    if progress:
        sinks.append(ProgressSink(info.name, total=info.frames))
    return sinks


def analyze_video(path: str | Path, analyzer: Analyzer | None = None, *, out: str | Path | None = None,
                  csv_path: str | Path | None = None, json_path: str | Path | None = None, scores: bool = False,
                  blur: bool = False, progress: bool = True, settings: StreamSettings | None = None,
                  stop: threading.Event | None = None, **overrides: Any) -> StreamSummary:
    """Analyse a video file: tracked, smoothed, summarised over time; optionally an annotated H.264 copy
    (``out``), rows per face (``csv_path``) and the summary as JSON (``json_path``).

    ``settings`` / ``overrides``: :class:`~moodlens.settings.StreamSettings` (``every``, ``detect_every``,
    ``track_gap_s``, ``smoothing``, ``min_segment_s``). Raises :class:`StreamError` for a missing, empty,
    still-image or undecodable file; a file that stops before its announced length is analysed up to there
    and ``summary.ended_early`` says so.
    """
    settings = (settings or STREAM_DEFAULTS).with_(**overrides)
    source = VideoFile(path, every=settings.every)
    sinks = output_sinks(source, settings, out=out, csv_path=csv_path, json_path=json_path, scores=scores,
                         blur=blur, progress=progress)
    return run_stream(source, _analyzer(analyzer), sinks, settings, stop)


def display_available() -> str | None:
    """None when OpenCV can open a window here, else the reason it cannot."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY/WAYLAND_DISPLAY not set)"
    try:
        cv2.namedWindow("moodlens-probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("moodlens-probe")
    except cv2.error:
        return "this OpenCV build has no GUI support (opencv-python-headless); install opencv-python for a window"
    return None


def run_camera(camera: int | str = 0, analyzer: Analyzer | None = None, *, headless: bool = False,
               out: str | Path | None = None, csv_path: str | Path | None = None,
               json_path: str | Path | None = None, scores: bool = False, max_frames: int | None = None,
               progress: bool = False, settings: StreamSettings | None = None,
               stop: threading.Event | None = None, **overrides: Any) -> StreamSummary:
    """Live analysis of a camera index, a stream URL (``rtsp://``, ``http(s)://`` MJPEG or HLS) or a video file:
    a window with boxes, labels and frames/second, or with ``headless`` none (results go to the file sinks).

    Runs until q/Esc in the window, ``stop``, Ctrl-C, ``max_frames`` frames read, the end of a file, or a
    live source offline for longer than ``max_offline_s``; a live source that drops is reopened with backoff.
    """
    if not headless and (reason := display_available()):
        raise StreamError(f"cannot show a camera window: {reason}. Use --headless (with --csv FILE) "
                          "to analyse without a window")
    settings = (settings or STREAM_DEFAULTS).with_(**overrides)
    stop = stop or threading.Event()
    source = open_source(camera, settings)
    sinks = output_sinks(source, settings, out=out, csv_path=csv_path, json_path=json_path, scores=scores,
                         progress=progress)
    if not headless:
        sinks.append(WindowSink(stop, scores=scores))
    return run_stream(source, _analyzer(analyzer), sinks, settings, stop, max_frames)
