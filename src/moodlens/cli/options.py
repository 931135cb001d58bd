"""Options shared by several commands, so they read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

from moodlens.settings import DEFAULTS, STREAM_DEFAULTS, AnalysisSettings, StreamSettings

ModelOpt = Annotated[str, typer.Option(help="Model: a shipped one by name (default, accurate) "
                                            "or a path to an .onnx file.")]
DetectorOpt = Annotated[str, typer.Option(help="Face detector: auto, yunet or centerface.")]
ConfOpt = Annotated[float, typer.Option(min=0.0, max=1.0, help="Least detector score for a face.")]
MaxSideOpt = Annotated[int, typer.Option(min=32, help="Cost cap: the longest side of the finest detection pass "
                                                     "(larger images find faces from proportionally wider).")]
MinFaceOpt = Annotated[int, typer.Option(min=8, max=4096, help="Narrowest face to find, in pixels of the image or "
                                                               "frame; the detection scale follows from it.")]
RayOpt = Annotated[str | None, typer.Option(
    "--ray", metavar="ADDRESS", help="Run on a Ray cluster (needs the ray extra): local (start one on this machine), "
    "auto (the one `ray start` joined on this machine) or the head's HOST:PORT.")]


def analysis_settings(model: str, detector: str, min_confidence: float, min_face: int, max_side: int,
                      base: AnalysisSettings = DEFAULTS) -> AnalysisSettings:
    """The one settings object a command builds from its analysis options and passes on whole; ``base``
    gives what the command has no option for (:data:`~moodlens.settings.VIDEO_DEFAULTS` for video)."""
    return base.with_(model=model, detector=detector, min_confidence=min_confidence, min_face=min_face,
                      max_side=max_side)


EveryOpt = Annotated[int, typer.Option(min=1, help="Analyse every Nth frame (the others are skipped).")]
DetectEveryOpt = Annotated[int, typer.Option(min=1, help="Run the face detector on every Nth analysed frame; "
                                                         "boxes follow the faces by optical flow in between.")]
TrackGapOpt = Annotated[float, typer.Option(min=0.0, help="Seconds a face may go unseen before its track "
                                                          "(one person) ends.")]
SmoothOpt = Annotated[float, typer.Option(min=0.01, max=1.0, help="Weight of the newest frame in each track's "
                                                                  "moving average (1 = no smoothing).")]
MinSegmentOpt = Annotated[float, typer.Option(min=0.0, help="Shortest expression segment in the summary over "
                                                            "time, in seconds; shorter ones join a neighbour.")]
OpenTimeoutOpt = Annotated[float, typer.Option(min=0.1, help="Seconds a stream URL may take to open or to deliver "
                                                             "a frame before it counts as unreachable.")]
MaxOfflineOpt = Annotated[float | None, typer.Option(min=0.0, help="Give up a live source that stays offline this "
                                                                   "many seconds (default: keep reconnecting).")]
DropLateOpt = Annotated[bool, typer.Option(help="Live sources: drop frames (counted) when analysis falls behind; "
                                                "--no-drop-late-frames reads no faster than analysis instead.")]


def stream_settings(**values: object) -> StreamSettings:
    """The one stream settings object a command builds from its stream options (names as in StreamSettings)."""
    return STREAM_DEFAULTS.with_(**values)
