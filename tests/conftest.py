"""Shared fixtures: a throwaway PostgreSQL server and event databases per backend; the web app with a fresh event
database per test; synthetic FER2013 data."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def postgres_server():
    """URL of a PostgreSQL server for the tests: ``$MOODLENS_TEST_POSTGRES_URL`` if set, else a throwaway
    cluster (initdb + pg_ctl in a temp dir, free port, run as user ``postgres`` when the tests run as root)."""
    from moodlens.events.pgtemp import postgres_bindir, temporary_postgres

    if url := os.environ.get("MOODLENS_TEST_POSTGRES_URL"):
        yield url
        return
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's `postgresql` package")
    with temporary_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def event_db_url(request, tmp_path):
    """A fresh, empty event database URL: a SQLite file, or a new database on the PostgreSQL test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
        return
    from moodlens.events.pgtemp import create_database, drop_database

    server = request.getfixturevalue("postgres_server")
    name = f"moodlens_test_{uuid.uuid4().hex[:12]}"
    yield create_database(server, name)
    drop_database(server, name)


@pytest.fixture(scope="module")
def events_app():
    """The web app (sign-in as in ``web_access.py``, one worker), one per test module of the events pages."""
    from web_access import ACCESS

    from moodlens.web.app import create_app

    return create_app(workers=1, access=ACCESS)


@pytest.fixture
def events_db(events_app, tmp_path) -> Iterator[str]:
    """URL of a fresh SQLite event database that ``events_app`` uses for one test; its store is closed after."""
    events_app.state.event_db = f"sqlite:///{tmp_path / 'events.db'}"
    events_app.state.event_store = None
    yield events_app.state.event_db
    if events_app.state.event_store is not None:
        events_app.state.event_store.close()


@pytest.fixture(scope="session")
def synthetic_fer_csv_gz(tmp_path_factory) -> Path:
    """A gzipped FER2013 CSV of learnable synthetic faces: 30 Training and 10 PublicTest faces per class."""
    from fer_synthetic import synthetic_fer_csv

    return synthetic_fer_csv(tmp_path_factory.mktemp("fer") / "fer_synthetic.csv.gz")


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray cluster of 2 CPUs started for the test module (``--ray local`` then uses it)."""
    pytest.importorskip("ray")
    from ray_nodes import local_cluster

    with local_cluster(num_cpus=2) as info:
        yield info
