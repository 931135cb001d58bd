"""Report aggregation: privacy rule, valence index, timeline, model caveats (stored observations, no detector)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest

from moodlens.events.report import build_report, model_summary, parse_formats, valence_definition
from moodlens.events.store import PROB_COLUMNS, EventStore
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


def add_people(store: EventStore, uri: str, people: list[tuple[np.ndarray, float]], kind: str = "video") -> None:
    """One track per person: (probabilities, minute offset of their 3 observations)."""
    src = store.open_source("gala", kind, uri, label=uri)
    start = store.max_track(src.id) + 1
    rows = []
    for i, (probs, minute) in enumerate(people):
        for k in range(3):
            rows.append({"frame": i * 10 + k, "ts": T0 + timedelta(minutes=minute, seconds=k), "track": start + i,
                         "box_w": 60, "box_h": 70, **dict(zip(PROB_COLUMNS, map(float, probs), strict=True))})
    store.commit_batch(src.id, rows, frames_done=len(people) * 10, finished=True)


def test_small_event_shows_counts_only(store):
    add_people(store, "door", [(HAPPY, 0)] * 4)
    report = build_report(store, "gala", model_card={})
    assert report.people == 4 and report.faces == 12
    assert report.data["overall"]["suppressed"] and report.data["overall"]["shares"] is None
    assert all(b["suppressed"] for b in report.data["timeline"]) and "most_positive" not in report.data["peaks"]
    assert "happy" not in json.dumps(report.data["overall"])


def test_valence_index_and_shares(store):
    add_people(store, "door", [(HAPPY, 0)] * 6 + [(SAD, 0)] * 2 + [(NEUTRAL, 0)] * 2)
    report = build_report(store, "gala", model_card={}, epsilon=None)  # exact: the arithmetic is checked here
    overall = report.data["overall"]
    assert overall["shares"]["happy"] == pytest.approx(0.6) and overall["dominant"] is None  # not private
    assert overall["valence_index"] == pytest.approx(100 * (0.6 - 0.2))
    assert (overall["positive"], overall["neutral"], overall["negative"]) == pytest.approx((0.6, 0.2, 0.2))
    for group in ("happy", "neutral", "sad"):
        assert group in valence_definition()
    assert set(VALENCE) == set(EMOTIONS)


def test_each_person_weighs_once_however_long_they_stay(store):
    src = store.open_source("gala", "video", "v")
    rows = []
    for track, probs, n in [(1, HAPPY, 100)] + [(t, SAD, 1) for t in range(2, 7)]:
        rows += [{"frame": k, "ts": T0, "track": track, "box_w": 50, "box_h": 50,
                  **dict(zip(PROB_COLUMNS, map(float, probs), strict=True))} for k in range(n)]
    store.commit_batch(src.id, rows, 100, True)
    shares = build_report(store, "gala", model_card={}, epsilon=None).data["overall"]["shares"]
    assert shares["happy"] == pytest.approx(1 / 6, abs=1e-4) and shares["sad"] == pytest.approx(5 / 6, abs=1e-4)


def test_small_groups_are_hidden_also_by_complement(store):
    add_people(store, "big-door", [(HAPPY, 0)] * 8 + [(SAD, 1)] * 6)
    add_people(store, "side-door", [(SAD, 0)] * 2)  # 2 people: hidden
    add_people(store, "photos", [(NEUTRAL, 0)] * 7, kind="photos")
    report = build_report(store, "gala", model_card={})
    sources = {s["source"]: s for s in report.data["sources"]}
    assert sources["side-door"]["suppressed"] and sources["side-door"]["people"] == 2
    # Total minus the shown sources would reveal the 2 hidden people: the smallest shown source is hidden too.
    assert sources["photos"]["suppressed"] and not sources["big-door"]["suppressed"]
    assert sources["photos"]["share_neutral"] is None
    timeline = report.timeline.set_index("start")
    assert timeline.loc[T0, "people"] == 8 + 2 + 7 and timeline.loc[T0 + timedelta(minutes=1), "people"] == 6
    assert report.data["peaks"]["busiest"]["people"] == 17


def test_timeline_bins_and_peaks(store):
    add_people(store, "door", [(HAPPY, 0)] * 5 + [(SAD, 2)] * 5 + [(NEUTRAL, 4)] * 5)
    report = build_report(store, "gala", model_card={}, epsilon=None)
    rows = report.data["timeline"]
    assert [r["people"] for r in rows] == [5, 0, 5, 0, 5]  # empty minutes kept, so gaps show
    assert report.data["peaks"]["most_positive"]["start"] == T0.isoformat()
    assert report.data["peaks"]["most_negative"]["top_expression"] == "sad"
    two = build_report(store, "gala", bin_minutes=2, model_card={})
    assert [r["people"] for r in two.data["timeline"]] == [5, 5, 5]


def test_event_window_filters_observations(store):
    store.create_event("windowed", starts_at=T0 + timedelta(minutes=1), ends_at=T0 + timedelta(minutes=3))
    src = store.open_source("windowed", "video", "v")
    rows = [{"frame": m, "ts": T0 + timedelta(minutes=m), "track": m, "box_w": 50, "box_h": 50,
             **dict(zip(PROB_COLUMNS, map(float, HAPPY), strict=True))} for m in range(5)]
    store.commit_batch(src.id, rows, 5, True)
    report = build_report(store, "windowed", model_card={})
    assert report.people == 3 and report.data["totals"]["observations_outside_window"] == 2


def test_model_caveats_with_and_without_metrics():
    none = model_summary({})
    assert none["accuracy"] is None and any("no measured accuracy" in c for c in none["caveats"])
    assert none["unreliable_classes"] == ["disgust", "fear"]
    card = {"name": "m1", "metrics": {"publictest": {"accuracy": 0.712, "macro_f1": 0.69, "per_class": {
        "angry": {"f1": 0.62, "precision": 0.6, "recall": 0.64}, "disgust": {"f1": 0.7}, "fear": 0.48,
        "happy": 0.9, "sad": 0.45, "surprise": 0.8, "neutral": 0.66}}}}
    summary = model_summary(card)
    assert summary["accuracy"] == 0.712 and summary["per_class"]["angry"] == 0.62
    assert summary["unreliable_classes"] == ["disgust", "fear", "sad"]  # fear/disgust always, sad by its F1
    assert any("71.2%" in c and "0.690" in c for c in summary["caveats"])


def test_writes_every_format(store, tmp_path):
    add_people(store, "door", [(HAPPY, 0)] * 5)
    report = build_report(store, "gala", model_card={"metrics": {"publictest": {"accuracy": 0.7}}})
    paths = report.write(tmp_path / "out", "json,csv")
    assert sorted(p.name for p in paths) == ["report.json", "sources.csv", "summary.csv", "timeline.csv"]
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["totals"]["people"] == 5 and data["model"]["accuracy"] == 0.7
    assert "share_happy" in (tmp_path / "out" / "timeline.csv").read_text().splitlines()[0]
    with pytest.raises(ValueError, match="pdf"):
        parse_formats("html,pdf")
    with pytest.raises(ValueError, match="min_group_size"):
        build_report(store, "gala", min_group_size=0)
