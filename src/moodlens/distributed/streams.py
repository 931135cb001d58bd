"""Camera fleets and sets of videos on a Ray cluster: one actor per source runs the stream engine into the event store.

:func:`ingest_streams_on_ray` is :func:`moodlens.events.stream_ingest.ingest_streams` with every source in a Ray
actor of its own (:class:`SourceIngest`): an Analyzer built once per actor from the settings passed whole, the
source, and the event store's sink, which commits the source's rows together with its resume cursor. This process
only starts the actors, shows each source's progress, stops them on Ctrl-C or ``stop`` (each commits its last
batch) and collects each source's :class:`~moodlens.events.ingest.IngestResult`.

The store: every actor opens it itself, so it must be one they all reach. PostgreSQL, or SQLite with a local
cluster only (``local``, one machine: every actor opens the same file, SQLite lets one writer commit at a time
and each source commits about once a second, far below what it takes). Any other address with SQLite is refused.

A killed actor (its process crashed or was killed, its machine lost) is restarted by Ray, at most
``MAX_RESTARTS`` times per source, and its unfinished run is retried on the new process: it resumes from the
source's last commit exactly as running the same ingest again does.

* A video file goes back to its last quiet frame at or before the last commit (no track alive there) and replays
  from it: the source ends with the same observations, people and faces as an uninterrupted ingest.
* A live source (camera index, stream URL) continues its frame numbering after the last commit: nothing committed
  is repeated or removed. Not recorded: the frames analysed after the last commit (at most ``commit_interval_s``
  seconds of them) and the frames the camera showed while no process read it (the restart: a new process, its
  models loaded, the stream reopened); a person in view across the restart is counted as two people. With
  ``max_frames``, the restarted actor reads what is left of that many frames.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from moodlens.distributed.cluster import LOCAL, ClusterError, import_ray, parse_address, ray_cluster
from moodlens.distributed.photos import root_cause
from moodlens.events.ingest import IngestResult
from moodlens.events.store import EventStore, normalize_db_url
from moodlens.events.store_errors import StoreError
from moodlens.recognition.faces import Faces
from moodlens.settings import STREAM_DEFAULTS, VIDEO_DEFAULTS, AnalysisSettings, StreamSettings
from moodlens.stream.frames import Frame, StreamError
from moodlens.stream.sinks import Sink
from moodlens.stream.sources import RECONNECT_BACKOFF_S, is_url, redact_url
from moodlens.textsafe import terminal_text

if TYPE_CHECKING:
    from moodlens.stream.engine import Stream

#: Restarts of one source's actor after its process died; a source that kills its process every time
#: (a decoder crash on a broken file) then fails the ingest instead of looping.
MAX_RESTARTS = 3
#: Calls an actor serves at once: its run, and progress and stop requests while it runs.
ACTOR_CONCURRENCY = 4
#: Seconds between progress updates (and checks for finished sources and Ctrl-C).
POLL_S = 0.5
#: How long all actors may take to start and open their sources (placement, models, streams).
START_TIMEOUT_S = 180.0
#: How long stopped sources may take to commit their last batch before their actors are killed.
STOP_GRACE_S = 60.0
#: Seconds between repeated stop requests (one sent to an actor being restarted would be lost).
STOP_RESEND_S = 2.0
#: Errors that are the user's sources, event, options or store: their message is the user's error line, as
#: without Ray.
USER_ERRORS = (StreamError, ValueError, LookupError, StoreError)


@dataclass(frozen=True)
class SourceSpec:
    """One source as given: ``video`` (an absolute path every worker must see) or ``camera`` (index or URL)."""

    kind: str
    spec: str

    @property
    def display(self) -> str:
        return terminal_text(redact_url(self.spec) if self.kind == "camera" else Path(self.spec).name)


@dataclass(frozen=True)
class IngestJob:
    """Everything an actor needs besides its source, passed whole to every actor."""

    db: str
    event: str
    analysis: AnalysisSettings
    settings: StreamSettings
    start: datetime | None
    commit_interval_s: float
    max_frames: int | None


@dataclass(frozen=True)
class Opened:
    """A source opened by its actor: its name, the frame it starts (or resumes) from, its length if known, and
    for a video ingested completely before, its result (nothing to run)."""

    label: str
    first_frame: int
    total: int | None
    finished: IngestResult | None = None


@dataclass
class Progress(Sink):
    """What a source's actor has done in its current process: the next frame, faces and people (tracks) seen,
    frames dropped; ``restarted`` when Ray restarted the actor, which resumed at ``first_frame`` (``None`` until
    the source is open)."""

    first_frame: int | None = None
    position: int = 0
    faces: int = 0
    dropped: int = 0
    restarted: bool = False
    _people: set[int] = field(default_factory=set, repr=False)

    @property
    def people(self) -> int:
        return len(self._people)

    def write(self, frame: Frame, faces: Faces) -> None:
        self.position = frame.index + 1
        self.faces += len(faces)
        self.dropped = frame.dropped
        self._people.update(faces.track_ids.tolist())

    def snapshot(self) -> Progress:
        return Progress(self.first_frame, self.position, self.faces, self.dropped, self.restarted,
                        set(self._people))


def analysed_frames(first: int, end: int, every: int) -> int:
    """Frames a live source yields for analysis among those numbered ``first`` .. ``end - 1`` (every ``every``-th)."""
    return max(0, (end - 1) // every - (first - 1) // every)


def _was_restarted() -> bool:
    ray = import_ray()
    with warnings.catch_warnings():  # Ray warns about its own use of a deprecated name in this property
        warnings.simplefilter("ignore")
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)


class SourceIngest:
    """One source's ingest in a process of its own (a Ray actor): :meth:`open`, then :meth:`run` until the source
    ends or :meth:`stop`. A restarted actor (same arguments, new process) opens the source again from the store's
    resume cursor when its retried :meth:`run` begins."""

    def __init__(self, job: IngestJob, source: SourceSpec) -> None:
        from moodlens.recognition.analyzer import Analyzer

        self.job, self.source = job, source
        self.analyzer = Analyzer(job.analysis)
        self.store = EventStore(job.db, create=False)  # the caller created the tables
        self.progress_sink = Progress(restarted=_was_restarted())
        self._halt = threading.Event()
        self._streams: list[Stream] | None = None
        self._result: IngestResult | None = None

    def _open_streams(self) -> tuple[list[Stream], list[IngestResult]]:
        """The source opened as ``ingest_streams`` opens it. A camera that a restarted actor cannot reopen at
        once is offline, as if it had dropped: tried again with the live sources' backoff until it answers,
        the ingest is stopped, or ``max_offline_s`` passed."""
        from moodlens.events.stream_ingest import open_streams

        job, video = self.job, self.source.kind == "video"
        delay, longest = RECONNECT_BACKOFF_S
        since = time.monotonic()
        while True:
            try:
                return open_streams(
                    self.store, job.event, [self.source.spec] if video else [], [] if video else [self.source.spec],
                    self.analyzer, settings=job.settings, start=job.start, commit_interval_s=job.commit_interval_s,
                    progress=False, max_frames=job.max_frames)
            except StreamError:
                limit = job.settings.max_offline_s
                if video or not self.progress_sink.restarted or (
                        limit is not None and time.monotonic() - since > limit) or self._halt.wait(delay):
                    raise
                delay = min(2 * delay, longest)

    def _open(self) -> tuple[list[Stream], IngestResult]:
        if self._streams is None:
            video = self.source.kind == "video"
            streams, [result] = self._open_streams()
            for stream in streams:
                stream.sinks = [*stream.sinks, self.progress_sink]
                first = stream.source.start if video else stream.source.first_index
                self.progress_sink.first_frame = self.progress_sink.position = first
            self._streams, self._result = streams, result
        return self._streams, self._result

    def open(self) -> Opened:
        streams, result = self._open()
        if not streams:
            return Opened(result.source, 0, None, finished=result)
        info = streams[0].source.info
        return Opened(info.name, self.progress_sink.first_frame or 0, info.frames)

    def run(self, first_frame: int) -> IngestResult:
        """Analyse the source into the store. ``first_frame``: where the ingest began (:meth:`open`), so that a
        restarted actor reads only what is left of ``max_frames``."""
        streams, result = self._open()
        try:
            if streams and self.source.kind == "camera" and self.job.max_frames is not None:
                done = analysed_frames(first_frame, self.progress_sink.first_frame or 0, self.job.settings.every)
                streams[0].max_frames = self.job.max_frames - done
                if streams[0].max_frames <= 0:  # the process that died had read them all
                    streams[0].source.close()
                    return result
            if streams:
                from moodlens.stream.engine import run_streams

                run_streams(streams, self.analyzer, self._halt)
            return result
        finally:
            self.store.close()

    def progress(self) -> Progress:
        return self.progress_sink.snapshot()

    def stop(self) -> None:
        """End the run cleanly: what was analysed is committed."""
        self._halt.set()


def source_specs(videos: Sequence[str | Path], cameras: Sequence[int | str], address: str) -> list[SourceSpec]:
    """The sources as actors get them: video paths made absolute (workers do not share this working folder);
    camera indices only on a local cluster (an index names a device of whichever machine runs the actor)."""
    specs = [SourceSpec("video", str(Path(v).expanduser().resolve())) for v in videos]
    for camera in cameras:
        text = str(camera).strip()
        if address != LOCAL and not is_url(text):
            raise ValueError(f"--camera {redact_url(text)!r}: on a Ray cluster give cameras as stream URLs "
                             "(rtsp://, http(s)://) that every worker reaches; a camera index names a device of "
                             "one machine (use it with --ray local)")
        specs.append(SourceSpec("camera", text))
    seen: set[SourceSpec] = set()
    for spec in specs:
        if spec in seen:
            raise ValueError(f"{spec.display} is given twice: each source is ingested by one actor")
        seen.add(spec)
    return specs


def check_store(db_url: str, address: str) -> None:
    """Every actor opens the store: refuse one they cannot share (see the module doc)."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        return
    if url.database in (None, "", ":memory:"):
        raise ValueError("an in-memory SQLite database cannot be shared by Ray actors; give a PostgreSQL URL "
                         "(or a SQLite file with --ray local)")
    if address != LOCAL:
        raise ValueError(f"a SQLite file is on one machine; the Ray cluster at {address} needs a PostgreSQL "
                         "store that every worker reaches: --db postgresql://USER@HOST/DB (see docs/scaling.md)")


def source_share(node_cpus: Sequence[float], sources: int) -> float:
    """The CPUs each source's actor reserves: an equal share, at most 1, such that all actors fit on the nodes
    at once (a live source cannot wait for a free CPU). In Ray's resource units (1/10,000)."""
    best = 0.0
    for cpus in node_cpus:
        for k in range(1, sources + 1):
            share = math.floor(min(1.0, cpus / k) * 10_000) / 10_000
            if share > 0 and sum(int(c / share + 1e-9) for c in node_cpus) >= sources:
                best = max(best, share)
    if best <= 0:
        raise ClusterError("the Ray cluster has no CPUs to run on")
    return best


class _Fleet:
    """The driver's side: one actor per source, each run started as soon as its source is open (a camera left
    unread while others start would send its backlog in a burst), progress bars, stopping and collecting."""

    def __init__(self, job: IngestJob, sources: list[SourceSpec], share: float, progress: bool,
                 stop: threading.Event) -> None:
        self.ray = import_ray()
        self.sources, self.show, self.stop = sources, progress, stop
        remote = self.ray.remote(SourceIngest).options(
            num_cpus=share, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS,
            max_concurrency=ACTOR_CONCURRENCY, scheduling_strategy="SPREAD")
        self.actors = [remote.remote(job, source) for source in sources]
        self.results: list[IngestResult | None] = [None] * len(sources)
        self.opening = {actor.open.remote(): i for i, actor in enumerate(self.actors)}
        self.running: dict[Any, int] = {}
        self.started = False
        self.failure: Exception | None = None
        self.bars: dict[int, Any] = {}
        self.polls: dict[int, Any] = {}
        self.restarts_seen: set[int] = set()
        self._stop_sent = -math.inf

    def run(self) -> list[IngestResult]:
        try:
            try:
                self._wait()
            except KeyboardInterrupt:  # Ctrl-C (or SIGTERM mapped to it): stop every source, each commits
                self.stop.set()
                self._wait()
            if self.failure is not None:
                raise self.failure
            return [r for r in self.results if r is not None]
        finally:
            for bar in self.bars.values():
                bar.close()
            for actor in self.actors:  # every run has returned (or failed) by now: nothing left to commit
                self.ray.kill(actor)

    def _wait(self) -> None:
        """Until every source has returned: sources must open within START_TIMEOUT_S, and stop within
        STOP_GRACE_S of being told to."""
        start_deadline, stop_deadline = time.monotonic() + START_TIMEOUT_S, None
        while self.opening or self.running:
            now = time.monotonic()
            if self.opening and now > start_deadline:
                self._fail(None, ClusterError(f"{len(self.opening)} of {len(self.sources)} sources did not start "
                                              f"on the Ray cluster within {START_TIMEOUT_S:g} s (its CPUs busy "
                                              "with other work?)"))
                for i in self.opening.values():
                    self.ray.kill(self.actors[i])
                self.opening.clear()
            if self.stop.is_set():
                stop_deadline = stop_deadline or now + STOP_GRACE_S
                self._send_stop()
                if now > stop_deadline:
                    raise ClusterError(f"{len(self.running) + len(self.opening)} source(s) did not stop within "
                                       f"{STOP_GRACE_S:g} s; their last batch may be lost (run the same command to "
                                       "resume from the last commit)")
            pending = [*self.opening, *self.running]
            done, _ = self.ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
            for ref in done:
                if ref in self.opening:
                    self._opened(self.opening.pop(ref), ref)
                else:
                    self._finished(self.running.pop(ref), ref)
            self._show_progress()

    def _opened(self, i: int, ref: Any) -> None:
        try:
            opened: Opened = self.ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - the source's own error, or Ray's, as one line
            self._fail(i, exc)
            return
        if opened.finished is not None:
            self.results[i] = opened.finished
            return
        self.running[self.actors[i].run.remote(opened.first_frame)] = i
        self.started = True
        if self.show:
            from tqdm import tqdm

            self.bars[i] = tqdm(total=opened.total, initial=opened.first_frame, unit="frame", position=i,
                                desc=terminal_text(opened.label), file=sys.stderr)
            self.polls[i] = self.actors[i].progress.remote()

    def _finished(self, i: int, ref: Any) -> None:
        try:
            self.results[i] = self.ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - one line for the user, after the others stopped
            self._fail(i, exc)
        self._last_progress(i)

    def _fail(self, i: int | None, exc: Exception) -> None:
        """Keep the first failure (of source ``i``) and stop every other source; it is raised as one
        :class:`ClusterError` line when all have returned."""
        if self.failure is None:
            cause = getattr(exc, "cause", None)
            if isinstance(exc, ClusterError):
                text = str(exc)
            elif isinstance(cause, USER_ERRORS):  # the source's own error, as without Ray
                text = str(cause)
            else:
                text = f"failed on the Ray cluster: {root_cause(exc)}"
            tail = "; the other sources stopped and committed what they analysed" if self.started else ""
            name = self.sources[i].display if i is not None else None
            self.failure = ClusterError(f"{name}: {text}{tail}" if name and name not in text else f"{text}{tail}")
        self.stop.set()

    def _send_stop(self) -> None:
        if time.monotonic() - self._stop_sent >= STOP_RESEND_S:  # again later: a restarting actor loses it
            for i in [*self.opening.values(), *self.running.values()]:
                self.actors[i].stop.remote()
            self._stop_sent = time.monotonic()

    def _show_progress(self) -> None:
        for i, ref in list(self.polls.items()):
            if self.ray.wait([ref], timeout=0)[0]:
                self._update_bar(i, ref)
                self.polls[i] = self.actors[i].progress.remote()

    def _last_progress(self, i: int) -> None:
        """A finished source's bar at its end, with no request left open on its actor."""
        if i in self.polls:
            self._update_bar(i, self.polls.pop(i))
            self._update_bar(i, self.actors[i].progress.remote())

    def _update_bar(self, i: int, ref: Any) -> None:
        try:
            p: Progress = self.ray.get(ref, timeout=STOP_RESEND_S)
        except Exception:  # noqa: BLE001 - the actor is being restarted, or is gone: the next poll tells
            return
        if p.first_frame is None:  # a restarted actor that has not reopened its source yet
            return
        bar = self.bars[i]
        if p.restarted and i not in self.restarts_seen:
            self.restarts_seen.add(i)
            bar.write(f"{bar.desc}: its worker process stopped; Ray restarted it and it resumes from the last "
                      f"commit (frame {p.first_frame})", file=sys.stderr)
        bar.n = p.position
        bar.set_postfix({"people": p.people, **({"dropped": p.dropped} if p.dropped else {})}, refresh=False)
        bar.refresh()


def ingest_streams_on_ray(db: str | Path | None, event: str, videos: Sequence[str | Path] = (),
                          cameras: Sequence[int | str] = (), analysis: AnalysisSettings = VIDEO_DEFAULTS, *,
                          settings: StreamSettings | None = None, address: str | None = LOCAL,
                          num_cpus: int | None = None, start: datetime | None = None, commit_interval_s: float = 1.0,
                          progress: bool = False, stop: threading.Event | None = None, max_frames: int | None = None,
                          **overrides: Any) -> list[IngestResult]:
    """:func:`~moodlens.events.stream_ingest.ingest_streams` on a Ray cluster, one actor per source.

    ``db``: the event store's URL (see the module doc for SQLite). ``analysis``: how each actor's Analyzer finds
    and classifies faces. ``address``: see :mod:`moodlens.distributed.cluster`; ``num_cpus``: CPUs of a local
    cluster. The rest as in ``ingest_streams``: files run to their end, live sources until ``stop``, Ctrl-C,
    ``max_frames`` frames read, the event's end or ``max_offline_s`` offline. Each actor reserves an equal share
    of the cluster's CPUs, at most one, so that every source runs at once. Returns one result per source
    (videos first, in the order given); a killed actor's result covers its last process (from its resume).
    Raises :class:`ClusterError` with one line for the user (a source that cannot be opened: its own message).
    """
    ray = import_ray()
    canonical = parse_address(address)
    sources = source_specs(videos, cameras, canonical)
    url = normalize_db_url(db)
    check_store(url, canonical)
    job = IngestJob(url, event, analysis, (settings or STREAM_DEFAULTS).with_(**overrides), start,
                    commit_interval_s, max_frames)
    from moodlens.events.stream_ingest import check_request

    with EventStore(url) as store:  # the tables are created, and the event checked, once, here
        check_request(store, event, videos, cameras)
    with ray_cluster(canonical, num_cpus=num_cpus) as cluster:
        if make_url(url).get_backend_name() == "sqlite" and cluster.nodes > 1:
            raise ValueError(f"a SQLite file is on one machine; this Ray cluster has {cluster.nodes} nodes and "
                             "needs a PostgreSQL store (--db postgresql://USER@HOST/DB)")
        share = source_share([n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")], len(sources))
        if progress:
            print(f"Ray cluster {cluster.address}: {cluster.cpus} CPU(s) on {cluster.nodes} node(s), "
                  f"{len(sources)} source(s), {share:g} CPU each", file=sys.stderr, flush=True)
        return _Fleet(job, sources, share, progress, stop or threading.Event()).run()
