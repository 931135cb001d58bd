"""Report aggregation on stored rows: privacy rules, valence index, time bins, peaks, window, model facts."""

from __future__ import annotations

import csv
import json
import time
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from moodlens.card import ModelCard
from moodlens.events import charts
from moodlens.events.groups import release_groups
from moodlens.events.model_facts import ModelFacts, assess, caveats
from moodlens.events.report import build_report, parse_formats, valence_definition
from moodlens.events.report_files import write_report
from moodlens.events.report_html import render_html
from moodlens.events.store import PROB_COLUMNS, EventStore
from moodlens.events.timebins import DAY, HOUR, MAX_BINS, MINUTE, choose_step, report_period, to_us
from moodlens.recognition.classifier import default_model_path, resolve_model
from moodlens.spec import EMOTIONS, VALENCE

T0 = datetime(2025, 6, 1, 18, 0, 0)
HAPPY = np.eye(7)[EMOTIONS.index("happy")]
SAD = np.eye(7)[EMOTIONS.index("sad")]
NEUTRAL = np.eye(7)[EMOTIONS.index("neutral")]


@pytest.fixture
def store(tmp_path):
    s = EventStore(tmp_path / "events.db")
    s.create_event("gala")
    yield s
    s.close()


def row(frame: int, ts: datetime, track: int, probs: np.ndarray) -> dict:
    return {"frame": frame, "ts": ts, "track": track, "box_w": 60, "box_h": 70,
            **dict(zip(PROB_COLUMNS, map(float, probs), strict=True))}


def add_people(store: EventStore, uri: str, people: list[tuple[np.ndarray, float]], kind: str = "video",
               event: str = "gala") -> int:
    """One track per person: (probabilities, minute offset of their 3 observations); returns the source id."""
    src = store.open_source(event, kind, uri, label=uri)
    start = store.max_track(src.id) + 1
    rows = [row(i * 10 + k, T0 + timedelta(minutes=minute, seconds=k), start + i, probs)
            for i, (probs, minute) in enumerate(people) for k in range(3)]
    store.commit_batch(src.id, rows, frames_done=len(people) * 10, finished=True)
    return src.id


def test_small_event_shows_counts_only(store):
    add_people(store, "door", [(HAPPY, 0)] * 4)
    report = build_report(store, "gala", model=None, epsilon=None)
    assert report.people == 4 and report.faces == 12
    overall = report.data["overall"]
    assert (overall["state"], overall["hidden_by"], overall["shares"]) == ("hidden", "min_group_size", None)
    assert all(b["state"] == "hidden" for b in report.data["timeline"]) and "most_positive" not in report.data["peaks"]
    assert "happy" not in json.dumps(report.data["overall"])
    assert report.data["summary"][0].startswith("4 people (4 in video or camera, 0 in photos) and 12 face")
    assert report.data["privacy"]["notes"] == ["The event as a whole has fewer than 5 people: only head counts "
                                               "are shown."]


def test_valence_index_and_shares(store):
    add_people(store, "door", [(HAPPY, 0)] * 6 + [(SAD, 0)] * 2 + [(NEUTRAL, 0)] * 2)
    report = build_report(store, "gala", model=None, epsilon=None)
    overall = report.data["overall"]
    assert overall["shares"]["happy"] == pytest.approx(0.6) and "dominant" not in overall  # exact counts: never
    assert overall["valence_index"] == pytest.approx(100 * (0.6 - 0.2))
    assert (overall["positive"], overall["neutral"], overall["negative"]) == pytest.approx((0.6, 0.2, 0.2))
    for group in ("happy", "neutral", "sad"):
        assert group in valence_definition()
    assert set(VALENCE) == set(EMOTIONS)


def test_each_person_weighs_once_however_long_they_stay(store):
    src = store.open_source("gala", "video", "v")
    rows = [row(k, T0, track, probs) for track, probs, n in [(1, HAPPY, 100)] + [(t, SAD, 1) for t in range(2, 7)]
            for k in range(n)]
    store.commit_batch(src.id, rows, 100, True)
    shares = build_report(store, "gala", model=None, epsilon=None).data["overall"]["shares"]
    assert shares["happy"] == pytest.approx(1 / 6, abs=1e-4) and shares["sad"] == pytest.approx(5 / 6, abs=1e-4)


def test_every_hidden_number_names_its_rule(store, tmp_path):
    add_people(store, "big-door", [(HAPPY, 0)] * 8 + [(SAD, 1)] * 6)
    add_people(store, "side-door", [(SAD, 0)] * 2)  # 2 people: hidden by the minimum group size
    add_people(store, "photos", [(NEUTRAL, 0)] * 7, kind="photos")
    report = build_report(store, "gala", model=None, epsilon=None)
    sources = {s["source"]: s for s in report.data["sources"]}
    assert (sources["side-door"]["hidden_by"], sources["side-door"]["people"]) == ("min_group_size", 2)
    # Total minus the shown sources would reveal the 2 hidden people: the smallest shown source is hidden too.
    assert sources["photos"]["hidden_by"] == "complementary" and sources["photos"]["share_neutral"] is None
    assert sources["big-door"]["state"] == "shown" and sources["big-door"]["hidden_by"] is None
    timeline = report.timeline.set_index("start")
    assert timeline.loc[T0, "people"] == 8 + 2 + 7 and timeline.loc[T0 + timedelta(minutes=1), "people"] == 6
    assert report.data["peaks"]["busiest"]["people"] == 17
    # The privacy section explains both rules, and says which sources each one hid.
    rules = report.data["privacy"]["rules"]
    assert "fewer than 5 people" in rules["min_group_size"] and "subtract" not in rules["min_group_size"]
    assert "total minus the shown" in rules["complementary"]
    assert report.data["privacy"]["notes"] == [
        "2 of 3 sources are hidden: 1 source with fewer than 5 people and 1 source by the complementary rule."]
    html = render_html(report)
    assert "hidden: fewer than 5 people" in html and "hidden: complementary rule" in html
    assert html.count("Complementary rule:") == 1 and "Minimum group size:" in html
    write_report(report, tmp_path / "out", "csv")
    with (tmp_path / "out" / "sources.csv").open() as f:
        hidden = {r["source"]: (r["state"], r["hidden_by"], r["valence_index"]) for r in csv.DictReader(f)}
    assert hidden == {"big-door": ("shown", "", "14.3"), "side-door": ("hidden", "min_group_size", ""),
                      "photos": ("hidden", "complementary", "")}


def test_release_groups_complementary_rule_hides_smallest_shown_first():
    people = np.array([2, 0, 9, 6, 30])
    means = np.tile(HAPPY, (5, 1))
    frame = release_groups(people, people * 3, means, min_group_size=5)
    assert list(frame["state"]) == ["hidden", "empty", "shown", "hidden", "shown"]
    assert list(frame["hidden_by"]) == ["min_group_size", None, None, "complementary", None]
    assert frame.loc[3, "valence_index"] is None and frame.loc[2, "valence_index"] == 100.0
    alone = release_groups(np.array([3]), np.array([3]), means[:1], 5)
    assert list(alone["hidden_by"]) == ["min_group_size"]  # nothing to hide besides
    with pytest.raises(ValueError, match="min_group_size"):
        release_groups(people, people, means, 0)


def test_timeline_bins_states_and_peaks(store, tmp_path):
    add_people(store, "door", [(HAPPY, 0)] * 7 + [(SAD, 2)] * 5 + [(NEUTRAL, 4)] * 6 + [(HAPPY, 6)] * 6
               + [(SAD, 8)] * 2)
    report = build_report(store, "gala", model=None, epsilon=None)
    rows = report.data["timeline"]
    assert report.data["period"]["bin"] == "1 minute"
    assert [r["people"] for r in rows] == [7, 0, 5, 0, 6, 0, 6, 0, 2]  # empty minutes kept, so gaps show
    # The 2-person bin is hidden; so is the smallest shown bin, or the event total would give those 2 away.
    assert [(r["state"], r["hidden_by"]) for r in rows] == [
        ("shown", None), ("empty", None), ("hidden", "complementary"), ("empty", None), ("shown", None),
        ("empty", None), ("shown", None), ("empty", None), ("hidden", "min_group_size")]
    assert report.data["peaks"]["most_positive"]["start"] == T0.isoformat()
    assert report.data["peaks"]["most_negative"]["top_expression"] == "neutral"
    write_report(report, tmp_path / "out", "csv")
    with (tmp_path / "out" / "timeline.csv").open() as f:
        states = [(r["state"], r["hidden_by"]) for r in csv.DictReader(f)]
    assert states[:3] == [("shown", ""), ("empty", ""), ("hidden", "complementary")]
    assert states[-1] == ("hidden", "min_group_size")
    two = build_report(store, "gala", bin_minutes=2, model=None, epsilon=None)
    assert [r["people"] for r in two.data["timeline"]] == [7, 5, 6, 6, 2]
    with pytest.raises(ValueError, match="bin_minutes"):
        build_report(store, "gala", bin_minutes=0, epsilon=None)


def test_peaks_only_when_they_differ_and_plural_forms(store):
    add_people(store, "door", [(HAPPY, 0)] * 5 + [(SAD, 0)])
    d = build_report(store, "gala", model=None, epsilon=None).data
    assert "most_positive" not in d["peaks"] and d["peaks"]["level"]["bins"] == 1
    text = " ".join(d["summary"])
    assert "Most positive" not in text and "Only one time bin has 5 or more people: 2025-06-01 18:00–18:01 UTC" in text
    assert "6 people (6 in video or camera, 0 in photos) and 18 face observations from 1 source." in text
    one = EventStore(store.url)
    one.create_event("solo")
    add_people(one, "door", [(HAPPY, 0)], event="solo")
    solo = build_report(one, "solo", model=None, epsilon=None).data
    assert solo["summary"][0] == "1 person (1 in video or camera, 0 in photos) and 3 face observations from 1 source."
    assert "with 1 person." in " ".join(solo["summary"])



def test_photo_rule_is_named_wherever_it_hides_numbers(store):
    # 7 people, but only 3 from the camera: the photo rule hides them, not the minimum group size.
    add_people(store, "door", [(HAPPY, 0)] * 3)
    add_people(store, "photos", [(SAD, 0)] * 4, kind="photos")
    report = build_report(store, "gala", model=None, epsilon=None)
    text = " ".join(report.data["summary"])
    assert report.data["overall"]["hidden_by"] == "photo_padding"
    assert "Fewer than 5 people from video or cameras: expressions are not shown." in text
    assert "The event as a whole has fewer than 5 people from video or cameras: only head counts" in text
    assert "No time bin is shown (see Privacy)." in text and "has 5 or more people" not in text
    assert "Expressions are shown from 5 people on" not in render_html(report)
    # The chart draws and names the bin it hid, as it does for the other rules.
    legend = charts._legend_handles(charts._state_masks(report.timeline), 5)
    assert [h.get_label() for h in legend] == ["hidden: fewer than 5 people from video or cameras"]
    # With ten more camera people later the event is shown, and the note says which rule hid the first minute.
    add_people(store, "stage", [(NEUTRAL, 2)] * 10)
    d = build_report(store, "gala", model=None, epsilon=None).data
    assert d["privacy"]["notes"][-1] == ("1 of 2 time bins with people is hidden: 1 time bin with fewer than 5 "
                                         "people from video or cameras.")
    assert "Only one time bin is shown: 2025-06-01 18:02–18:03 UTC" in " ".join(d["summary"])


def test_hidden_bins_are_counted_among_those_with_people(store):
    add_people(store, "door", [(HAPPY, 0)] * 2 + [(SAD, 5)] * 2 + [(NEUTRAL, 9)] * 2)
    d = build_report(store, "gala", model=None, epsilon=None).data
    assert d["period"]["bins"] == 10
    assert d["privacy"]["notes"] == ["All 3 time bins with people are hidden: 3 time bins with fewer than 5 people."]



def test_a_minimum_group_size_of_one_is_worded_as_such(store):
    add_people(store, "door", [(HAPPY, 0)] * 2)
    d = build_report(store, "gala", min_group_size=1, model=None, epsilon=None).data
    rules = " ".join(d["privacy"]["rules"].values())
    assert "1 people" not in rules and "every group with anyone in it shows its expressions" in rules

def test_an_event_without_sources_says_so(store):
    html = render_html(build_report(store, "gala", model=None, epsilon=None))
    assert 'id="no-sources"' in html and 'id="sources-table"' not in html


def test_sources_csv_holds_the_camera_drops_the_html_shows(store, tmp_path):
    source = add_people(store, "door", [(HAPPY, 0)] * 5)
    outage = store.add_outage(source, T0 + timedelta(minutes=1), "camera dropped")
    store.end_outage(outage, T0 + timedelta(minutes=2))
    store.update_source(source, frames_dropped=37)
    report = build_report(store, "gala", model=None, epsilon=None)
    assert "37 frames dropped" in render_html(report)
    write_report(report, tmp_path / "out", "csv")
    with (tmp_path / "out" / "sources.csv").open() as f:
        (door,) = csv.DictReader(f)
    assert (door["frames_dropped"], door["offline"]) == ("37", "2025-06-01T18:01:00 to 2025-06-01T18:02:00")

def test_event_window_lists_observations_outside_it(store):
    store.create_event("windowed", starts_at=T0 + timedelta(minutes=1), ends_at=T0 + timedelta(minutes=3))
    src = store.open_source("windowed", "video", "v", label="door.mp4")
    store.commit_batch(src.id, [row(m, T0 + timedelta(minutes=m), m, HAPPY) for m in range(5)], 5, True)
    report = build_report(store, "windowed", model=None, epsilon=None)
    assert report.people == 3 and report.data["totals"]["observations_outside_window"] == 2
    assert report.data["period"]["basis"] == "the event window"
    assert [(o["source"], o["side"], o["observations"]) for o in report.data["outside"]] == [
        ("door.mp4", "before", 1), ("door.mp4", "after", 1)]
    assert "outside the report period" in render_html(report)


def test_bin_ladder_and_period():
    assert choose_step(0, 30 * MINUTE) == MINUTE
    assert choose_step(0, 3 * HOUR) == 5 * MINUTE
    assert choose_step(0, 3 * DAY) == 30 * MINUTE
    assert choose_step(0, 20 * DAY) == 6 * HOUR
    assert choose_step(0, 100 * DAY) == DAY
    assert choose_step(0, 400 * DAY) == 3 * DAY
    t = np.array([to_us(T0), to_us(T0 + timedelta(seconds=20))])
    axis, inside = report_period(t, None, None)
    assert (axis.bins, axis.label, inside.all()) == (1, "1 minute", True)


@pytest.mark.parametrize("far", [datetime(2026, 6, 1, 18, 0), datetime(9999, 12, 31, 23, 59, 59),
                                 datetime(1, 1, 1, 0, 0, 1)])
def test_far_off_photo_dates_are_listed_outside_not_binned(store, far):
    """A photo whose clock says another year (or 9999) must not stretch the time axis."""
    add_people(store, "photos", [(HAPPY, 0)] * 6 + [(SAD, 30)] * 3, kind="photos")
    src = store.open_source("gala", "photos", "photos")
    store.commit_batch(src.id, [row(99, far, 999, SAD)], 100, True)
    started, cpu = time.perf_counter(), time.process_time()
    report = build_report(store, "gala", model=None, epsilon=None)
    html = render_html(report)
    # CPU time of this process: other processes on a busy machine cannot make it fail.
    assert time.process_time() - cpu < 5, f"{time.perf_counter() - started:.1f} s wall"
    assert len(report.timeline) == 31 <= MAX_BINS and report.data["period"]["bin"] == "1 minute"
    assert report.data["outside"] == [{"source": "photos", "side": "after" if far > T0 else "before",
                                       "observations": 1, "first": far.isoformat(), "last": far.isoformat()}]
    assert report.people == 9 and far.isoformat() in html


def test_aggregates_match_a_plain_pandas_computation(store):
    """The vectorised aggregation agrees with a straightforward groupby on random data."""
    rng = np.random.default_rng(3)
    for uri in ("a", "b"):
        src = store.open_source("gala", "video", uri, label=uri)
        rows = [row(i, T0 + timedelta(seconds=float(rng.uniform(0, 3600))), int(rng.integers(1, 40)),
                    rng.dirichlet(np.ones(7))) for i in range(800)]
        store.commit_batch(src.id, rows, 800, True)
    report = build_report(store, "gala", min_group_size=1, model=None, epsilon=None)
    df = store.observations("gala")
    people = df.groupby(["source", "track"])[list(PROB_COLUMNS)].mean()
    assert report.people == len(people)
    assert report.data["overall"]["shares"]["happy"] == pytest.approx(people["p_happy"].mean(), abs=1e-4)
    step = pd.Timedelta(seconds=report.data["period"]["bin_seconds"])
    df["bin"] = df["ts"].dt.floor(step)
    per_bin = df.groupby(["bin", "source", "track"])[list(PROB_COLUMNS)].mean().groupby(level=0)
    expected = per_bin.size()
    got = report.timeline.set_index("start")["people"]
    assert got[got > 0].to_dict() == {k.to_pydatetime(): v for k, v in expected.items()}
    sad = per_bin["p_sad"].mean()
    shown = report.timeline.set_index("start")
    assert np.allclose(shown.loc[sad.index, "share_sad"].astype(float), sad.to_numpy(), atol=1e-4)


def test_model_facts_come_from_each_source_not_the_report_time_model(store):
    """A source keeps the facts of the model it was analysed with; older sources fall back to ``model``."""
    recorded = add_people(store, "door", [(HAPPY, 0)] * 6)
    old = add_people(store, "side", [(SAD, 0)] * 6)
    path = resolve_model("default")
    store.record_model(recorded, ModelFacts.from_card(ModelCard.of_model(path), path))
    store.update_source(old, model="moodlens-v0")
    report = build_report(store, "gala", model="accurate", epsilon=None)
    models = {m["name"]: m for m in report.data["models"]}
    default = models[ModelCard.of_model(path).name]
    assert default["recorded"] and default["sources"] == ["door"] and len(default["sha256"]) == 64
    assert default["accuracy"] == pytest.approx(ModelCard.of_model(path).split().accuracy)
    fallback = models[ModelCard.of_model(resolve_model("accurate")).name]
    assert not fallback["recorded"] and fallback["sources"] == ["side"]
    assert "Not recorded when these sources were analysed" in render_html(report)


def test_caveats_flag_classes_by_f1_and_recall():
    path = resolve_model("default")
    m = assess(ModelFacts.from_card(ModelCard.of_model(path), path))
    per_class = m["per_class"]
    expected = {c for c, v in per_class.items() if v["f1"] < 0.60 or v["recall"] < 0.60}
    assert set(m["flagged"]) == expected and {"fear", "sad"} <= expected and "disgust" not in expected
    assert m["uncertain"] == {"disgust": 56}  # measured on 56 test faces only
    text = " ".join(caveats([{**m, "sources": ["door"]}]))
    assert "fear (F1 0.55 and recall 0.50)" in text and "below 0.60" in text and "disgust (56 faces)" in text
    none = caveats([{**assess(ModelFacts("m0")), "sources": ["door"]}])
    assert any("no measured accuracy" in c for c in none)


def _card_with(name: str, accuracy: float, macro_f1: float, f1: dict[str, float]) -> ModelCard:
    """The shipped card with other PublicTest numbers (validated like any card)."""
    card = ModelCard.of_model(default_model_path())
    test = card.split("PublicTest").model_dump()
    test |= {"accuracy": accuracy, "macro_f1": macro_f1,
             "per_class": {c: m | {"f1": f1[c]} for c, m in test["per_class"].items()}}
    return ModelCard.model_validate(card.model_dump() | {"name": name, "metrics": {"publictest": test}})


def test_writes_every_format(store, tmp_path):
    add_people(store, "door", [(HAPPY, 0)] * 5)
    report = build_report(store, "gala", model_card=_card_with("m2", 0.7, 0.6, dict.fromkeys(EMOTIONS, 0.6)))
    paths = write_report(report, tmp_path / "out", "json,csv")
    assert sorted(p.name for p in paths) == ["outside.csv", "report.json", "sources.csv", "summary.csv",
                                             "timeline.csv"]
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["totals"]["people"] == 5 and data["models"][0]["accuracy"] == 0.7
    assert "state" in (tmp_path / "out" / "timeline.csv").read_text().splitlines()[0]
    with pytest.raises(ValueError, match="pdf"):
        parse_formats("html,pdf")
    with pytest.raises(ValueError, match="min_group_size"):
        build_report(store, "gala", min_group_size=0, epsilon=None)


def test_csv_cells_cannot_run_as_formulas(store, tmp_path):
    add_people(store, "=HYPERLINK(\"http://x\")", [(HAPPY, 0)] * 5)
    write_report(build_report(store, "gala", model=None, epsilon=None), tmp_path / "out", "csv")
    text = (tmp_path / "out" / "sources.csv").read_text()
    assert "'=HYPERLINK" in text


def test_sqlite_and_postgresql_give_the_same_report(event_db_url):
    """Times read in bulk (seconds computed by the database) are exact to the millisecond on both backends."""
    with EventStore(event_db_url) as store:
        store.create_event("gala")
        add_people(store, "door", [(HAPPY, 0)] * 5 + [(SAD, 7)] * 5)
        src = store.open_source("gala", "photos", "photos", label="photos")
        store.commit_batch(src.id, [row(0, datetime(9999, 12, 31, 23, 59, 59, 250000), 1, SAD),
                                    row(1, T0 + timedelta(seconds=1.5), 2, NEUTRAL)], 2, True)
        arrays = store.observation_arrays("gala")
        report = build_report(store, "gala", model=None, epsilon=None)
    assert sorted(arrays["ts_us"])[-1] == to_us(datetime(9999, 12, 31, 23, 59, 59, 250000))
    assert to_us(T0 + timedelta(seconds=1.5)) in set(arrays["ts_us"])
    d = report.data
    assert (d["totals"]["people"], d["totals"]["first_seen"], d["totals"]["last_seen"]) == (
        11, T0.isoformat(), (T0 + timedelta(minutes=7, seconds=2)).isoformat())
    assert [r["people"] for r in d["timeline"]] == [6, 0, 0, 0, 0, 0, 0, 5]
    assert d["outside"][0]["first"] == "9999-12-31T23:59:59"
    assert d["overall"]["valence_index"] == pytest.approx(100 * (5 - 5) / 11, abs=0.1)
