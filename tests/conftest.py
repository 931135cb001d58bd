# --- event feedback (events engineer): a throwaway PostgreSQL server and a store per backend -------------
import os as _os  # noqa: E402
import uuid as _uuid  # noqa: E402
from pathlib import Path as _Path  # noqa: E402  (also used by fixtures below)

import pytest as _pytest  # noqa: E402


@_pytest.fixture(scope="session")
def postgres_server():
    """URL of a PostgreSQL server for the tests: ``$MOODLENS_TEST_POSTGRES_URL`` if set, else a throwaway
    cluster (initdb + pg_ctl in a temp dir, free port, run as user ``postgres`` when the tests run as root)."""
    from moodlens.events.pgtemp import postgres_bindir, temporary_postgres

    if url := _os.environ.get("MOODLENS_TEST_POSTGRES_URL"):
        yield url
        return
    if postgres_bindir() is None:
        _pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's `postgresql` package")
    with temporary_postgres() as url:
        yield url


@_pytest.fixture(params=["sqlite", _pytest.param("postgresql", marks=_pytest.mark.postgres)])
def event_db_url(request, tmp_path):
    """A fresh, empty event database URL: a SQLite file, or a new database on the PostgreSQL test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
        return
    from moodlens.events.pgtemp import create_database, drop_database

    server = request.getfixturevalue("postgres_server")
    name = f"moodlens_test_{_uuid.uuid4().hex[:12]}"
    yield create_database(server, name)
    drop_database(server, name)


# --- model tooling (model engineer): small synthetic FER2013-style datasets -------------------------------
@_pytest.fixture(scope="session")
def synthetic_fer_csv_gz(tmp_path_factory) -> _Path:
    """A gzipped FER2013 CSV of learnable synthetic faces: 30 Training and 10 PublicTest faces per class."""
    from fer_synthetic import synthetic_fer_csv

    return synthetic_fer_csv(tmp_path_factory.mktemp("fer") / "fer_synthetic.csv.gz")


# --- model tooling: the scripts/ files are not a package, so tests load them by path -------------------------
def load_script(name: str):
    """Import ``scripts/<name>.py`` as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, _Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
