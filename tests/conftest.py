"""Shared fixtures: a throwaway PostgreSQL server and event databases per backend; synthetic FER2013 data."""

import os
import uuid
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
