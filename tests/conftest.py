# --- event feedback (events engineer): a throwaway PostgreSQL server and a store per backend -------------
import glob as _glob  # noqa: E402
import os as _os  # noqa: E402
import shutil as _shutil  # noqa: E402
import socket as _socket  # noqa: E402
import subprocess as _subprocess  # noqa: E402
import tempfile as _tempfile  # noqa: E402
import uuid as _uuid  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

import pytest as _pytest  # noqa: E402


def _postgres_bindir() -> _Path | None:
    """Directory holding initdb/pg_ctl: Debian's /usr/lib/postgresql/<ver>/bin, else $PATH."""
    found = sorted(_glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(_Path(p).parts[-3]))
    if found:
        return _Path(found[-1]).parent
    pg_ctl = _shutil.which("pg_ctl")
    return _Path(pg_ctl).parent if pg_ctl and _shutil.which("initdb") else None


@_pytest.fixture(scope="session")
def postgres_server():
    """URL of a PostgreSQL server for the tests: ``$MOODLENS_TEST_POSTGRES_URL`` if set, else a throwaway
    cluster (initdb + pg_ctl in a temp dir, free port, run as user ``postgres`` when the tests run as root)."""
    if url := _os.environ.get("MOODLENS_TEST_POSTGRES_URL"):
        yield url
        return
    bindir = _postgres_bindir()
    if bindir is None:
        _pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's `postgresql` package")
    base = _Path(_tempfile.mkdtemp(prefix="moodlens-pg-"))
    prefix: list[str] = []
    if _os.geteuid() == 0:  # postgres refuses to run as root
        _shutil.chown(base, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    with _socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = base / "data"
    _subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                     "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
    _subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60",
                     "-o", opts, "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                        capture_output=True)
        _shutil.rmtree(base, ignore_errors=True)


@_pytest.fixture(params=["sqlite", _pytest.param("postgresql", marks=_pytest.mark.postgres)])
def event_db_url(request, tmp_path):
    """A fresh, empty event database URL: a SQLite file, or a new database on the PostgreSQL test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(request.getfixturevalue("postgres_server"))
    name = f"moodlens_test_{_uuid.uuid4().hex[:12]}"
    dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
