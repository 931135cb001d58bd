"""``EventStore``: events, their sources and per-face observations in SQLAlchemy.

SQLite (one file, nothing to install) is the default; PostgreSQL is used when the
URL says so (``postgresql://...``, driven by psycopg 3). An observation holds only
a timestamp, the source, an anonymous per-source track number, the 7 expression
probabilities and the box size: never face pixels, box positions or anything that
could re-identify a person.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from moodlens.events.names import MAX_NAME_LENGTH, check_description, check_event_name
from moodlens.events.store_errors import check_backend, database_errors
from moodlens.spec import EMOTIONS

#: Column names of the 7 probabilities, in :data:`moodlens.spec.EMOTIONS` order.
PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{e}" for e in EMOTIONS)
SOURCE_KINDS = ("video", "camera", "photos", "upload")
#: The longest retention period an event may have (100 years): dates and the database's integers hold it.
MAX_RETENTION_DAYS = 36_500

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Current time as naive UTC: every timestamp in the store is naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc_naive(value: datetime) -> datetime:
    """Aware datetimes are converted to UTC; naive ones are taken as local time."""
    if value.tzinfo is None:
        value = value.astimezone()
    return value.astimezone(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime | None] = mapped_column(DateTime)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)
    retention_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Source(Base):
    """One stream or photo batch of an event; also the resume cursor of its ingest."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("event_id", "kind", "uri"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    uri: Mapped[str] = mapped_column(String(1000))
    label: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    fps: Mapped[float | None] = mapped_column(Float)
    every: Mapped[int] = mapped_column(Integer, default=1)
    track_gap_s: Mapped[float | None] = mapped_column(Float)
    #: How this source's faces were linked into tracks (printed on the report).
    tracking: Mapped[str] = mapped_column(String(500), default="")
    #: Model that produced the probabilities (its card name or file name).
    model: Mapped[str] = mapped_column(String(200), default="")
    #: Its card's version, the SHA-256 of its ONNX file and a JSON snapshot of its measured metrics
    #: (``moodlens.events.model_facts``), so reports keep this model's facts after a new release.
    model_version: Mapped[str | None] = mapped_column(String(100))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    model_metrics: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Index of the next frame (or photo) to process; everything before it is committed.
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    frames_total: Mapped[int | None] = mapped_column(Integer)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Video and camera: the detector ran on one analysed frame in this many (boxes followed in between).
    detect_every: Mapped[int | None] = mapped_column(Integer)
    #: Live sources: frames dropped because analysis fell behind.
    frames_dropped: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SourceOutage(Base):
    """An interval during which a live source (camera, stream URL) delivered no frames and was being reopened."""

    __tablename__ = "source_outages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    #: ``None`` while the source is still offline (or the ingest stopped during the outage).
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(String(300), default="")


class Observation(Base):
    """One face in one frame or photo."""

    __tablename__ = "observations"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    frame: Mapped[int] = mapped_column(Integer)
    ts: Mapped[datetime] = mapped_column(DateTime, index=True)
    #: Anonymous person number, unique within the source only.
    track: Mapped[int] = mapped_column(Integer)
    box_w: Mapped[int] = mapped_column(Integer)
    box_h: Mapped[int] = mapped_column(Integer)
    p_angry: Mapped[float] = mapped_column(Float)
    p_disgust: Mapped[float] = mapped_column(Float)
    p_fear: Mapped[float] = mapped_column(Float)
    p_happy: Mapped[float] = mapped_column(Float)
    p_sad: Mapped[float] = mapped_column(Float)
    p_surprise: Mapped[float] = mapped_column(Float)
    p_neutral: Mapped[float] = mapped_column(Float)


assert tuple(c.name for c in Observation.__table__.columns if c.name.startswith("p_")) == PROB_COLUMNS


class GroupRelease(Base):
    """The expression mix last released for one group of an event, with the noise it got.

    Kept so that the same data always gets the same noisy numbers (reloading a report cannot average the
    noise away) and so that the number of versions released is known; see ``moodlens.events.privacy``.
    """

    __tablename__ = "group_releases"
    __table_args__ = (UniqueConstraint("event_id", "group_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    group_key: Mapped[str] = mapped_column(String(200))
    #: Hash of the group's data (and the budget) this release was made from.
    fingerprint: Mapped[str] = mapped_column(String(64))
    people: Mapped[int] = mapped_column(Integer)
    epsilon: Mapped[float] = mapped_column(Float)
    #: The released shares, a JSON list in EMOTIONS order.
    shares: Mapped[str] = mapped_column(Text)
    #: How many different versions of this group have been released so far.
    versions: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class EventNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no event named {name!r} (see `moodlens event list`)")
        self.name = name


class EventExists(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"an event named {name!r} already exists")
        self.name = name


@dataclass(frozen=True)
class EventSummary:
    """An event with its totals, as listed by ``moodlens event list``."""

    name: str
    description: str
    starts_at: datetime | None
    ends_at: datetime | None
    retention_days: int | None
    created_at: datetime
    sources: int
    people: int
    faces: int
    last_seen: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


def default_db_url() -> str:
    """``$MOODLENS_DB``, else a SQLite file in the user's data directory."""
    if env := os.environ.get("MOODLENS_DB"):
        return env
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{data_home / 'moodlens' / 'events.db'}"


def normalize_db_url(db: str | Path | None) -> str:
    """Accept SQLAlchemy URLs, ``postgresql://`` URLs (run on psycopg 3) and plain file paths (SQLite)."""
    if db is None:
        db = default_db_url()
    text = str(db)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().absolute()}"
    url = make_url(text)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cur = dbapi_connection.cursor()
        # WAL lets a report read while an ingest writes; committed data survives a killed process.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()


def _add_missing_columns(engine: Engine) -> list[str]:
    """Bring a store made by an earlier version up to date: add the columns it lacks.

    Only nullable columns or columns with a plain default are ever added to existing tables, so
    old rows stay valid; returns ``table.column`` of each column added.
    """
    from sqlalchemy import inspect, text

    inspector = inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                default = column.default.arg if column.default is not None and column.default.is_scalar else None
                clause = f" DEFAULT {default!r}" if isinstance(default, (int, float, str)) else ""
                if isinstance(default, bool):
                    clause = f" DEFAULT {'1' if default else '0'}" if engine.dialect.name == "sqlite" else \
                        f" DEFAULT {str(default).upper()}"
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{clause}'))
                added.append(f"{table.name}.{column.name}")
    return added


class EventStore:
    """All persistent event data behind one small API (SQLite or PostgreSQL)."""

    def __init__(self, db: str | Path | None = None, create: bool = True) -> None:
        """Open (and with ``create`` set up) the database; any failure is a one-line
        :class:`~moodlens.events.store_errors.StoreError` naming the database and the reason."""
        self.url = normalize_db_url(db)
        check_backend(self.url)
        url = make_url(self.url)
        with database_errors(self.url):
            if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(self.url, pool_pre_ping=True)
            if self.engine.dialect.name == "sqlite":
                _configure_sqlite(self.engine)
            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
            if create:
                Base.metadata.create_all(self.engine)
                _add_missing_columns(self.engine)

    def __repr__(self) -> str:
        return f"EventStore({make_url(self.url).render_as_string(hide_password=True)!r})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on any error (database failures
        become :class:`~moodlens.events.store_errors.StoreError`)."""
        with database_errors(self.url), self._sessions.begin() as s:
            yield s

    # -- events ---------------------------------------------------------------
    def create_event(self, name: str, starts_at: datetime | None = None, ends_at: datetime | None = None,
                     description: str = "", retention_days: int | None = None) -> Event:
        name = check_event_name(name)
        if starts_at and ends_at and to_utc_naive(ends_at) <= to_utc_naive(starts_at):
            raise ValueError(f"event {name!r}: end {ends_at} is not after start {starts_at}")
        if retention_days is not None and not 1 <= retention_days <= MAX_RETENTION_DAYS:
            raise ValueError(f"retention_days must be from 1 to {MAX_RETENTION_DAYS}, not {retention_days}")
        ev = Event(name=name, description=check_description(description), retention_days=retention_days,
                   starts_at=to_utc_naive(starts_at) if starts_at else None,
                   ends_at=to_utc_naive(ends_at) if ends_at else None)
        try:
            with self.session() as s:
                s.add(ev)
        except IntegrityError as e:
            raise EventExists(name) from e
        return ev

    def get_event(self, name: str) -> Event:
        with self.session() as s:
            ev = s.scalar(select(Event).where(Event.name == name))
        if ev is None:
            raise EventNotFound(name)
        return ev

    def list_events(self) -> list[EventSummary]:
        per_source = (
            select(Observation.source_id, func.count().label("faces"),
                   func.count(func.distinct(Observation.track)).label("people"),
                   func.max(Observation.ts).label("last_seen"))
            .group_by(Observation.source_id).subquery()
        )
        stmt = (
            select(Event, func.count(Source.id), func.coalesce(func.sum(per_source.c.people), 0),
                   func.coalesce(func.sum(per_source.c.faces), 0), func.max(per_source.c.last_seen))
            .outerjoin(Source, Source.event_id == Event.id)
            .outerjoin(per_source, per_source.c.source_id == Source.id)
            .group_by(Event.id).order_by(Event.created_at, Event.id)
        )
        with self.session() as s:
            rows = s.execute(stmt).all()
        return [EventSummary(ev.name, ev.description, ev.starts_at, ev.ends_at, ev.retention_days, ev.created_at,
                             int(n_src), int(people), int(faces), last) for ev, n_src, people, faces, last in rows]

    def delete_event(self, name: str) -> int:
        """Delete an event with all its sources and observations; returns the observations removed."""
        with self.session() as s:
            ev = s.scalar(select(Event).where(Event.name == name))
            if ev is None:
                raise EventNotFound(name)
            source_ids = select(Source.id).where(Source.event_id == ev.id).scalar_subquery()
            n = s.execute(delete(Observation).where(Observation.source_id.in_(source_ids))).rowcount
            s.execute(delete(SourceOutage).where(SourceOutage.source_id.in_(source_ids)))
            s.execute(delete(GroupRelease).where(GroupRelease.event_id == ev.id))
            s.execute(delete(Source).where(Source.event_id == ev.id))
            s.execute(delete(Event).where(Event.id == ev.id))
        return int(n or 0)

    def expired_events(self, older_than_days: float | None = None, now: datetime | None = None) -> list[str]:
        """Events past their own retention period, or (if given) whose data is older than ``older_than_days``.

        An event's age counts from its end time, else its last observation, else its creation.
        """
        now = now or utcnow()
        expired = []
        for ev in self.list_events():
            reference = ev.ends_at or ev.last_seen or ev.created_at
            limits = [d for d in (ev.retention_days, older_than_days) if d is not None]
            if limits and now - reference > timedelta(days=min(limits)):
                expired.append(ev.name)
        return expired

    def purge(self, older_than_days: float | None = None, now: datetime | None = None) -> list[str]:
        """Delete expired events (see :meth:`expired_events`); returns their names."""
        names = self.expired_events(older_than_days, now)
        for name in names:
            self.delete_event(name)
        return names

    # -- sources and observations -----------------------------------------------
    def open_source(self, event_name: str, kind: str, uri: str, label: str | None = None, **fields: Any) -> Source:
        """The event's source for ``(kind, uri)``, created on first use (resuming an ingest finds it again)."""
        if kind not in SOURCE_KINDS:
            raise ValueError(f"unknown source kind {kind!r}; expected one of {SOURCE_KINDS}")
        ev = self.get_event(event_name)
        stmt = select(Source).where(Source.event_id == ev.id, Source.kind == kind, Source.uri == uri)
        with self.session() as s:
            src = s.scalar(stmt)
        if src is not None:
            return src
        try:
            with self.session() as s:
                src = Source(event_id=ev.id, kind=kind, uri=uri, label=(label or uri)[:MAX_NAME_LENGTH], **fields)
                s.add(src)
        except IntegrityError:
            # Another process created it at the same moment: use theirs.
            with self.session() as s:
                src = s.scalar(stmt)
        return src

    def get_source(self, source_id: int) -> Source:
        with self.session() as s:
            src = s.get(Source, source_id)
        if src is None:
            raise LookupError(f"no source with id {source_id}")
        return src

    def update_source(self, source_id: int, **fields: Any) -> None:
        with self.session() as s:
            s.execute(update(Source).where(Source.id == source_id).values(updated_at=utcnow(), **fields))

    def record_model(self, source_id: int, facts: Any) -> None:
        """Store the facts of the model a source is analysed with (a ``model_facts.ModelFacts``)."""
        self.update_source(source_id, **facts.to_columns())

    def commit_batch(self, source_id: int, rows: Iterable[Mapping[str, Any]], frames_done: int,
                     finished: bool = False, **source_fields: Any) -> None:
        """Write observations and advance the source's resume cursor in one transaction.

        Either both happen or neither, so a killed ingest resumes exactly after its last commit.
        ``source_fields``: further source columns to set in the same transaction (e.g. ``frames_dropped``).
        """
        rows = [dict(r, source_id=source_id) for r in rows]
        with self.session() as s:
            if rows:
                s.execute(insert(Observation), rows)
            s.execute(update(Source).where(Source.id == source_id)
                      .values(frames_done=frames_done, finished=finished, updated_at=utcnow(), **source_fields))

    def add_outage(self, source_id: int, started_at: datetime, reason: str = "") -> int:
        """Record that a live source went offline; returns the outage's id (for :meth:`end_outage`)."""
        with self.session() as s:
            outage = SourceOutage(source_id=source_id, started_at=started_at, reason=reason[:300])
            s.add(outage)
            s.flush()
            return int(outage.id)

    def end_outage(self, outage_id: int, ended_at: datetime) -> None:
        with self.session() as s:
            s.execute(update(SourceOutage).where(SourceOutage.id == outage_id).values(ended_at=ended_at))

    def outages(self, event_name: str) -> dict[int, list[SourceOutage]]:
        """Source id -> its offline intervals, oldest first."""
        ev = self.get_event(event_name)
        stmt = (select(SourceOutage).join(Source, Source.id == SourceOutage.source_id)
                .where(Source.event_id == ev.id).order_by(SourceOutage.started_at, SourceOutage.id))
        out: dict[int, list[SourceOutage]] = {}
        with self.session() as s:
            for outage in s.scalars(stmt):
                out.setdefault(outage.source_id, []).append(outage)
        return out

    def rewind_source(self, source_id: int, frame: int) -> int:
        """Drop the source's observations from ``frame`` on and move its cursor back there."""
        with self.session() as s:
            n = s.execute(delete(Observation).where(Observation.source_id == source_id,
                                                    Observation.frame >= frame)).rowcount
            s.execute(update(Source).where(Source.id == source_id)
                      .values(frames_done=frame, finished=False, updated_at=utcnow()))
        return int(n or 0)

    def track_spans(self, source_id: int, since_frame: int = 0) -> list[tuple[int, int, int]]:
        """``(track, first frame, last frame)`` of the source's tracks seen at or after ``since_frame``."""
        recent = select(Observation.track).where(Observation.source_id == source_id,
                                                 Observation.frame >= since_frame).distinct()
        stmt = (select(Observation.track, func.min(Observation.frame), func.max(Observation.frame))
                .where(Observation.source_id == source_id, Observation.track.in_(recent))
                .group_by(Observation.track))
        with self.session() as s:
            return [(int(t), int(a), int(b)) for t, a, b in s.execute(stmt).all()]

    def max_track(self, source_id: int) -> int:
        with self.session() as s:
            value = s.scalar(select(func.max(Observation.track)).where(Observation.source_id == source_id))
        return int(value) if value is not None else 0

    def sources(self, event_name: str) -> list[Source]:
        ev = self.get_event(event_name)
        with self.session() as s:
            return list(s.scalars(select(Source).where(Source.event_id == ev.id).order_by(Source.id)))

    def observations(self, event_name: str):  # noqa: ANN201 - returns a pandas DataFrame
        """All observations of an event as a DataFrame (one row per face), with source kind and label."""
        import pandas as pd

        ev = self.get_event(event_name)
        cols = [Observation.source_id, Source.kind, Source.label, Observation.frame, Observation.ts,
                Observation.track, Observation.box_w, Observation.box_h,
                *(getattr(Observation, c) for c in PROB_COLUMNS)]
        stmt = (select(*cols).join(Source, Source.id == Observation.source_id)
                .where(Source.event_id == ev.id).order_by(Observation.ts, Observation.id))
        with database_errors(self.url), self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        names = ["source_id", "kind", "source", "frame", "ts", "track", "box_w", "box_h", *PROB_COLUMNS]
        df = pd.DataFrame(rows, columns=names)
        df["ts"] = pd.to_datetime(df["ts"])
        return df

    # -- private releases ---------------------------------------------------------------------------------
    def group_releases(self, event_name: str) -> dict[str, GroupRelease]:
        """The releases recorded for an event's groups, by group key."""
        ev = self.get_event(event_name)
        with self.session() as s:
            return {r.group_key: r for r in s.scalars(select(GroupRelease).where(GroupRelease.event_id == ev.id))}

    def record_release(self, event_name: str, group_key: str, fingerprint: str, people: int, epsilon: float,
                       shares: str) -> GroupRelease:
        """Record a new release of a group unless another process recorded one for the same data
        (``fingerprint``) first; returns the release that stands (theirs or this one)."""
        ev = self.get_event(event_name)
        mine = {"fingerprint": fingerprint, "people": people, "epsilon": epsilon, "shares": shares,
                "updated_at": utcnow()}
        where = (GroupRelease.event_id == ev.id, GroupRelease.group_key == group_key)
        for _ in range(5):
            with self.session() as s:
                current = s.scalar(select(GroupRelease).where(*where))
            if current is not None and current.fingerprint == fingerprint:
                return current
            try:
                with self.session() as s:
                    if current is None:
                        s.add(GroupRelease(event_id=ev.id, group_key=group_key, versions=1, **mine))
                        continue
                    changed = s.execute(update(GroupRelease).where(
                        *where, GroupRelease.fingerprint == current.fingerprint).values(
                        versions=GroupRelease.versions + 1, **mine)).rowcount
                if changed:
                    continue
            except IntegrityError:
                pass  # another process added the group's first release at the same moment: read theirs
        with self.session() as s:
            return s.scalars(select(GroupRelease).where(*where)).one()

    def data_version(self, event_name: str) -> tuple[int, int]:
        """(observation count, highest observation id) of an event: changes whenever data is added."""
        ev = self.get_event(event_name)
        stmt = (select(func.count(Observation.id), func.coalesce(func.max(Observation.id), 0))
                .join(Source, Source.id == Observation.source_id).where(Source.event_id == ev.id))
        with self.session() as s:
            n, top = s.execute(stmt).one()
        return int(n), int(top)

    def observation_arrays(self, event_name: str) -> dict[str, Any]:
        """An event's observations as numpy arrays, for vectorised reports (much faster than :meth:`observations`).

        ``source_id``, ``track`` (int64), ``ts_us`` (int64 microseconds since 1970, naive UTC: covers years
        1 to 9999), ``probs`` (N x 7 float64, :data:`PROB_COLUMNS` order). Rows are in no particular order.
        """
        import numpy as np
        from sqlalchemy import Float, cast, extract

        ev = self.get_event(event_name)
        # Times as float seconds computed by the database, so every column is a number and the rows
        # become one numpy array in a single call (row-by-row datetime objects cost seconds per 100,000).
        if self.dialect == "sqlite":
            seconds = (func.julianday(Observation.ts) - 2440587.5) * 86400.0
        else:
            seconds = cast(extract("epoch", Observation.ts), Float)
        stmt = (select(Observation.source_id, Observation.track, seconds,
                       *(getattr(Observation, c) for c in PROB_COLUMNS))
                .join(Source, Source.id == Observation.source_id).where(Source.event_id == ev.id))
        compiled = stmt.compile(dialect=self.engine.dialect)
        params = tuple(compiled.params[k] for k in compiled.positiontup or ()) if compiled.positional \
            else compiled.params
        with self.engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                cursor.execute(str(compiled), params)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        table = np.array(rows, np.float64).reshape(-1, 3 + len(PROB_COLUMNS))
        return {"source_id": table[:, 0].astype(np.int64), "track": table[:, 1].astype(np.int64),
                # julianday() is exact to about 50 microseconds: reports use whole milliseconds.
                "ts_us": np.round(table[:, 2] * 1e3).astype(np.int64) * 1000, "probs": table[:, 3:]}
