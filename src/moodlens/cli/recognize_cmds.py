"""``moodlens analyze | video | camera``: thin shells over Analyzer, analyze_video and run_camera."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from moodlens.cli.errors import fail
from moodlens.cli.options import ConfOpt, DetectorOpt, MaxSideOpt, ModelOpt, analysis_settings
from moodlens.settings import DEFAULTS
from moodlens.textsafe import terminal_text

EveryOpt = Annotated[int, typer.Option(min=1, help="Run the detector every N frames; track in between.")]
SmoothOpt = Annotated[float, typer.Option(min=0.01, max=1.0, help="Weight of the newest frame per track (1 = off).")]


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

    from moodlens.recognition.annotate import annotate
    from moodlens.video import FACE_FIELDS, CsvWriter

    analyzer = _analyzer(model, detector, min_confidence, max_side)
    results, failures = [], 0
    rows = CsvWriter(csv_path, ["file", *FACE_FIELDS]) if csv_path else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    for path, faces, image in analyzer.analyze_paths_with_images(paths, progress=True):
        if isinstance(faces, Exception):
            failures += 1
            typer.secho(f"skipped {terminal_text(str(faces))}", fg="yellow", err=True)
            results.append({"file": str(path), "error": str(faces)})
            continue
        results.append({"file": str(path), "faces": faces.to_list()})
        if rows:
            rows.write_rows(faces.to_records(file=str(path)))
        summary = ", ".join(f"{f.emotion} {f.confidence:.0%}" for f in faces) or "no face"
        typer.echo(f"{terminal_text(str(path))}: {len(faces)} face(s): {summary}")
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
    out: Annotated[Path | None, typer.Option(help="Write an annotated copy (.mp4).")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="One row per face per frame, with timestamps.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the per-track summary as JSON.")] = None,
    every: EveryOpt = 1,
    smoothing: SmoothOpt = 0.4,
    scores: Annotated[bool, typer.Option(help="Draw per-face score bars.")] = False,
    blur: Annotated[bool, typer.Option(help="Blur faces in the annotated copy.")] = False,
    model: ModelOpt = DEFAULTS.model,
    detector: DetectorOpt = DEFAULTS.detector,
    min_confidence: ConfOpt = DEFAULTS.min_confidence,
    max_side: MaxSideOpt = DEFAULTS.max_side,
) -> None:
    """Analyse a video file: faces tracked across frames, per-track and overall summary."""
    from moodlens.video import VideoError, analyze_video

    analyzer = _analyzer(model, detector, min_confidence, max_side)
    try:
        summary = analyze_video(file, analyzer, out=out, csv_path=csv_path, every=every, smoothing=smoothing,
                                scores=scores, blur=blur)
    except VideoError as exc:
        raise fail(str(exc)) from exc
    _report(summary, json_path)


def camera(
    index: Annotated[str, typer.Option(help="Camera number, or a stream URL.")] = "0",
    headless: Annotated[bool, typer.Option(help="No window: analyse and write results only.")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="One row per face per frame, with timestamps.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the per-track summary as JSON at the end.")]
    = None,
    max_frames: Annotated[int | None, typer.Option(help="Stop after this many frames.")] = None,
    every: EveryOpt = 1,
    smoothing: SmoothOpt = 0.4,
    scores: Annotated[bool, typer.Option(help="Draw per-face score bars.")] = False,
    model: ModelOpt = DEFAULTS.model,
    detector: DetectorOpt = DEFAULTS.detector,
    min_confidence: ConfOpt = DEFAULTS.min_confidence,
    max_side: MaxSideOpt = DEFAULTS.max_side,
) -> None:
    """Live camera: a window with boxes, labels and FPS (q or Esc quits), or --headless to write results."""
    from moodlens.video import VideoError, run_camera

    if headless and not (csv_path or json_path):
        typer.secho("note: --headless without --csv/--json only prints the summary at the end", err=True)
    analyzer = _analyzer(model, detector, min_confidence, max_side)
    try:
        summary = run_camera(index, analyzer, headless=headless, csv_path=csv_path, every=every,
                             smoothing=smoothing, scores=scores, max_frames=max_frames)
    except VideoError as exc:
        raise fail(str(exc)) from exc
    _report(summary, json_path)


def _report(summary, json_path: Path | None) -> None:  # noqa: ANN001 - VideoSummary, imported lazily
    data = summary.to_dict()
    if json_path:
        json_path.write_text(json.dumps(data, indent=2))
    o = data["overall"]
    typer.echo(f"{terminal_text(str(data['source']))}: {data['frames']} frames, {o['tracks']} face track(s)")
    for t in data["tracks"]:
        typer.echo(f"  track {t['track_id']}: {t['first_s']:.1f}-{t['last_s']:.1f} s, {t['frames']} frames, "
                   f"{t['emotion']} {t['scores'][t['emotion']]:.0%}")
    if data["ended_early"]:
        typer.secho(f"warning: ended early: {data['ended_early']}", fg="yellow", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("analyze")(analyze)
    app.command("video")(video)
    app.command("camera")(camera)
