"""Event names are checked once for the store, the API and the CLI; names and labels are neutralised in
every CSV the project writes and escaped when printed to a terminal."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta

import cv2
import numpy as np
import pytest
import skimage.data
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner
from web_access import ACCESS, OPERATOR

from moodlens.cli import app as cli
from moodlens.events.names import MAX_NAME_LENGTH, InvalidName, check_event_name
from moodlens.events.report import build_report
from moodlens.events.report_files import write_report
from moodlens.events.store import PROB_COLUMNS, EventStore
from moodlens.web import create_app

BAD_NAMES = {"": "blank", "   ": "blank", "a/b": "'/'", "..": "not allowed", "x" * 201: "at most 200",
             "gala\x1b[2J": "control characters", "two\nlines": "control characters", "bell\x07": "control",
             "\ud800": "not valid Unicode"}
FORMULA = '=HYPERLINK("evil.example","click")'
T0 = datetime(2025, 6, 1, 18, 0)


@pytest.mark.parametrize("name", list(BAD_NAMES))
def test_store_refuses_bad_names(tmp_path, name):
    with EventStore(tmp_path / "e.db") as store, pytest.raises(InvalidName, match=BAD_NAMES[name]):
        store.create_event(name)


def test_good_names_are_kept_trimmed(tmp_path):
    with EventStore(tmp_path / "e.db") as store:
        for name in ("Sommerfest München", "x" * MAX_NAME_LENGTH, "a.b", "spring gala #2"):
            assert store.create_event(f"  {name} ").name == name
    assert check_event_name(" gala ") == "gala"


def test_api_answers_4xx_never_500(tmp_path):
    app = create_app(workers=1, access=ACCESS)
    app.state.event_db = f"sqlite:///{tmp_path / 'events.db'}"
    with TestClient(app, headers=OPERATOR) as client:
        for name in BAD_NAMES:
            # json.dumps escapes a lone surrogate as JSON allows (the client's own encoder would refuse it).
            r = client.post("/api/v1/events", content=json.dumps({"name": name}),
                            headers={"Content-Type": "application/json"})
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"], (name, r.text)
        assert client.post("/api/v1/events", json={"name": "gala"}).status_code == 201
        photo = cv2.imencode(".jpg", skimage.data.astronaut()[:, :, ::-1])[1].tobytes()
        r = client.post("/api/v1/events/gala/photos", params={"batch": "door\x1b[2J"},
                        files=[("files", ("a.jpg", photo, "image/jpeg"))])
        assert r.status_code == 422 and "control characters" in r.json()["detail"]
        assert client.get("/api/v1/events/gala/report").json()["totals"]["faces"] == 0  # nothing stored


def test_cli_gives_one_line_errors(tmp_path):
    db = str(tmp_path / "e.db")
    for name, words in [("a/b", "must not contain '/'"), ("x" * 300, "at most 200"), (" ", "must not be blank")]:
        r = CliRunner().invoke(cli, ["event", "create", name, "--db", db])
        assert r.exit_code == 1 and words in r.output and "Traceback" not in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1


def add_people(store: EventStore, event: str, label: str, n: int) -> None:
    src = store.open_source(event, "upload", label, label=label)
    rows = [{"frame": i, "ts": T0 + timedelta(seconds=i), "track": i + 1, "box_w": 50, "box_h": 50,
             **dict(zip(PROB_COLUMNS, np.full(7, 1 / 7), strict=True))} for i in range(n)]
    store.commit_batch(src.id, rows, n, True)


def test_report_csv_cells_cannot_run_as_formulas(tmp_path):
    with EventStore(tmp_path / "e.db") as store:
        store.create_event(FORMULA)
        add_people(store, FORMULA, "@SUM(1+1)", 6)
        add_people(store, FORMULA, "-2+3", 6)
        report = build_report(store, FORMULA, model=None)
    write_report(report, tmp_path / "out", "csv")
    cells = []
    for name in ("summary.csv", "timeline.csv", "sources.csv"):
        with (tmp_path / "out" / name).open(newline="") as f:
            cells += [cell for row in csv.reader(f) for cell in row]
    assert f"'{FORMULA}" in cells and "'@SUM(1+1)" in cells and "'-2+3" in cells
    assert not [c for c in cells if c.startswith(("=", "+", "@"))]
    # Numbers stay numbers, negative ones included.
    with (tmp_path / "out" / "sources.csv").open(newline="") as f:
        assert {row["people"] for row in csv.DictReader(f)} == {"6"}


def test_analyze_csv_neutralises_file_names(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "=cmd.jpg"), skimage.data.astronaut()[:, :, ::-1])
    out = tmp_path / "faces.csv"
    r = CliRunner().invoke(cli, ["analyze", str(folder), "--csv", str(out)])
    assert r.exit_code == 0, r.output
    with out.open(newline="") as f:
        [row] = list(csv.DictReader(f))
    assert row["file"] == str(folder / "=cmd.jpg")  # a path starts with "/", which is not a formula
    with pytest.MonkeyPatch.context() as mp:  # named relative to the folder, the cell starts with "="
        mp.chdir(folder)
        assert CliRunner().invoke(cli, ["analyze", "=cmd.jpg", "--csv", str(out)]).exit_code == 0
    with out.open(newline="") as f:
        [row] = list(csv.DictReader(f))
    assert row["file"] == "'=cmd.jpg" and float(row["confidence"]) > 0


def test_terminal_never_gets_control_characters_from_names(tmp_path):
    db = tmp_path / "e.db"
    with EventStore(db) as store:
        store.create_event("placeholder")
        with store.engine.begin() as conn:  # a name stored by an older version, before names were checked
            conn.execute(text("UPDATE events SET name = :n"), {"n": "gala\x1b[2J\x1b[31m"})
    r = CliRunner().invoke(cli, ["event", "list", "--db", str(db)])
    assert r.exit_code == 0 and "\x1b" not in r.output and "gala\\x1b[2J\\x1b[31m" in r.output
    r = CliRunner().invoke(cli, ["event", "purge", "--older-than-days", "0", "--db", str(db)])
    assert "\x1b" not in r.output and "deleted 1 event(s)" in r.output
