"""Reports in the web app: cached until new data arrives, each built once at a time; CSV tables; comparisons."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import time
from datetime import datetime, timedelta

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from web_access import VIEWER

from moodlens.events.store import PROB_COLUMNS, EventStore
from moodlens.web.report_cache import SingleFlightCache

T0 = datetime(2025, 6, 1, 18, 0)


def fill(url: str, name: str, people: int, per_person: int = 3, hours: float = 3.0, seed: int = 0,
         starts_at: datetime | None = None) -> None:
    """An event with ``people`` tracks of ``per_person`` observations spread over ``hours``."""
    rng = np.random.default_rng(seed)
    with EventStore(url) as store:
        store.create_event(name, starts_at=starts_at, ends_at=starts_at + timedelta(hours=hours) if starts_at else None)
        src = store.open_source(name, "video", "door.mp4", label="door.mp4")
        at = rng.uniform(0, hours * 3600, people)
        probs = rng.dirichlet(np.ones(7), people)
        rows = [{"frame": i * per_person + k, "ts": T0 + timedelta(seconds=float(at[i]) + k), "track": i + 1,
                 "box_w": 50, "box_h": 50, **dict(zip(PROB_COLUMNS, map(float, probs[i]), strict=True))}
                for i in range(people) for k in range(per_person)]
        store.commit_batch(src.id, rows, len(rows), True)


def test_single_flight_cache_builds_once_and_shares_results_and_errors():
    cache = SingleFlightCache()
    started = threading.Barrier(8)
    calls: list[int] = []

    def build() -> str:
        calls.append(1)
        time.sleep(0.3)
        return "report"

    def ask(results: list[str]) -> None:
        started.wait()
        results.append(cache.get("gala", 1, build))

    results: list[str] = []
    threads = [threading.Thread(target=ask, args=(results,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["report"] * 8 and len(calls) == 1 == cache.builds
    assert cache.get("gala", 1, build) == "report" and len(calls) == 1  # cached until the version changes
    assert cache.get("gala", 2, build) == "report" and len(calls) == 2

    def fail() -> str:
        raise LookupError("no such event")

    with pytest.raises(LookupError):
        cache.get("nope", 1, fail)


def test_web_builds_each_report_once_and_rebuilds_only_for_new_data(events_app, events_db):
    fill(events_db, "big", people=8000, per_person=5)  # 40,000 observations: a build takes long enough to overlap

    async def burst(paths: list[str]) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=events_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=VIEWER) as client:
            return await asyncio.gather(*(client.get(p) for p in paths))

    paths = ["/api/v1/events/big/report"] * 4 + ["/events/big/fragment"] * 4
    responses = asyncio.run(burst(paths))
    assert [r.status_code for r in responses] == [200] * 8
    cache = events_app.state.report_cache
    assert cache.builds == 2  # one report, one HTML fragment, for eight concurrent requests
    assert len({r.json()["generated_at"] for r in responses[:4]}) == 1
    asyncio.run(burst(paths[:2]))
    assert cache.builds == 2  # nothing new: served from the cache
    with EventStore(events_db) as store:
        [src] = store.sources("big")
        store.commit_batch(src.id, [{"frame": 10**6, "ts": T0, "track": 10**6, "box_w": 50, "box_h": 50,
                                     **dict.fromkeys(PROB_COLUMNS, 1 / 7)}], 10**6 + 1, True)
    [fresh] = asyncio.run(burst(["/api/v1/events/big/report"]))
    assert fresh.json()["totals"]["people"] == 8001 and cache.builds == 3


def test_report_tables_as_csv(events_app, events_db):
    fill(events_db, "gala", people=30, hours=2, starts_at=T0)
    with TestClient(events_app, headers=VIEWER) as client:
        r = client.get("/api/v1/events/gala/timeline.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == 120 and {row["state"] for row in rows} <= {"empty", "hidden", "shown"}
        assert "attachment" in r.headers["content-disposition"]
        assert client.get("/api/v1/events/gala/nope.csv").status_code == 404
        assert client.get("/api/v1/events/nope/timeline.csv").status_code == 404
        assert client.get("/api/v1/events/gala/sources.csv?min_group_size=1").status_code == 422
        page = client.get("/events/gala")
        assert "/api/v1/events/gala/timeline.csv" in page.text


def test_compare_page_json_and_csv(events_app, events_db):
    for i, name in enumerate(("week-1", "week-2", "week-3")):
        fill(events_db, name, people=20 + 10 * i, hours=1 + i, seed=i, starts_at=T0 + timedelta(days=7 * i))
    with TestClient(events_app, headers=VIEWER) as client:
        listing = client.get("/events")
        assert 'action="/events/compare"' in listing.text and 'name="e" value="week-2"' in listing.text
        page = client.get("/events/compare?e=week-1&e=week-2&e=week-3")
        assert page.status_code == 200 and 'data-events="3"' in page.text and "Compare events" in page.text
        data = client.get("/api/v1/events/compare", params=[("e", "week-1"), ("e", "week-3")]).json()
        assert [e["event"] for e in data["events"]] == ["week-1", "week-3"] and data["segments"] == 10
        r = client.get("/api/v1/events/compare.csv", params=[("e", "week-1"), ("e", "week-2"),
                                                              ("table", "event_time")])
        assert r.status_code == 200 and len(list(csv.DictReader(io.StringIO(r.text)))) == 20
        assert client.get("/api/v1/events/compare?e=week-1").status_code == 422
        assert client.get("/api/v1/events/compare?e=week-1&e=nope").status_code == 404
        assert client.get("/api/v1/events/compare?e=week-1&e=week-2&min_group_size=2").status_code == 422
        bare = client.get("/events/compare", follow_redirects=False)
        assert bare.status_code == 303 and bare.headers["location"] == "/events"
