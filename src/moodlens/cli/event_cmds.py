"""Event commands: ``moodlens event create|ingest|report|compare|list|delete|purge``.

Each option is a keyword of the library call it makes (``EventStore`` methods, ``ingest_streams``,
``ingest_photos``, ``build_report``, ``build_comparison``) with the same default.
"""

from __future__ import annotations

import json
import signal
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from moodlens.cli.errors import check_outputs, fail, user_errors
from moodlens.cli.options import (
    ConfOpt,
    DetectEveryOpt,
    DetectorOpt,
    DropLateOpt,
    MaxOfflineOpt,
    MaxSideOpt,
    ModelOpt,
    OpenTimeoutOpt,
    RayOpt,
    TrackGapOpt,
    analysis_settings,
    stream_settings,
)
from moodlens.events.compare import MAX_EVENTS, SEGMENTS
from moodlens.events.report import REPORT_FORMATS
from moodlens.events.store import EventExists, EventNotFound, EventStore
from moodlens.events.store_errors import StoreError
from moodlens.events.timebins import MAX_BINS
from moodlens.settings import DEFAULTS, MIN_GROUP_SIZE, PRIVACY_EPSILON, STREAM_DEFAULTS, VIDEO_DEFAULTS
from moodlens.stream.frames import StreamError
from moodlens.textsafe import terminal_text

if TYPE_CHECKING:
    from moodlens.events.ingest import IngestResult
    from moodlens.settings import AnalysisSettings, StreamSettings

event_app = typer.Typer(help="Private, aggregate feedback for events: ingest streams and photos, write reports.",
                        no_args_is_help=True)

DbOpt = Annotated[str | None, typer.Option(
    "--db", envvar="MOODLENS_DB", show_default=False,
    help="Database: a SQLite file path or URL, or postgresql://user@host/db. "
         "Default: ~/.local/share/moodlens/events.db.")]
NameArg = Annotated[str, typer.Argument(help="Event name.")]


_user_errors = user_errors(EventNotFound, EventExists, FileNotFoundError, NotADirectoryError, ValueError, StreamError,
                           StoreError)


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option}: {value!r} is not an ISO date/time such as 2025-06-01T18:00 or "
                         "2025-06-01T18:00+02:00") from None


@event_app.command("create")
@_user_errors
def create_cmd(
    name: NameArg,
    starts_at: Annotated[str | None, typer.Option("--start", help="Start of the event window (ISO time; "
                                                  "local time unless it has an offset).")] = None,
    ends_at: Annotated[str | None, typer.Option("--end", help="End of the event window (ISO time).")] = None,
    description: Annotated[str, typer.Option(help="Free text shown on the report.")] = "",
    retention_days: Annotated[int | None, typer.Option(help="Days to keep the event's data after it ends; "
                                                       "`moodlens event purge` deletes it afterwards.")] = None,
    db: DbOpt = None,
) -> None:
    """Create an event (a name, an optional time window and retention period)."""
    with EventStore(db) as store:
        store.create_event(name, starts_at=_time(starts_at, "--start"), ends_at=_time(ends_at, "--end"),
                           description=description, retention_days=retention_days)
        typer.echo(f"created event {name!r} in {store}")


@event_app.command("ingest")
@_user_errors
def ingest_cmd(
    name: NameArg,
    video: Annotated[list[Path] | None, typer.Option(help="Video file to analyse (resumes if interrupted); "
                                                          "repeat for several files.")] = None,
    camera: Annotated[list[str] | None, typer.Option(help="Camera index or stream URL (rtsp://, http(s):// MJPEG "
                                                          "or HLS) to analyse until stopped (Ctrl-C); repeat for "
                                                          "several cameras.")] = None,
    photos: Annotated[Path | None, typer.Option(help="Folder of photos (searched recursively).")] = None,
    every: Annotated[int, typer.Option(min=1, help="Analyse every Nth frame (or photo).")] = STREAM_DEFAULTS.every,
    detect_every: DetectEveryOpt = STREAM_DEFAULTS.detect_every,
    track_gap_s: TrackGapOpt = STREAM_DEFAULTS.track_gap_s,
    start: Annotated[str | None, typer.Option(help="Video only: wall-clock time of its first frame (ISO). "
                                              "Default: the event start, else file time minus duration.")] = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Cameras: stop after reading this many frames "
                                                               "from each.")] = None,
    open_timeout_s: OpenTimeoutOpt = STREAM_DEFAULTS.open_timeout_s,
    max_offline_s: MaxOfflineOpt = STREAM_DEFAULTS.max_offline_s,
    drop_late_frames: DropLateOpt = STREAM_DEFAULTS.drop_late_frames,
    model: ModelOpt = DEFAULTS.model,
    detector: DetectorOpt = DEFAULTS.detector,
    min_confidence: ConfOpt = DEFAULTS.min_confidence,
    min_face: Annotated[int | None, typer.Option(min=8, max=4096, show_default=False, help=(
        "Narrowest face to find, in pixels of the image or frame (default: "
        f"{VIDEO_DEFAULTS.min_face} for videos and cameras, {DEFAULTS.min_face} for photos)."))] = None,
    max_side: MaxSideOpt = DEFAULTS.max_side,
    commit_interval_s: Annotated[float, typer.Option(help="Most seconds between database commits.")] = 1.0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    ray: RayOpt = None,
    db: DbOpt = None,
) -> None:
    """Analyse videos, live cameras and stream URLs (several at once, faces classified in shared batches) or a
    photo folder into an event. Frames stay in memory; only per-face numbers (time, anonymous track,
    7 probabilities, box size) are stored. With --ray, each video and camera runs in its own Ray actor
    (docs/scaling.md); the store must then be PostgreSQL, or SQLite with --ray local."""
    videos, cameras = list(video or []), list(camera or [])
    _check_sources(photos, videos, cameras, ray)
    from moodlens.recognition.analyzer import Analyzer

    base = DEFAULTS if photos is not None else VIDEO_DEFAULTS
    analysis = analysis_settings(model, detector, min_confidence, min_face or base.min_face, max_side, base)
    settings = stream_settings(every=every, detect_every=detect_every, track_gap_s=track_gap_s,
                               open_timeout_s=open_timeout_s, max_offline_s=max_offline_s,
                               drop_late_frames=drop_late_frames)
    # SIGTERM (service stop, `kill`) ends the ingest like Ctrl-C: the last batch is committed first.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if cameras:
        typer.echo("analysing live sources; press Ctrl-C to stop", err=True)
    if ray:
        results = _ingest_on_ray(db, name, videos, cameras, analysis, settings, ray, start=_time(start, "--start"),
                                 commit_interval_s=commit_interval_s, progress=progress, max_frames=max_frames)
    else:
        with EventStore(db) as store:
            if photos is not None:
                from moodlens.events.ingest import ingest_photos

                results = [ingest_photos(store, name, photos, every=every, analyzer=Analyzer(analysis),
                                         commit_interval_s=commit_interval_s, progress=progress)]
            else:
                from moodlens.events.stream_ingest import ingest_streams

                results = ingest_streams(store, name, videos, cameras, Analyzer(analysis), settings=settings,
                                         start=_time(start, "--start"), commit_interval_s=commit_interval_s,
                                         progress=progress, max_frames=max_frames)
    _print_results(results)


def _check_sources(photos: Path | None, videos: list[Path], cameras: list[str], ray: str | None) -> None:
    """One kind of ingest per command: streams (with or without --ray) or a photo folder."""
    if photos is not None and (videos or cameras):
        raise ValueError("--photos cannot be combined with --video or --camera; run them as separate ingests")
    if photos is None and not (videos or cameras):
        raise ValueError("give exactly one of --video FILE, --camera INDEX|URL (both repeatable) or --photos DIR")
    if photos is not None and ray:
        raise ValueError("--ray runs --video and --camera sources; analyse photo archives on Ray with "
                         "`moodlens analyze PATH --ray ADDRESS`")


def _print_results(results: list[IngestResult]) -> None:
    """Each source's summary on stdout, after the items it skipped (on stderr)."""
    for result in results:
        for _name, reason, _kind in result.errors:
            typer.secho(f"skipped {terminal_text(reason)}", fg="yellow", err=True)
        typer.echo(terminal_text(result.summary()))


def _ingest_on_ray(db: str | None, name: str, videos: list[Path], cameras: list[str], analysis: AnalysisSettings,
                   settings: StreamSettings, address: str, **options: Any) -> list[IngestResult]:
    """``ingest_streams_on_ray``, with its one-line cluster errors; Ctrl-C and SIGTERM stop every source."""
    from moodlens.distributed.cluster import ClusterError
    from moodlens.distributed.streams import ingest_streams_on_ray

    try:
        return ingest_streams_on_ray(db, name, videos, cameras, analysis, settings=settings, address=address,
                                     **options)
    except ClusterError as exc:
        raise fail(str(exc)) from None


ALL_FORMATS = ",".join(REPORT_FORMATS)
FormatOpt = Annotated[str, typer.Option("--format", help=f"Comma-separated: {ALL_FORMATS}.")]
MinGroupOpt = Annotated[int, typer.Option(help="Groups with fewer people are not broken out.")]
FallbackModelOpt = Annotated[str, typer.Option(
    help="Only for sources ingested before moodlens recorded each source's model: the model whose card "
         "gives their accuracy and caveats.")]


def _print_written(paths: list[Path], summary: list[str]) -> None:
    for path in paths:
        typer.echo(f"wrote {terminal_text(str(path))}")
    for line in summary:
        typer.echo(terminal_text(line))


@event_app.command("report")
@_user_errors
def report_cmd(
    name: NameArg,
    out: Annotated[Path, typer.Option(help="Folder for report.html / report.json / CSV files.")],
    formats: FormatOpt = ALL_FORMATS,
    min_group_size: MinGroupOpt = MIN_GROUP_SIZE,
    bin_minutes: Annotated[int | None, typer.Option(
        help="Width of the time bins, in minutes. Default: chosen for the event (1 min ... 1 day, at most "
             f"{MAX_BINS} bins).")] = None,
    model: FallbackModelOpt = "default",
    epsilon: Annotated[float, typer.Option(min=0.01, help="Privacy budget of each group's released shares "
                                                          "(smaller: more noise, more privacy).")] = PRIVACY_EPSILON,
    db: DbOpt = None,
) -> None:
    """Write the event's aggregate report (self-contained HTML, CSV, JSON)."""
    from moodlens.events.report import build_report, parse_formats
    from moodlens.events.report_files import write_report

    formats = parse_formats(formats)
    check_outputs((out, True))
    with EventStore(db) as store:
        report = build_report(store, name, min_group_size=min_group_size, bin_minutes=bin_minutes, model=model,
                              epsilon=epsilon)
    _print_written(write_report(report, out, formats), report.data["summary"])
    typer.echo(report.data["definitions"]["valence_index"])


@event_app.command("compare")
@_user_errors
def compare_cmd(
    names: Annotated[list[str], typer.Argument(help=f"Two to {MAX_EVENTS} event names.")],
    out: Annotated[Path, typer.Option(help="Folder for comparison.html / comparison.json / CSV files.")],
    formats: FormatOpt = ALL_FORMATS,
    min_group_size: MinGroupOpt = MIN_GROUP_SIZE,
    segments: Annotated[int, typer.Option(min=1, max=100, help="Equal parts each event's time is cut into.")
                        ] = SEGMENTS,
    model: FallbackModelOpt = "default",
    db: DbOpt = None,
) -> None:
    """Compare events side by side: people, expression mix, valence over event time, sources."""
    from moodlens.events.compare import build_comparison
    from moodlens.events.report import parse_formats
    from moodlens.events.report_files import write_comparison

    formats = parse_formats(formats)
    check_outputs((out, True))
    with EventStore(db) as store:
        comparison = build_comparison(store, names, min_group_size=min_group_size, segments=segments, model=model)
    _print_written(write_comparison(comparison, out, formats), comparison.data["summary"])


@event_app.command("list")
@_user_errors
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    db: DbOpt = None,
) -> None:
    """List events with their people, faces and sources."""
    with EventStore(db) as store:
        events = store.list_events()
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in events], indent=2))
        return
    if not events:
        typer.echo("no events")
        return
    typer.echo(f"{'name':<24} {'people':>7} {'faces':>8} {'sources':>7}  last seen (UTC)")
    for e in events:
        last = e.last_seen.isoformat(sep=" ", timespec="seconds") if e.last_seen else "-"
        typer.echo(f"{terminal_text(e.name):<24} {e.people:>7} {e.faces:>8} {e.sources:>7}  {last}")


@event_app.command("delete")
@_user_errors
def delete_cmd(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOpt = None,
) -> None:
    """Delete an event and all its observations."""
    with EventStore(db) as store:
        store.get_event(name)
        if not yes:
            typer.confirm(f"delete event {name!r} and all its observations?", abort=True)
        n = store.delete_event(name)
    typer.echo(f"deleted event {name!r} ({n} observations)")


@event_app.command("purge")
@_user_errors
def purge_cmd(
    older_than_days: Annotated[float | None, typer.Option(help="Also delete every event whose data is older "
                                                          "than this many days.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Only list what would be deleted.")] = False,
    db: DbOpt = None,
) -> None:
    """Delete events past their retention period (set with `event create --retention-days`)."""
    with EventStore(db) as store:
        names = (store.expired_events(older_than_days) if dry_run else store.purge(older_than_days))
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb} {len(names)} event(s)" + (": " + ", ".join(map(terminal_text, names)) if names else ""))


def register(app: typer.Typer) -> None:
    """Add the ``event`` command group to ``app``."""
    app.add_typer(event_app, name="event")
