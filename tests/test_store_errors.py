"""Database failures give one line naming the database and the reason (CLI) or a 503 (web), never a traceback.

A read-only and a full file system are real: a tmpfs mounted in a private mount namespace
(``unshare -rm``, skipped where the kernel does not allow it). A database at its size limit is SQLite's
own ``max_page_count``, which fails writes with the same error code as a full disk.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from typer.testing import CliRunner
from web_access import ACCESS, VIEWER

from moodlens.cli import app as cli
from moodlens.events.store import PROB_COLUMNS, EventStore
from moodlens.events.store_errors import StoreError
from moodlens.web import create_app

MOODLENS = [sys.executable, "-c", "from moodlens.cli import app; app()"]


def one_line_error(args: list[str]) -> str:
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    [line] = r.output.strip().splitlines()
    assert line.startswith("error: event database ")
    return line


def test_path_that_is_a_folder_or_not_sqlite(tmp_path):
    folder = tmp_path / "events.db"
    folder.mkdir()
    line = one_line_error(["event", "list", "--db", str(folder)])
    assert str(folder) in line and "is a folder" in line
    notes = tmp_path / "notes.db"
    notes.write_text("shopping list: milk, eggs\n" * 40)
    line = one_line_error(["event", "create", "gala", "--db", str(notes)])
    assert str(notes) in line and "not a SQLite database" in line


def test_unsupported_url_and_missing_driver():
    line = one_line_error(["event", "list", "--db", "mysql://user:secret@db.example/events"])
    assert "'mysql' databases are not supported" in line and "secret" not in line
    # psycopg made unimportable, exactly as when it is not installed.
    code = "import sys; sys.modules['psycopg'] = None; from moodlens.cli import app; app()"
    r = subprocess.run([sys.executable, "-c", code, "event", "list", "--db", "postgresql://u@127.0.0.1:1/x"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("error: event database postgresql+psycopg://u@127.0.0.1:1/x: PostgreSQL needs the "
                                "psycopg driver, which is not installed: pip install 'moodlens[postgres]'")


def test_database_at_its_size_limit(tmp_path):
    store = EventStore(tmp_path / "events.db")
    store.create_event("gala")
    src = store.open_source("gala", "video", "v")

    @event.listens_for(store.engine, "connect")
    def _limit(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.execute("PRAGMA max_page_count = 12")

    store.engine.dispose()  # new connections get the limit
    rows = [{"frame": i, "ts": np.datetime64("2025-06-01T18:00").astype(object), "track": i, "box_w": 1,
             "box_h": 1, **dict.fromkeys(PROB_COLUMNS, 0.1)} for i in range(5000)]
    with pytest.raises(StoreError) as info:
        store.commit_batch(src.id, rows, 5000)
    assert str(info.value) == f"event database {tmp_path / 'events.db'}: the disk is full (or the database reached " \
                              "its size limit)"
    store.close()


def test_web_answers_503_without_the_servers_paths(tmp_path):
    folder = tmp_path / "events.db"
    folder.mkdir()
    app = create_app(workers=1, access=ACCESS)
    app.state.event_db = str(folder)
    with TestClient(app, headers=VIEWER) as client:
        r = client.get("/api/v1/events")
    assert r.status_code == 503 and r.json()["detail"] == ("the event database is unavailable: the path is a folder, "
                                                           "not a database file")
    assert str(tmp_path) not in r.text


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _namespaces_work(), reason="needs `unshare -rm` and tmpfs mounts (a private mount namespace)")
def test_read_only_and_full_file_systems(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cli_cmd = " ".join(f"'{part}'" for part in MOODLENS)
    script = textwrap.dedent(f"""
        set -u
        mount -t tmpfs -o size=1m tmpfs {mnt}
        {cli_cmd} event create gala --db {mnt}/events.db > /dev/null
        dd if=/dev/zero of={mnt}/fill bs=4k 2> /dev/null
        echo "== full"; {cli_cmd} event create gala2 --db {mnt}/events.db 2>&1; echo "rc=$?"
        mount -o remount,ro {mnt}
        echo "== read-only"; {cli_cmd} event create gala3 --db {mnt}/events.db 2>&1; echo "rc=$?"
        echo "== new file"; {cli_cmd} event create gala3 --db {mnt}/new/events.db 2>&1; echo "rc=$?"
    """)
    out = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300).stdout
    assert "Traceback" not in out, out
    sections = {s.split("\n", 1)[0]: s.split("\n", 1)[1].strip() for s in out.split("== ")[1:]}
    assert sections["full"] == f"error: event database {mnt}/events.db: the disk is full\nrc=1", out
    assert sections["read-only"] == f"error: event database {mnt}/events.db: the file system is read-only\nrc=1"
    assert sections["new file"].startswith(f"error: event database {mnt}/new/events.db: the file system is read-only")
