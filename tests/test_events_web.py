"""The events part of the web app: list, create, report JSON/HTML, live fragment, photo uploads to an event."""

from __future__ import annotations

import re

import cv2
import pytest
import skimage.data
from events_media import Crossing, make_video
from fastapi.testclient import TestClient
from web_access import OPERATOR

from moodlens.events.store import EventStore
from moodlens.events.stream_ingest import ingest_video


@pytest.fixture
def client(events_app, events_db):
    with TestClient(events_app, headers=OPERATOR) as c:
        yield c


def jpeg(image) -> bytes:
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def test_events_page_is_in_the_nav_and_lists_events(client):
    assert client.post("/api/v1/events", json={"name": "gala", "description": "spring"}).status_code == 201
    assert client.post("/api/v1/events", json={"name": "gala"}).status_code == 409
    assert client.post("/api/v1/events", json={"name": ""}).status_code == 422
    page = client.get("/events")
    assert page.status_code == 200
    assert 'href="/events"' in page.text and 'href="/events/gala"' in page.text
    assert [e["name"] for e in client.get("/api/v1/events").json()] == ["gala"]
    assert client.get("/events/nope").status_code == 404
    assert client.post("/api/v1/events", json={"name": "Sommerfest München"}).status_code == 201
    for path in ("/events/Sommerfest München", "/events/Sommerfest München/fragment",
                 "/events/Sommerfest München/report.html"):
        assert client.get(path).status_code == 200, path
    assert client.get("/api/v1/events/nope/report").status_code == 404



@pytest.mark.parametrize("body", [
    '{"name": "\\ud800"}', '{"name": "gala", "description": "\\udfff"}',  # lone surrogates: no database takes them
    '{"name": "gala", "retention_days": 9223372036854775808}',  # past the database's integers
    '{"name": "gala", "retention_days": 1000000000}',  # past what a date can count
    '{"name": "gala", "description": "' + "d" * 2001 + '"}', '{"name": "gala", "description": "a\\u0000b"}'])
def test_creating_an_event_from_hostile_json_is_refused_with_422(client, body):
    r = client.post("/api/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert client.get("/api/v1/events").json() == []
    ok = client.post("/api/v1/events", json={"name": "gala", "description": "Hall A\nبهار 👨\u200d👩\u200d👧",
                                             "retention_days": 36_500})
    assert ok.status_code == 201, ok.text

def test_photo_upload_is_assigned_to_the_event(client):
    client.post("/api/v1/events", json={"name": "gala"})
    astronaut = jpeg(skimage.data.astronaut()[:, :, ::-1])
    files = [("files", ("a.jpg", astronaut, "image/jpeg")), ("files", ("b.jpg", astronaut, "image/jpeg")),
             ("files", ("notes.txt", b"hello", "text/plain"))]
    r = client.post("/api/v1/events/gala/photos?batch=entrance", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["photos"], body["faces"], body["batch"]) == (2, 2, "entrance")
    assert [(e["filename"], e["status"]) for e in body["errors"]] == [("notes.txt", 415)]
    report = client.get("/api/v1/events/gala/report").json()
    assert report["totals"]["photo_faces"] == 2 and report["sources"][0]["source"] == "entrance"
    assert report["overall"]["hidden_by"] == "min_group_size"  # 2 people < 5
    only_bad = client.post("/api/v1/events/gala/photos", files=[("files", ("x.txt", b"x", "text/plain"))])
    assert only_bad.status_code == 415
    assert client.post("/api/v1/events/nope/photos", files=files[:1]).status_code == 404


def test_web_cannot_lower_the_privacy_threshold(client):
    client.post("/api/v1/events", json={"name": "gala"})
    assert client.get("/api/v1/events/gala/report?min_group_size=1").status_code == 422
    assert client.get("/api/v1/events/gala/report?min_group_size=10").json()["min_group_size"] == 10


def test_live_fragment_follows_a_running_ingest(client, events_db, tmp_path):
    """The event page polls a fragment: 304 while nothing changes, new numbers once an ingest commits."""
    client.post("/api/v1/events", json={"name": "exit"})
    page = client.get("/events/exit")
    assert page.status_code == 200 and "events.js" in page.text
    first = client.get("/events/exit/fragment")
    assert first.status_code == 200 and 'data-people="0"' in first.text
    etag = first.headers["etag"]
    assert client.get("/events/exit/fragment", headers={"If-None-Match": etag}).status_code == 304

    # Another writer (as `moodlens event ingest --camera` would be) adds observations to the same database.
    video = make_video(tmp_path / "cam.avi", [Crossing(0, 20), Crossing(5, 25, y=310, mirror=True)], frames=25,
                       size=(320, 240))
    writer = EventStore(events_db)
    ingest_video(writer, "exit", video, progress=False)
    writer.close()
    second = client.get("/events/exit/fragment", headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["etag"] != etag
    assert 'data-people="2"' in second.text
    full = client.get("/events/exit/report.html")
    assert full.status_code == 200 and full.text.startswith("<!doctype html>")
    assert not re.search(r'(src|href)="(https?:)?//', full.text)
