"""``moodlens analyze | video | camera``: thin shells over Analyzer and the stream engine's analyze_video and
run_camera."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from moodlens.cli.errors import fail
from moodlens.cli.options import (
    ConfOpt,
    DetectEveryOpt,
    DetectorOpt,
    DropLateOpt,
    EveryOpt,
    MaxOfflineOpt,
    MaxSideOpt,
    MinSegmentOpt,
    ModelOpt,
    OpenTimeoutOpt,
    SmoothOpt,
    TrackGapOpt,
    analysis_settings,
    stream_settings,
)
from moodlens.settings import DEFAULTS, STREAM_DEFAULTS
from moodlens.textsafe import terminal_text

S = STREAM_DEFAULTS


def _analyzer(model: str, detector: str, min_confidence: float, max_side: int):  # noqa: ANN202
    from moodlens.recognition.analyzer import Analyzer
    from moodlens.recognition.detect import DetectorUnavailable

    try:
        return Analyzer(analysis_settings(model, detector, min_confidence, max_side))
    except (DetectorUnavailable, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from exc


def analyze(
    paths: Annotated[list[Path], typer.Argument(help="Image files and/or folders (searched recursively).")],
    out: Annotated[Path | None, typer.Option(help="Folder for annotated copies of the images.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write all results as JSON here.")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write one row per face here.")] = None,
    scores: Annotated[bool, typer.Option(help="Draw per-face score bars in annotated copies.")] = False,
    blur: Annotated[bool, typer.Option(help="Blur faces in annotated copies.")] = False,
    model: ModelOpt = DEFAULTS.model,
    detector: DetectorOpt = DEFAULTS.detector,
    min_confidence: ConfOpt = DEFAULTS.min_confidence,
    max_side: MaxSideOpt = DEFAULTS.max_side,
) -> None:
    """Find every face in photos and classify its expression (failures are reported and skipped)."""
    import cv2

    from moodlens.csvfile import FACE_FIELDS, CsvWriter
    from moodlens.recognition.annotate import annotate

    analyzer = _analyzer(model, detector, min_confidence, max_side)
    results, failures = [], 0
    rows = CsvWriter(csv_path, ["file", *FACE_FIELDS]) if csv_path else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    for path, faces, image in analyzer.analyze_paths_with_images(paths, progress=True):
        if isinstance(faces, Exception):
            failures += 1
            typer.secho(f"skipped {faces}", fg="yellow", err=True)
            results.append({"file": str(path), "error": str(faces)})
            continue
        results.append({"file": str(path), "faces": faces.to_list()})
        if rows:
            rows.write_rows(faces.to_records(file=str(path)))
        summary = ", ".join(f"{f.emotion} {f.confidence:.0%}" for f in faces) or "no face"
        typer.echo(f"{path}: {len(faces)} face(s): {summary}")
        if out:
            target = out / (path.stem + ".annotated.jpg")
            cv2.imwrite(str(target), annotate(image, faces, scores=scores, blur=blur))
    if rows:
        rows.close()
    if json_path:
        json_path.write_text(json.dumps(results, indent=2))
    done = len(results) - failures
    typer.echo(f"{done} image(s) analysed, {failures} skipped")
    if done == 0:
        raise typer.Exit(1)


def video(
    file: Annotated[Path, typer.Argument(help="Video file.")],
    out: Annotated[Path | None, typer.Option(help="Write an annotated copy (H.264 .mp4, plays in browsers).")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="One row per face per frame, with timestamps.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the summary over time (tracks, "
                                                                  "segments, timeline) as JSON.")] = None,
    every: EveryOpt = S.every,
    detect_every: DetectEveryOpt = S.detect_every,
    track_gap_s: TrackGapOpt = S.track_gap_s,
    smoothing: SmoothOpt = S.smoothing,
    min_segment_s: MinSegmentOpt = S.min_segment_s,
    scores: Annotated[bool, typer.Option(help="Draw per-face score bars.")] = False,
    blur: Annotated[bool, typer.Option(help="Blur faces in the annotated copy.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    model: ModelOpt = DEFAULTS.model,
    detector: DetectorOpt = DEFAULTS.detector,
    min_confidence: ConfOpt = DEFAULTS.min_confidence,
    max_side: MaxSideOpt = DEFAULTS.max_side,
) -> None:
    """Analyse a video file: faces tracked across frames, expressions summarised per track and over time."""
    from moodlens.stream import StreamError, analyze_video

    settings = stream_settings(every=every, detect_every=detect_every, track_gap_s=track_gap_s,
                               smoothing=smoothing, min_segment_s=min_segment_s)
    analyzer = _analyzer(model, detector, min_confidence, max_side)
    try:
        summary = analyze_video(file, analyzer, out=out, csv_path=csv_path, json_path=json_path, scores=scores,
                                blur=blur, progress=progress, settings=settings)
    except StreamError as exc:
        raise fail(str(exc)) from exc
    _report(summary)


def camera(
    index: Annotated[str, typer.Option(help="Camera number, a stream URL (rtsp://, http(s)://) or a video file.")
                     ] = "0",
    headless: Annotated[bool, typer.Option(help="No window: analyse and write results only.")] = False,
    out: Annotated[Path | None, typer.Option(help="Record an annotated copy (H.264 .mp4).")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="One row per face per frame, with timestamps.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the summary over time as JSON at the end.")]
    = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after reading this many frames.")] = None,
    every: EveryOpt = S.every,
    detect_every: DetectEveryOpt = S.detect_every,
    track_gap_s: TrackGapOpt = S.track_gap_s,
    smoothing: SmoothOpt = S.smoothing,
    min_segment_s: MinSegmentOpt = S.min_segment_s,
    open_timeout_s: OpenTimeoutOpt = S.open_timeout_s,
    max_offline_s: MaxOfflineOpt = S.max_offline_s,
    drop_late_frames: DropLateOpt = S.drop_late_frames,
    scores: Annotated[bool, typer.Option(help="Draw per-face score bars.")] = False,
    model: ModelOpt = DEFAULTS.model,
    detector: DetectorOpt = DEFAULTS.detector,
    min_confidence: ConfOpt = DEFAULTS.min_confidence,
    max_side: MaxSideOpt = DEFAULTS.max_side,
) -> None:
    """Live camera or stream: a window with boxes, labels and FPS (q or Esc quits), or --headless to write
    results. A stream that drops is reopened with backoff; Ctrl-C stops."""
    from moodlens.stream import StreamError, run_camera

    if headless and not (csv_path or json_path or out):
        typer.secho("note: --headless without --csv/--json/--out only prints the summary at the end", err=True)
    settings = stream_settings(every=every, detect_every=detect_every, track_gap_s=track_gap_s,
                               smoothing=smoothing, min_segment_s=min_segment_s, open_timeout_s=open_timeout_s,
                               max_offline_s=max_offline_s, drop_late_frames=drop_late_frames)
    analyzer = _analyzer(model, detector, min_confidence, max_side)
    try:
        summary = run_camera(index, analyzer, headless=headless, out=out, csv_path=csv_path, json_path=json_path,
                             scores=scores, max_frames=max_frames, settings=settings)
    except StreamError as exc:
        raise fail(str(exc)) from exc
    _report(summary)


def _report(summary) -> None:  # noqa: ANN001 - StreamSummary, imported lazily
    from moodlens.stream.summary import describe_segments

    data = summary.to_dict()
    o = data["overall"]
    text = f"{terminal_text(data['source'])}: {data['frames']} frames, {o['tracks']} face track(s)"
    if data["frames_dropped"]:
        text += f", {data['frames_dropped']} frames dropped (analysis behind the source)"
    typer.echo(text)
    for t in data["tracks"]:
        typer.echo(f"  track {t['track_id']}: {t['first_s']:.1f}-{t['last_s']:.1f} s, {t['frames']} frames, "
                   f"{t['emotion']} {t['scores'][t['emotion']]:.0%}; {describe_segments(t['segments'])}")
    if o["segments"]:
        typer.echo(f"  over time: {describe_segments(o['segments'])}")
    for gap in data["offline"]:
        typer.echo(f"  offline from {gap['from']} to {gap['to'] or 'the end'} ({gap['reason']})")
    if data["ended_early"]:
        typer.secho(f"warning: ended early: {terminal_text(data['ended_early'])}", fg="yellow", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("analyze")(analyze)
    app.command("video")(video)
    app.command("camera")(camera)
