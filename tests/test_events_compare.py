"""Events side by side: event time normalised to each event's length, the same privacy rules, HTML/CSV/JSON, CLI."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

from moodlens.cli import app
from moodlens.events.compare import build_comparison
from moodlens.events.compare_html import render_comparison_html
from moodlens.events.report_files import write_comparison
from moodlens.events.store import PROB_COLUMNS, EventStore
from moodlens.spec import EMOTIONS

HAPPY = np.eye(7)[EMOTIONS.index("happy")]
SAD = np.eye(7)[EMOTIONS.index("sad")]


def add_event(store: EventStore, name: str, start: datetime, minutes: int,
              people: list[tuple[str, np.ndarray, float]]) -> None:
    """An event with a window of ``minutes``; people are (source, probabilities, fraction of the event)."""
    store.create_event(name, starts_at=start, ends_at=start + timedelta(minutes=minutes))
    tracks: dict[str, int] = {}
    rows: dict[str, list[dict]] = {}
    for source, probs, at in people:
        tracks[source] = tracks.get(source, 0) + 1
        ts = start + timedelta(minutes=minutes * at)
        rows.setdefault(source, []).extend(
            {"frame": k, "ts": ts + timedelta(seconds=k), "track": tracks[source], "box_w": 50, "box_h": 50,
             **dict(zip(PROB_COLUMNS, map(float, probs), strict=True))} for k in range(2))
    for source, batch in rows.items():
        src = store.open_source(name, "video", source, label=source)
        store.commit_batch(src.id, batch, len(batch), True)


@pytest.fixture
def store(tmp_path):
    s = EventStore(tmp_path / "events.db")
    # A 1-hour talk happy at the start, sad at the end; a 3-hour one the other way round; a tiny one.
    add_event(s, "week-1", datetime(2025, 9, 1, 18), 60,
              [("door", HAPPY, 0.02)] * 6 + [("door", SAD, 0.95)] * 5 + [("side", SAD, 0.97)] * 2)
    add_event(s, "week-2", datetime(2025, 9, 8, 18), 180,
              [("door", SAD, 0.03)] * 5 + [("door", HAPPY, 0.97)] * 7)
    add_event(s, "week-3", datetime(2025, 9, 15, 18), 30, [("door", HAPPY, 0.5)] * 3)
    yield s
    s.close()


def test_event_time_is_normalised_to_each_events_length(store):
    comparison = build_comparison(store, ["week-1", "week-2", "week-3"], epsilon=None)
    parts = {(r["event"], r["from_pct"]): r for r in comparison.data["timeline"]}
    # 2 % into a 1-hour event and 3 % into a 3-hour one both land in the first tenth.
    assert parts[("week-1", 0.0)]["people"] == 6 and parts[("week-2", 0.0)]["people"] == 5
    assert parts[("week-1", 90.0)]["valence_index"] == -100.0 and parts[("week-2", 90.0)]["valence_index"] == 100.0
    assert parts[("week-1", 0.0)]["valence_index"] == 100.0 and parts[("week-2", 0.0)]["valence_index"] == -100.0
    events = {e["event"]: e for e in comparison.data["events"]}
    assert [events[n]["minutes"] for n in ("week-1", "week-2", "week-3")] == [60.0, 180.0, 30.0]
    assert (events["week-1"]["people"], events["week-2"]["people"]) == (13, 12)


def test_same_privacy_rules_as_a_report(store):
    d = build_comparison(store, ["week-1", "week-2", "week-3"], epsilon=None).data
    events = {e["event"]: e for e in d["events"]}
    assert events["week-3"]["hidden_by"] == "min_group_size" and events["week-3"]["share_happy"] is None
    assert all(r["state"] != "shown" for r in d["timeline"] if r["event"] == "week-3")
    sources = {(s["event"], s["source"]): s for s in d["sources"]}
    # week-1's side door (2 people) is hidden, and so its door source too: total minus door = side door.
    assert sources[("week-1", "side")]["hidden_by"] == "min_group_size"
    assert sources[("week-1", "door")]["hidden_by"] == "complementary"
    assert sources[("week-2", "door")]["state"] == "shown"
    assert "week-3: fewer than 5 people, so only head counts are shown." in d["privacy"]["notes"]



def test_photo_rule_is_named_in_the_comparison(store):
    store.create_event("open-day")
    for kind, n in (("video", 3), ("photos", 4)):  # 7 people, but only 3 from the camera
        src = store.open_source("open-day", kind, kind, label=kind)
        store.commit_batch(src.id, [{"frame": i, "ts": datetime(2025, 9, 20, 12), "track": i, "box_w": 50,
                                     "box_h": 50, **dict(zip(PROB_COLUMNS, map(float, HAPPY), strict=True))}
                                    for i in range(n)], n, True)
    d = build_comparison(store, ["week-2", "open-day"], epsilon=None).data
    assert d["summary"][1] == "open-day: 7 people, fewer than 5 people from video or cameras, expressions hidden."
    assert ("open-day: fewer than 5 people from video or cameras, so only head counts are shown."
            in d["privacy"]["notes"])
    html = render_comparison_html(build_comparison(store, ["week-3", "open-day"], epsilon=None))
    assert "No part of any event is shown (see Privacy)." in html and "or more people." not in html

def test_writes_html_csv_json(store, tmp_path):
    comparison = build_comparison(store, ["week-1", "week-2", "week-3"], epsilon=None)
    paths = write_comparison(comparison, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["comparison.html", "comparison.json", "event_sources.csv",
                                             "event_time.csv", "events.csv"]
    with (tmp_path / "out" / "events.csv").open() as f:
        rows = {r["event"]: r for r in csv.DictReader(f)}
    assert rows["week-3"]["state"] == "hidden" and rows["week-3"]["valence_index"] == ""
    assert json.loads((tmp_path / "out" / "comparison.json").read_text())["segments"] == 10
    html = (tmp_path / "out" / "comparison.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 2 and "hidden: fewer than 5 people" in html
    assert "hidden: complementary rule" in html and "Complementary rule:" in html


def test_cli_compare_and_its_errors(store, tmp_path):
    runner = CliRunner()
    db = store.url
    r = runner.invoke(app, ["event", "compare", "week-1", "week-2", "--out", str(tmp_path / "c"), "--db", db,
                            "--format", "json,csv"])
    assert r.exit_code == 0, r.output
    assert "week-1: 13 people, valence" in r.output and (tmp_path / "c" / "events.csv").is_file()
    for args, message in ((["week-1"], "at least two events"), (["week-1", "week-1"], "only once"),
                          (["week-1", "nope"], "no event named 'nope'")):
        r = runner.invoke(app, ["event", "compare", *args, "--out", str(tmp_path / "x"), "--db", db])
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output
