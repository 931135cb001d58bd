"""An image far thinner than it is long (8 x 100000 pixels, about 2 KB as PNG) cannot be scaled for face
detection: it is an ``ImageError`` (a 4xx) everywhere, never a crash, a 500 or an ingest that never ends."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import pytest
import skimage.data
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner
from web_access import ACCESS, OPERATOR

from moodlens.cli import app as cli
from moodlens.events.ingest import ingest_images
from moodlens.events.store import EventStore
from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.imageio import ImageError, load_image
from moodlens.web import create_app

ASTRONAUT = cv2.imencode(".jpg", skimage.data.astronaut()[:, :, ::-1])[1].tobytes()


def thin_png(width: int = 8, height: int = 100_000) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 128).save(buf, "PNG", optimize=True)
    return buf.getvalue()


THIN = thin_png()


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(workers=1, access=ACCESS)
    app.state.event_db = f"sqlite:///{tmp_path_factory.mktemp('db') / 'events.db'}"
    with TestClient(app, headers=OPERATOR) as c:
        yield c


def test_library_raises_image_error_with_a_kind(analyzer):
    assert len(THIN) < 4000
    assert load_image(THIN).shape == (100_000, 8, 3)  # decoding is fine; scaling it for detection is not
    for data in (THIN, thin_png(100_000, 8)):
        with pytest.raises(ImageError, match="too thin to hold a face") as info:
            analyzer.analyze(data, name="thin.png")
        assert info.value.kind == "invalid" and str(info.value).startswith("thin.png: ")


def test_api_answers_422_and_analyses_the_rest(client):
    r = client.post("/api/v1/analyze", files=[("files", ("thin.png", THIN, "image/png"))])
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert (error["filename"], error["status"]) == ("thin.png", 422) and "too thin" in error["reason"]
    r = client.post("/api/v1/analyze", files=[("files", ("thin.png", THIN, "image/png")),
                                              ("files", ("a.jpg", ASTRONAUT, "image/jpeg"))])
    assert r.status_code == 207 and len(r.json()["images"][0]["faces"]) == 1


def test_websocket_answers_an_error_and_stays_open(client):
    with client.websocket_connect("/api/v1/live") as ws:
        ws.send_bytes(THIN)
        assert "too thin" in ws.receive_json()["error"]
        ws.send_bytes(ASTRONAUT)
        assert len(ws.receive_json()["faces"]) == 1


def test_event_upload_skips_it_and_stores_the_rest_once(client):
    assert client.post("/api/v1/events", json={"name": "thin"}).status_code == 201
    files = [("files", ("a.jpg", ASTRONAUT, "image/jpeg")), ("files", ("thin.png", THIN, "image/png")),
             ("files", ("b.jpg", ASTRONAUT, "image/jpeg"))]
    r = client.post("/api/v1/events/thin/photos", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["photos"], body["faces"]) == (2, 2)
    assert [(e["filename"], e["status"], e["index"]) for e in body["errors"]] == [("thin.png", 422, 1)]
    assert client.get("/api/v1/events/thin/report").json()["totals"]["faces"] == 2


class FailsOnSecondPhoto(Analyzer):
    """The real analyzer, with a fault after the first photo (as an unexpected library error would be)."""

    calls = 0

    def analyze(self, image, color=None, name=None):  # noqa: ANN001, ANN201
        FailsOnSecondPhoto.calls += 1
        if FailsOnSecondPhoto.calls == 2:
            raise RuntimeError("fault injected after the first photo")
        return super().analyze(image, color, name)


def test_a_failed_upload_stores_nothing_so_a_retry_counts_once(tmp_path, analyzer):
    store = EventStore(tmp_path / "events.db")
    store.create_event("gala")
    photos = [("a.jpg", ASTRONAUT), ("b.jpg", ASTRONAUT), ("c.jpg", ASTRONAUT)]
    with pytest.raises(RuntimeError, match="fault injected"):
        ingest_images(store, "gala", photos, batch="door", analyzer=FailsOnSecondPhoto())
    assert store.data_version("gala") == (0, 0)  # the first photo's face was not kept
    result = ingest_images(store, "gala", photos, batch="door", analyzer=analyzer)
    assert (result.frames, result.faces) == (3, 3)
    assert len(store.observations("gala")) == 3
    store.close()


def folder_with_thin_photo(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(ASTRONAUT)
    (folder / "b-thin.png").write_bytes(THIN)
    (folder / "c.jpg").write_bytes(ASTRONAUT)
    return folder


def test_analyze_command_skips_and_reports_it(tmp_path):
    folder = folder_with_thin_photo(tmp_path)
    out = tmp_path / "faces.json"
    r = CliRunner().invoke(cli, ["analyze", str(folder), "--json", str(out), "--csv", str(tmp_path / "f.csv")])
    assert r.exit_code == 0, r.output
    assert "2 images analysed, 1 skipped: 1 unreadable image" in r.output and "too thin" in r.output
    results = json.loads(out.read_text())
    assert [Path(x["filename"]).name for x in results["images"]] == ["a.jpg", "c.jpg"]
    [error] = results["errors"]
    assert Path(error["filename"]).name == "b-thin.png" and error["index"] == 1 and error["kind"] == "invalid"
    assert "too thin" in error["reason"] and len(results["images"][1]["faces"]) == 1


def test_ingest_photos_skips_records_and_finishes(tmp_path):
    folder = folder_with_thin_photo(tmp_path)
    db = str(tmp_path / "events.db")
    runner = CliRunner()
    assert runner.invoke(cli, ["event", "create", "gala", "--db", db]).exit_code == 0
    r = runner.invoke(cli, ["event", "ingest", "gala", "--photos", str(folder), "--db", db, "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "2 photos analysed, 2 faces" in r.output and "1 unreadable file skipped" in r.output
    assert "skipped " in r.output and "b-thin.png: image is 8x100000, too thin" in r.output
    assert "stopped before the end" not in r.output
    # Running it again (as after an interruption) goes on after the last photo instead of failing on it.
    again = runner.invoke(cli, ["event", "ingest", "gala", "--photos", str(folder), "--db", db, "--no-progress"])
    assert again.exit_code == 0 and "0 photos analysed" in again.output, again.output
    with EventStore(db) as store:
        [source] = store.sources("gala")
        assert source.finished and source.frames_done == 3
