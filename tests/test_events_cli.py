"""``moodlens event ...`` commands through the real CLI app (SQLite file given by --db)."""

from __future__ import annotations

import json

import cv2
import skimage.data
from typer.testing import CliRunner

from moodlens.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["event", *args])


def test_event_commands_end_to_end(tmp_path):
    db = str(tmp_path / "events.db")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        cv2.imwrite(str(photos / f"{i}.jpg"), skimage.data.astronaut()[:, :, ::-1])

    r = run("create", "gala", "--start", "2025-06-01T18:00+00:00", "--retention-days", "30", "--db", db)
    assert r.exit_code == 0, r.output
    assert run("create", "gala", "--db", db).exit_code == 1

    r = run("ingest", "gala", "--photos", str(photos), "--no-progress", "--db", db)
    assert r.exit_code == 0, r.output
    assert "2 photos analysed, 2 faces" in r.output

    r = run("list", "--json", "--db", db)
    [event] = json.loads(r.output)
    assert (event["name"], event["people"], event["faces"], event["retention_days"]) == ("gala", 2, 2, 30)

    r = run("report", "gala", "--out", str(tmp_path / "rep"), "--format", "json,html", "--db", db)
    assert r.exit_code == 0, r.output
    assert "Valence index = 100" in r.output  # the definition is printed with the report
    assert (tmp_path / "rep" / "report.html").is_file() and not (tmp_path / "rep" / "timeline.csv").exists()

    r = run("purge", "--dry-run", "--older-than-days", "100000", "--db", db)
    assert "would delete 0 event(s)" in r.output
    r = run("delete", "gala", "--yes", "--db", db)
    assert r.exit_code == 0 and "2 observations" in r.output
    assert run("list", "--db", db).output.strip() == "no events"


def test_clear_errors_not_tracebacks(tmp_path, monkeypatch):
    monkeypatch.setenv("MOODLENS_DB", str(tmp_path / "env.db"))  # --db falls back to $MOODLENS_DB
    assert run("create", "gala").exit_code == 0
    assert (tmp_path / "env.db").is_file()
    cases = [
        (["ingest", "gala"], "exactly one of --video"),
        (["ingest", "gala", "--video", "x.mp4", "--photos", "."], "--photos cannot be combined"),
        (["ingest", "nope", "--photos", str(tmp_path)], "no event named 'nope'"),
        (["ingest", "gala", "--video", str(tmp_path / "missing.mp4")], "video file not found"),
        (["ingest", "gala", "--photos", str(tmp_path / "missing")], "photo folder not found"),
        (["report", "gala", "--out", str(tmp_path), "--format", "pdf"], "unknown report format"),
        (["report", "gala", "--out", str(tmp_path), "--epsilon", "inf"], "positive, finite"),
        (["create", "x", "--start", "yesterday"], "not an ISO date/time"),
        (["delete", "nope", "--yes"], "no event named"),
    ]
    for args, message in cases:
        r = run(*args)
        assert r.exit_code == 1 and message in r.output, (args, r.output)
        assert "Traceback" not in r.output


def test_report_folders_that_cannot_be_written_are_one_line_errors(tmp_path):
    db = str(tmp_path / "events.db")
    runner = CliRunner()
    for name in ("gala", "fair"):
        assert runner.invoke(app, ["event", "create", name, "--db", db]).exit_code == 0
    blocker = tmp_path / "report.html"
    blocker.write_text("not a folder")
    for command in (["report", "gala"], ["compare", "gala", "fair"]):
        for out in (blocker, blocker / "sub"):
            r = runner.invoke(app, ["event", *command, "--out", str(out), "--db", db])
            assert r.exit_code == 1 and r.output.startswith(f"error: cannot write to {out}"), r.output
            assert len(r.output.strip().splitlines()) == 1 and isinstance(r.exception, SystemExit | None)
    assert blocker.read_text() == "not a folder"
