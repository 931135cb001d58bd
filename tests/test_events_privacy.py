"""The privacy rule holds against someone who adds faces of their own and knows their scores.

The attack: one real person passes the exit camera; in the same minute the attacker uploads four copies of
their own photo, reads their own scores from ``/api/v1/analyze``, and computes ``5 x share - 4 x own``.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from events_media import Crossing, make_video
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner
from web_access import ACCESS, OPERATOR

from moodlens.cli import app as cli
from moodlens.events.privacy import PrivateReleases, noisy_shares, project_to_simplex
from moodlens.events.report import build_report
from moodlens.events.store import PROB_COLUMNS, EventStore
from moodlens.events.stream_ingest import ingest_video
from moodlens.spec import EMOTIONS
from moodlens.web import create_app

ROOT = Path(__file__).resolve().parents[1]
MINUTE = datetime(2025, 6, 1, 18, 0, tzinfo=UTC)


def photo_taken_at(when: datetime) -> bytes:
    """The attacker's own photo (a face unlike the camera's), with EXIF DateTimeOriginal set to ``when``."""
    face = Image.fromarray(skimage.data.astronaut()[20:260, 120:340]).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = when.astimezone().strftime("%Y:%m:%d %H:%M:%S")  # EXIF holds local time
    buf = io.BytesIO()
    face.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


@pytest.fixture
def server(tmp_path):
    app = create_app(workers=1, access=ACCESS)
    app.state.event_db = f"sqlite:///{tmp_path / 'events.db'}"
    with TestClient(app, headers=OPERATOR) as client:
        yield client, app.state.event_db


def test_padding_a_camera_minute_with_own_photos_finds_it_hidden(server, tmp_path):
    client, db = server
    assert client.post("/api/v1/events", json={"name": "gala"}).status_code == 201
    video = make_video(tmp_path / "door.avi", [Crossing(0, 20)], frames=20, fps=10.0, size=(320, 240))
    with EventStore(db) as store:
        ingest_video(store, "gala", video, start=MINUTE.replace(second=5), progress=False)
    mine = photo_taken_at(MINUTE.replace(second=30))
    own = client.post("/api/v1/analyze", files=[("files", ("me.jpg", mine, "image/jpeg"))]).json()
    own = np.array([own["images"][0]["faces"][0]["scores"][e] for e in EMOTIONS])
    for _ in range(4):
        r = client.post("/api/v1/events/gala/photos", params={"batch": "mine"},
                        files=[("files", ("me.jpg", mine, "image/jpeg"))])
        assert r.status_code == 200 and r.json()["faces"] == 1

    report = client.get("/api/v1/events/gala/report").json()
    [minute] = [b for b in report["timeline"] if b["people"] == 5]  # the camera's person and the four copies
    assert minute["start"] == MINUTE.replace(tzinfo=None).isoformat()
    assert minute["state"] == "hidden" and minute["hidden_by"] == "photo_padding" and minute["valence_index"] is None
    assert all(minute[f"share_{e}"] is None for e in EMOTIONS)
    assert report["overall"]["hidden_by"] == "photo_padding" and report["overall"]["shares"] is None
    assert all(s["state"] == "hidden" for s in report["sources"])

    # The attack itself is real: on the exact numbers it recovers the person to three decimals.
    with EventStore(db) as store:
        df = store.observations("gala")
    person = df[df["kind"] == "video"].groupby("track")[list(PROB_COLUMNS)].mean().to_numpy()[0]
    people = df.groupby(["source_id", "track"])[list(PROB_COLUMNS)].mean().to_numpy()
    assert len(people) == 5
    recovered = 5 * people.mean(0) - 4 * own
    assert np.abs(recovered - person).max() < 1e-3


HAPPY = project_to_simplex(np.array([0.02, 0.01, 0.03, 0.85, 0.02, 0.04, 0.03]))
SAD = project_to_simplex(np.array([0.06, 0.01, 0.08, 0.02, 0.70, 0.02, 0.11]))
OWN = project_to_simplex(np.array([0.10, 0.02, 0.10, 0.20, 0.20, 0.08, 0.30]))


def tells_apart(trials: int, epsilon: float | None) -> float:
    """How often ``5 x share - 4 x own`` tells which of two people was padded (a coin flip is 0.5)."""
    correct = 0
    for truth, person in ((0, HAPPY), (1, SAD)):
        rows = np.vstack([person, *[OWN] * 4])
        for _ in range(trials):
            shares = rows.mean(0) if epsilon is None else noisy_shares(rows, epsilon)
            recovered = 5 * shares - 4 * OWN
            correct += int(np.abs(recovered - SAD).sum() < np.abs(recovered - HAPPY).sum()) == truth
    return correct / (2 * trials)


def test_noise_bounds_what_padding_a_photo_group_reveals():
    """Groups of photos only are shown; there the noise is what protects the fifth person (e.g. a guest whose
    photo a colleague uploaded): telling a happy from a sad guest stays within the epsilon-DP bound."""
    assert tells_apart(20, None) == 1.0  # without noise the attacker is always right
    epsilon = 1.0
    bound = math.exp(epsilon) / (1 + math.exp(epsilon))  # 0.731: no test can do better under epsilon-DP
    trials = 1500
    accuracy = tells_apart(trials, epsilon)
    assert accuracy < bound + 3 * math.sqrt(0.25 / (2 * trials)), accuracy
    recovered = np.array([5 * noisy_shares(np.vstack([HAPPY, *[OWN] * 4]), epsilon) - 4 * OWN for _ in range(2000)])
    close = np.abs(recovered - HAPPY) <= 0.05
    assert not close.all(1).any()  # never all seven scores to within 0.05
    assert close.mean() < 0.1  # and any one of them only by chance (about 3% per class, docs/privacy.md)


def test_who_may_be_shown():
    releases = PrivateReleases.__new__(PrivateReleases)
    releases.min_group_size = 5
    cases = {(4, 0): False, (5, 0): True, (5, 5): True, (5, 4): False, (10, 6): False, (10, 5): True, (9, 4): True}
    assert {case: releases.shown(*case) for case in cases} == cases



@pytest.mark.parametrize("epsilon", [0, -1, math.nan, math.inf])
def test_a_budget_that_promises_nothing_is_refused(tmp_path, epsilon):
    store = EventStore(tmp_path / "events.db")
    store.create_event("gala")
    with pytest.raises(ValueError, match="positive, finite"):
        PrivateReleases(store, "gala", epsilon)
    with pytest.raises(ValueError, match="positive, finite"):
        noisy_shares(np.full((5, 7), 1 / 7), epsilon)
    store.close()

def add_people(store: EventStore, label: str, n: int, minute: int = 0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    src = store.open_source("gala", "video", label)
    first = store.max_track(src.id) + 1
    rows = [{"frame": i, "ts": MINUTE.replace(tzinfo=None, minute=minute), "track": first + i, "box_w": 50,
             "box_h": 50, **dict(zip(PROB_COLUMNS, rng.dirichlet(np.ones(7)).tolist(), strict=True))}
            for i in range(n)]
    store.commit_batch(src.id, rows, n)


def test_numbers_are_fixed_per_data_version(event_db_url, tmp_path):
    store = EventStore(event_db_url)
    store.create_event("gala")
    add_people(store, "door", 12)
    exact = build_report(store, "gala", model=None, epsilon=None).data["overall"]["shares"]
    first = build_report(store, "gala", model=None).data
    assert first["overall"]["shares"] != exact  # noisy
    for _ in range(3):  # reloading gives the very same numbers: nothing to average
        assert build_report(store, "gala", model=None).data["overall"] == first["overall"]
    assert build_report(store, "gala", min_group_size=6, model=None).data["overall"] == first["overall"]
    assert store.group_releases("gala")["overall"].versions == 1

    # Another process starting at the same moment releases the same numbers.
    other = EventStore(event_db_url)
    late = PrivateReleases(other, "gala")
    add_people(store, "door", 1, seed=1)
    people = store.observations("gala").groupby("track")[list(PROB_COLUMNS)].mean().to_numpy()
    mine = PrivateReleases(store, "gala").release("overall", people)
    assert np.array_equal(late.release("overall", people).shares, mine.shares)
    other.close()
    second = build_report(store, "gala", model=None).data["overall"]
    assert second["people"] == 13 and second["shares"] != first["overall"]["shares"]  # new data, new noise
    assert store.group_releases("gala")["overall"].versions == 2  # what a reader can combine: 2 x epsilon
    store.close()


def test_groups_with_the_same_people_share_one_release(event_db_url):
    store = EventStore(event_db_url)
    store.create_event("gala")
    add_people(store, "door", 8)
    people = store.observations("gala").groupby("track")[list(PROB_COLUMNS)].mean().to_numpy()
    releases = PrivateReleases(store, "gala")
    overall = releases.release("overall", people).shares
    # The event's only source holds the same people: the same noisy numbers, in any row order, also after a
    # restart (read back from the store); fewer people are other data and get noise of their own.
    assert np.array_equal(releases.release("source:1", people[::-1]).shares, overall)
    assert np.array_equal(PrivateReleases(store, "gala").release("bin:0/60", people).shares, overall)
    assert not np.array_equal(releases.release("bin:60/60", people[:6]).shares, overall)
    data = build_report(store, "gala", model=None).data
    [source], [minute] = data["sources"], data["timeline"]
    overall = {f"share_{k}": v for k, v in data["overall"]["shares"].items()} | {
        "valence_index": data["overall"]["valence_index"]}
    assert overall == {k: source[k] for k in overall} == {k: minute[k] for k in overall}
    store.close()


def test_cli_and_web_show_the_same_numbers(server):
    client, db = server
    with EventStore(db) as store:
        store.create_event("gala")
        add_people(store, "door", 8)
    web = client.get("/api/v1/events/gala/report").json()["overall"]["shares"]
    out = Path(db.removeprefix("sqlite:///")).parent / "report"
    r = CliRunner().invoke(cli, ["event", "report", "gala", "--out", str(out), "--format", "json", "--db", db])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "report.json").read_text())["overall"]["shares"] == web
    assert "differential-privacy" in json.loads((out / "report.json").read_text())["privacy"]["rules"]["noise"]


def test_privacy_cost_benchmark_runs(synthetic_fer_csv_gz, tmp_path):
    out = tmp_path / "cost.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "privacy_cost.py"), "--data",
                           str(synthetic_fer_csv_gz), "--trials", "30", "--sizes", "5", "20", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert [g["people"] for g in result["groups"]] == [5, 20]
    assert result["groups"][0]["share_error_pp_mean"] > result["groups"][1]["share_error_pp_mean"] > 0
    assert result["attack"]["dp_bound_on_telling_apart"] == pytest.approx(math.e / (1 + math.e))
    assert "padding attack" in proc.stdout
