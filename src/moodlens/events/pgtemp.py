"""A throwaway local PostgreSQL server (initdb + pg_ctl in a temporary folder) for tests and benchmarks.

Needs the server binaries (Debian: ``apt-get install postgresql``). When run as root, the server runs as
the ``postgres`` user, because PostgreSQL refuses to run as root. Not used by moodlens at run time (tests,
benchmarks and the Ray deployment check, ``moodlens.distributed.fleet_check``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_bindir() -> Path | None:
    """Folder holding initdb and pg_ctl: the newest /usr/lib/postgresql/<version>/bin, else ``$PATH``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl and shutil.which("initdb") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def temporary_postgres(fsync: bool = False, max_connections: int = 50) -> Iterator[str]:
    """Start a fresh cluster on a free localhost port; yields its URL; stops and deletes it afterwards."""
    bindir = postgres_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found; "
                                "install Debian's `postgresql` package")
    base = Path(tempfile.mkdtemp(prefix="moodlens-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        opts = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections={max_connections}"
                + ("" if fsync else " -c fsync=off"))
        subprocess.run([*pg_ctl, "-l", str(base / "log"), "-w", "-t", "60", "-o", opts, "start"],
                       check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server; returns its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(server_url)
    with psycopg.connect(server.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(server_url)
    with psycopg.connect(server.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
