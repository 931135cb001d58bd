"""``moodlens analyze | video | camera``: thin shells over Analyzer and the stream engine's analyze_video and
run_camera."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from moodlens.cli.errors import check_outputs, fail, user_errors
from moodlens.cli.options import (
    ConfOpt,
    DetectEveryOpt,
    DetectorOpt,
    DropLateOpt,
    EveryOpt,
    MaxOfflineOpt,
    MaxSideOpt,
    MinFaceOpt,
    MinSegmentOpt,
    ModelOpt,
    OpenTimeoutOpt,
    RayOpt,
    SmoothOpt,
    TrackGapOpt,
    analysis_settings,
    stream_settings,
)
from moodlens.distributed.cluster import ClusterError
from moodlens.settings import DEFAULTS, STREAM_DEFAULTS, VIDEO_DEFAULTS, AnalysisSettings, StreamSettings
from moodlens.textsafe import terminal_text
from moodlens.wording import plural

S = STREAM_DEFAULTS


def _analyzer(model: str, detector: str, min_confidence: float, min_face: int, max_side: int,  # noqa: ANN202
              base: AnalysisSettings = DEFAULTS):
    from moodlens.recognition.analyzer import Analyzer
    from moodlens.recognition.detect import DetectorUnavailable

    try:
        return Analyzer(analysis_settings(model, detector, min_confidence, min_face, max_side, base))
    except (DetectorUnavailable, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from exc


def _analysed(paths: list[Path], analyzer, ray: str | None, images: bool):  # noqa: ANN001, ANN202 - lazy imports
    """(path, Faces or ImageError, decoded image or None, (height, width) or None) per path, in input order,
    analysed here or on a Ray cluster; the image only when ``images`` (for drawing)."""
    if not ray:
        for path, faces, image in analyzer.analyze_paths_with_images(paths, progress=True):
            yield path, faces, image, (image.shape[:2] if image is not None else None)
        return
    from moodlens.distributed.photos import analyze_paths_on_ray
    from moodlens.recognition.imageio import ImageError, load_image

    for path, faces, size in analyze_paths_on_ray(paths, analyzer.settings, address=ray, progress=True, sizes=True):
        image = None
        if images and not isinstance(faces, ImageError):
            try:
                image = load_image(path)
            except ImageError as exc:  # changed since a worker read it
                faces = exc
        yield path, faces, image, size


@user_errors(ClusterError)
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
    min_face: MinFaceOpt = DEFAULTS.min_face,
    max_side: MaxSideOpt = DEFAULTS.max_side,
    ray: RayOpt = None,
) -> None:
    """Find every face in photos and classify its expression; files that cannot be analysed (videos, other
    files, unreadable images) are reported with the reason and skipped."""
    from moodlens.cli.photo_outputs import PhotoOutputs
    from moodlens.recognition.inputs import find_inputs

    if ray:  # a missing extra or a malformed address is reported before anything is written
        from moodlens.distributed.cluster import import_ray, parse_address

        import_ray()
        parse_address(ray)
    check_outputs((out, True), (csv_path, False), (json_path, False))
    analyzer = _analyzer(model, detector, min_confidence, min_face, max_side)
    inputs = find_inputs(paths)
    outputs = PhotoOutputs(analyzer, out=out, csv_path=csv_path, scores=scores, blur=blur)
    for index, item in enumerate(inputs):
        if item.skip:
            outputs.skipped(index, item.path, item.skip, item.reason)
    todo = [(k, item.path) for k, item in enumerate(inputs) if not item.skip]
    analysed = _analysed([path for _, path in todo], analyzer, ray, images=out is not None)
    for (index, _), (path, faces, image, size) in zip(todo, analysed, strict=True):
        if isinstance(faces, Exception):
            outputs.skipped(index, path, faces.kind, str(faces).removeprefix(f"{path}: "))
        else:
            outputs.analysed(index, path, size, faces, image)
    results = outputs.close(json_path)
    typer.echo(analysis_summary(results))
    if not results.images:
        raise typer.Exit(1)


def analysis_summary(results) -> str:  # noqa: ANN001 - ImageResults, imported lazily
    """``3 images analysed, 2 skipped (1 video: use `moodlens video`, 1 unreadable image)``."""
    text = f"{plural(len(results.images), 'image')} analysed, {len(results.errors)} skipped"
    kinds = Counter("video" if e.kind == "video" else "other" if e.kind == "not_image" else "bad"
                    for e in results.errors)
    parts = [plural(kinds["video"], "video") + " (use `moodlens video`)" if kinds["video"] else "",
             plural(kinds["other"], "other file") if kinds["other"] else "",
             plural(kinds["bad"], "unreadable image") if kinds["bad"] else ""]
    parts = [p for p in parts if p]
    return text + (f": {', '.join(parts)}" if parts else "")


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
    min_face: MinFaceOpt = VIDEO_DEFAULTS.min_face,
    max_side: MaxSideOpt = DEFAULTS.max_side,
) -> None:
    """Analyse a video file: faces tracked across frames, expressions summarised per track and over time."""
    from moodlens.stream import analyze_video

    settings = stream_settings(every=every, detect_every=detect_every, track_gap_s=track_gap_s,
                               smoothing=smoothing, min_segment_s=min_segment_s)
    analyzer = _analyzer(model, detector, min_confidence, min_face, max_side, VIDEO_DEFAULTS)
    _run_and_report(analyze_video, file, analyzer, settings, out=out, csv_path=csv_path, json_path=json_path,
                    scores=scores, blur=blur, progress=progress)


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
    min_face: MinFaceOpt = VIDEO_DEFAULTS.min_face,
    max_side: MaxSideOpt = DEFAULTS.max_side,
) -> None:
    """Live camera or stream: a window with boxes, labels and FPS (q or Esc quits), or --headless to write
    results. A stream that drops is reopened with backoff; Ctrl-C stops."""
    from moodlens.stream import run_camera

    if headless and not (csv_path or json_path or out):
        typer.secho("note: --headless without --csv/--json/--out only prints the summary at the end", err=True)
    settings = stream_settings(every=every, detect_every=detect_every, track_gap_s=track_gap_s,
                               smoothing=smoothing, min_segment_s=min_segment_s, open_timeout_s=open_timeout_s,
                               max_offline_s=max_offline_s, drop_late_frames=drop_late_frames)
    analyzer = _analyzer(model, detector, min_confidence, min_face, max_side, VIDEO_DEFAULTS)
    _run_and_report(run_camera, index, analyzer, settings, headless=headless, out=out, csv_path=csv_path,
                    json_path=json_path, scores=scores, max_frames=max_frames)


def _run_and_report(run: Callable[..., Any], source: str | Path, analyzer, settings: StreamSettings,  # noqa: ANN001
                    **sinks: Any) -> None:
    """``run(source, analyzer, settings=settings, **sinks)`` (the stream engine's ``analyze_video`` or
    ``run_camera``), then its summary on the terminal; a stream that cannot be read is one error line."""
    from moodlens.stream import StreamError

    try:
        summary = run(source, analyzer, settings=settings, **sinks)
    except StreamError as exc:
        raise fail(str(exc)) from exc
    _report(summary)


def _report(summary) -> None:  # noqa: ANN001 - StreamSummary, imported lazily
    from moodlens.stream.summary import describe_segments

    data = summary.to_dict()
    o = data["overall"]
    text = (f"{terminal_text(str(data['source']))}: {plural(data['frames'], 'frame')}, "
            f"{plural(o['tracks'], 'face track')}")
    if data["frames_dropped"]:
        text += f", {plural(data['frames_dropped'], 'frame')} dropped (analysis behind the source)"
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
