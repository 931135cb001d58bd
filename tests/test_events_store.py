"""EventStore on SQLite and on a real PostgreSQL server, through the same code path."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from moodlens.events.store import PROB_COLUMNS, EventExists, EventNotFound, EventStore, normalize_db_url

T0 = datetime(2025, 6, 1, 18, 0, 0)


def obs_rows(tracks: range, frames_per_track: int = 3, probs: np.ndarray | None = None, frame0: int = 0):
    rows = []
    for t in tracks:
        for f in range(frames_per_track):
            frame = frame0 + t * 10 + f
            p = probs if probs is not None else np.full(7, 1 / 7)
            rows.append({"frame": frame, "ts": T0 + timedelta(seconds=frame), "track": t, "box_w": 60, "box_h": 70,
                         **dict(zip(PROB_COLUMNS, map(float, p), strict=True))})
    return rows


@pytest.fixture
def store(event_db_url):
    s = EventStore(event_db_url)
    yield s
    s.close()


def test_create_list_delete(store):
    store.create_event("launch", description="product launch", retention_days=30)
    with pytest.raises(EventExists):
        store.create_event("launch")
    with pytest.raises(ValueError, match="not after"):
        store.create_event("bad", starts_at=T0, ends_at=T0)
    src = store.open_source("launch", "video", "/videos/exit.mp4", label="exit.mp4")
    assert store.open_source("launch", "video", "/videos/exit.mp4").id == src.id  # found again, not duplicated
    store.commit_batch(src.id, obs_rows(range(1, 4)), frames_done=40)
    [summary] = store.list_events()
    assert (summary.name, summary.sources, summary.people, summary.faces) == ("launch", 1, 3, 9)
    assert store.get_source(src.id).frames_done == 40
    assert store.delete_event("launch") == 9
    assert store.list_events() == []
    with pytest.raises(EventNotFound, match="launch"):
        store.get_event("launch")
    with pytest.raises(EventNotFound):
        store.delete_event("launch")


def test_schema_holds_no_pixels_or_identity(store):
    """The observation table has numbers only: no blobs, no embeddings, no box position."""
    from moodlens.events.store import Observation

    columns = {c.name: type(c.type).__name__ for c in Observation.__table__.columns}
    assert set(columns) == {"id", "source_id", "frame", "ts", "track", "box_w", "box_h", *PROB_COLUMNS}
    assert not any("Binary" in t or "LargeBinary" in t or "ARRAY" in t for t in columns.values())


def test_commit_batch_is_atomic(store):
    store.create_event("e")
    src = store.open_source("e", "video", "v")
    store.commit_batch(src.id, obs_rows(range(1, 3)), frames_done=25)
    bad = obs_rows(range(3, 5))
    bad[-1]["track"] = None  # NOT NULL violation in the last row of the batch
    with pytest.raises(Exception):  # noqa: B017 - driver-specific IntegrityError
        store.commit_batch(src.id, bad, frames_done=45)
    # Neither the good rows of the failed batch nor its cursor move were kept.
    assert store.data_version("e")[0] == 6
    assert store.get_source(src.id).frames_done == 25


def test_rewind_and_track_spans(store):
    store.create_event("e")
    src = store.open_source("e", "video", "v")
    store.commit_batch(src.id, obs_rows(range(1, 5)), frames_done=43)
    assert store.track_spans(src.id, since_frame=30) == [(3, 30, 32), (4, 40, 42)]
    assert store.rewind_source(src.id, 31) == 5  # frames 31, 32, 40, 41, 42
    assert store.get_source(src.id).frames_done == 31
    assert store.max_track(src.id) == 3


def test_retention_purge(store):
    store.create_event("old", retention_days=7)
    store.create_event("keep", retention_days=7)
    store.create_event("forever")
    for name in ("old", "keep", "forever"):
        src = store.open_source(name, "photos", "/p")
        store.commit_batch(src.id, obs_rows(range(1, 2)), frames_done=1)
    now = T0 + timedelta(days=8)  # observations are at T0
    assert store.expired_events(now=now) == ["old", "keep"]
    assert store.purge(now=T0 + timedelta(days=3)) == []
    assert store.purge(older_than_days=5, now=now) == ["old", "keep", "forever"]
    assert store.list_events() == []


def test_concurrent_writers(store):
    """Four writers (threads, own connections) committing batches at once lose nothing."""
    store.create_event("multi")
    sources = [store.open_source("multi", "camera", f"camera:{i}") for i in range(4)]
    errors = []

    def write(src_id: int) -> None:
        try:
            for batch in range(10):
                store.commit_batch(src_id, obs_rows(range(batch * 5 + 1, batch * 5 + 6), frame0=batch * 100),
                                   frames_done=(batch + 1) * 100)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(s.id,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    [summary] = store.list_events()
    assert (summary.people, summary.faces) == (4 * 50, 4 * 50 * 3)


def test_backend_is_the_one_asked_for(store, event_db_url):
    assert store.dialect == ("postgresql" if event_db_url.startswith("postgresql") else "sqlite")
    with store.engine.connect() as conn:
        assert conn.execute(text("select count(*) from observations")).scalar() == 0


def test_url_forms(tmp_path):
    assert normalize_db_url("postgresql://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert normalize_db_url(tmp_path / "a.db") == f"sqlite:///{tmp_path / 'a.db'}"
    assert normalize_db_url("sqlite:///x.db") == "sqlite:///x.db"


def test_store_made_by_an_earlier_version_gains_new_columns(tmp_path):
    """Opening an older database adds the columns this version has and keeps its rows."""
    import sqlite3

    from moodlens.events.store import Source

    db = tmp_path / "old.db"
    with EventStore(db) as store:
        store.create_event("gala")
        store.open_source("gala", "video", "/v.mp4", label="v.mp4")
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE sources DROP COLUMN tracking")
    con.commit()
    con.close()
    with EventStore(db) as store:
        (src,) = store.sources("gala")
        assert src.label == "v.mp4" and src.tracking == ""
    assert "tracking" in {c.name for c in Source.__table__.columns}
