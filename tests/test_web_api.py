"""JSON API of ``moodlens serve``: happy path, every bad input, limits, concurrency, privacy."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import struct
import tempfile
import time
import zlib
from contextlib import ExitStack
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from skimage import data
from starlette.websockets import WebSocketDisconnect
from web_access import ACCESS, OPERATOR

from moodlens.card import ModelCard, file_sha256
from moodlens.recognition.classifier import default_model_path
from moodlens.settings import AnalysisSettings
from moodlens.spec import EMOTIONS
from moodlens.web import create_app

MB = 1024 * 1024
LIMITS = {"max_upload_mb": 3.0, "max_files": 5, "max_pixels": 4_000_000, "workers": 2, "max_queue": 8}


def encode(image: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def astronaut_bgr() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


ASTRONAUT = encode(astronaut_bgr())
CAT = encode(cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""
    png = bytearray(encode(np.zeros((10, 10, 3), np.uint8), ".png"))
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])) & 0xFFFFFFFF)
    return bytes(png)


# name -> (bytes, expected status, words the reason must contain)
BAD_FILES = {
    "notes.jpg": (b"meeting notes, not a photo\n" * 20, 415, "text"),
    "truncated.jpg": (ASTRONAUT[: len(ASTRONAUT) // 2], 422, "truncated"),
    "empty.jpg": (b"", 422, "empty"),
    "dot.png": (encode(np.zeros((1, 1, 3), np.uint8), ".png"), 422, "1x1"),
    "bomb.png": (png_claiming(100_000, 100_000), 413, "decompression bomb"),
    "big.jpg": (encode(np.zeros((2000, 2500, 3), np.uint8)), 413, "5,000,000 pixels"),
    "iphone.heic": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200), 415, "HEIC"),
    "scan.pdf": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", 415, "PDF"),
}


@pytest.fixture(scope="module")
def app():
    return create_app(**LIMITS, access=ACCESS)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, headers=OPERATOR) as c:
        yield c


def asgi_client(app) -> httpx.AsyncClient:
    """An async client calling the app in process, signed in as the operator."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", headers=OPERATOR)


def post(client: TestClient, *files: tuple[str, bytes], annotate: bool = False, mime: str = "image/jpeg"):
    return client.post("/api/v1/analyze", params={"annotate": annotate} if annotate else None,
                       files=[("files", (name, content, mime)) for name, content in files])


def test_one_photo_gives_boxes_and_seven_scores(client):
    r = post(client, ("astronaut.jpg", ASTRONAUT))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["errors"] == []
    [image] = body["images"]
    assert (image["filename"], image["width"], image["height"], image["index"]) == ("astronaut.jpg", 512, 512, 0)
    assert "annotated_image" not in image
    [face] = image["faces"]
    x, y, w, h = face["box"]
    assert 150 < x + w / 2 < 290 and 60 < y + h / 2 < 200, face["box"]  # her face, upper middle of the photo
    assert list(face["scores"]) == list(EMOTIONS)
    assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["emotion"] == max(face["scores"], key=face["scores"].get)
    assert face["confidence"] == pytest.approx(max(face["scores"].values()))


def test_smiling_astronaut_is_happy(client):
    """Needs a trained model: fails on the placeholder shipped before training finishes."""
    [face] = post(client, ("astronaut.jpg", ASTRONAUT)).json()["images"][0]["faces"]
    assert face["emotion"] == "happy", face["scores"]


def test_annotate_returns_the_photo_with_boxes(client):
    image = post(client, ("astronaut.jpg", ASTRONAUT), annotate=True).json()["images"][0]
    prefix = "data:image/jpeg;base64,"
    assert image["annotated_image"].startswith(prefix)
    drawn = cv2.imdecode(np.frombuffer(base64.b64decode(image["annotated_image"][len(prefix):]), np.uint8),
                         cv2.IMREAD_COLOR)
    assert drawn.shape == (512, 512, 3)
    x, y, w, h = image["faces"][0]["box"]
    original = astronaut_bgr()
    # The box outline changes pixels along the face border; far from the face the photo is untouched (JPEG noise only).
    border = np.abs(drawn[y:y + h, x].astype(int) - original[y:y + h, x]).mean()
    corner = np.abs(drawn[-60:, -60:].astype(int) - original[-60:, -60:]).mean()
    assert border > 40 > 8 > corner, (border, corner)


def test_photo_without_people_has_no_faces(client):
    r = post(client, ("cat.jpg", CAT))
    assert r.status_code == 200
    assert r.json()["images"][0]["faces"] == []


def test_format_comes_from_content_not_name(client):
    r = post(client, ("holiday.txt", ASTRONAUT), mime="text/plain")
    assert r.status_code == 200 and len(r.json()["images"][0]["faces"]) == 1
    r = post(client, ("holiday.jpg", b"<html>not an image</html>"))
    assert r.status_code == 415


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_alone_gets_4xx_naming_file_and_reason(client, name):
    content, status, words = BAD_FILES[name]
    started = time.perf_counter()
    r = post(client, (name, content))
    assert time.perf_counter() - started < 5  # no hang, no giant allocation for the bomb
    assert r.status_code == status, r.text
    body = r.json()
    assert body["images"] == []
    [error] = body["errors"]
    assert (error["filename"], error["status"], error["index"]) == (name, status, 0)
    assert words in error["reason"], error["reason"]


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_in_batch_does_not_stop_the_rest(client, name):
    content, status, _ = BAD_FILES[name]
    r = post(client, ("first.jpg", ASTRONAUT), (name, content), ("last.jpg", CAT))
    assert r.status_code == 207, r.text
    body = r.json()
    assert [(i["index"], i["filename"]) for i in body["images"]] == [(0, "first.jpg"), (2, "last.jpg")]
    assert len(body["images"][0]["faces"]) == 1
    assert [(e["index"], e["filename"], e["status"]) for e in body["errors"]] == [(1, name, status)]


def test_all_files_bad_for_different_reasons_is_400(client):
    r = post(client, ("a.jpg", b""), ("b.pdf", BAD_FILES["scan.pdf"][0]))
    assert r.status_code == 400
    assert [e["status"] for e in r.json()["errors"]] == [422, 415]


def test_too_many_files_is_413(client):
    r = post(client, *[(f"p{i}.jpg", CAT) for i in range(LIMITS["max_files"] + 1)])
    assert r.status_code == 413
    assert "Too many files" in r.json()["detail"] and str(LIMITS["max_files"]) in r.json()["detail"]
    assert post(client, *[(f"p{i}.jpg", CAT) for i in range(LIMITS["max_files"])]).status_code == 200


def test_body_over_upload_limit_is_413(client):
    noise = np.random.default_rng(0).integers(0, 256, (800, 800, 3), np.uint8)
    r = post(client, *[(f"noise{i}.png", encode(noise, ".png")) for i in range(2)])  # ~3.7 MB > 3 MB
    assert r.status_code == 413
    assert "upload limit of 3 MB" in r.json()["detail"]


def test_body_over_limit_without_content_length_is_413(app):
    """A chunked upload (no Content-Length) is cut off while streaming, not after buffering it all."""
    boundary = "moodlensboundary"

    async def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.jpg\"\r\n"
               "Content-Type: image/jpeg\r\n\r\n").encode()
        for _ in range(8):
            yield bytes(MB // 2)

    async def run():
        async with asgi_client(app) as c:
            return await c.post("/api/v1/analyze", content=body(),
                                headers={"content-type": f"multipart/form-data; boundary={boundary}"})

    r = asyncio.run(run())
    assert r.status_code == 413


def test_missing_files_field_and_wrong_content_type(client):
    r = client.post("/api/v1/analyze", files=[("photo", ("a.jpg", ASTRONAUT, "image/jpeg"))])
    assert r.status_code == 422 and "files" in r.json()["detail"]
    r = client.post("/api/v1/analyze", json={"files": ["a.jpg"]})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]


def test_uploads_never_spill_to_temporary_files(client, tmp_path, monkeypatch):
    """Starlette spools uploads over 1 MB to temp files by default; ours must stay in memory."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    noise = np.random.default_rng(1).integers(0, 256, (700, 700, 3), np.uint8)
    big = encode(noise, ".png")
    assert len(big) > 1.2 * MB
    r = post(client, ("noise.png", big))
    assert r.status_code == 200
    assert list(spool.iterdir()) == []


def test_limits_endpoint(client):
    assert client.get("/api/v1/limits").json() == {"max_upload_bytes": 3 * MB, "max_pixels": 4_000_000,
                                                   "max_files": 5, "saving": False}


def test_save_dir_is_opt_in(tmp_path):
    saved = tmp_path / "saved"
    with TestClient(create_app(workers=1, save_dir=saved, access=ACCESS), headers=OPERATOR) as c:
        r = post(c, ("astronaut.jpg", ASTRONAUT), ("bad.jpg", b""))
        assert c.get("/api/v1/limits").json()["saving"] is True
        assert "turned on saving" in c.get("/").text
    assert r.status_code == 207
    files = sorted(p.name for p in saved.iterdir())
    assert len(files) == 2 and files[0].endswith("astronaut.jpg") and files[1].endswith("astronaut.jpg.json")
    assert (saved / files[0]).read_bytes() == ASTRONAUT
    assert json.loads((saved / files[1]).read_text())["faces"][0]["box"] == r.json()["images"][0]["faces"][0]["box"]


def test_simultaneous_uploads_all_answered_correctly(app, client):
    """Eight requests at once (more than the two workers): every answer matches the same photo analysed alone."""
    flipped = encode(astronaut_bgr()[:, ::-1])
    photos = {"astronaut.jpg": ASTRONAUT, "cat.jpg": CAT, "flipped.jpg": flipped}
    expected = {name: post(client, (name, content)).json()["images"][0]["faces"] for name, content in photos.items()}
    order = list(photos) * 3
    order = order[:8]

    async def run():
        async with asgi_client(app) as c:
            return await asyncio.gather(*[
                c.post("/api/v1/analyze", files=[("files", (name, photos[name], "image/jpeg"))]) for name in order])

    responses = asyncio.run(run())
    for name, r in zip(order, responses, strict=True):
        assert r.status_code == 200, r.text
        [image] = r.json()["images"]
        assert image["filename"] == name
        assert image["faces"] == expected[name]
    assert client.get("/healthz").json()["in_flight"] == 0


def test_overload_gets_503_then_recovers(app, client):
    pool = app.state.pool
    with ExitStack() as held:
        for _ in range(pool.capacity):
            held.enter_context(pool.admit())
        r = post(client, ("astronaut.jpg", ASTRONAUT))
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1" and "server busy" in r.json()["detail"]
        with client.websocket_connect("/api/v1/live") as ws:
            ws.send_bytes(ASTRONAUT)
            assert ws.receive_json()["busy"] is True
    assert post(client, ("astronaut.jpg", ASTRONAUT)).status_code == 200


def test_event_loop_stays_free_during_a_long_batch(app):
    """/healthz answers while a batch is analysed, because inference runs on worker threads."""
    big = encode(cv2.resize(astronaut_bgr(), (1200, 1200)))
    batch = [("files", (f"big{i}.jpg", big, "image/jpeg")) for i in range(3)]

    async def run():
        async with asgi_client(app) as c:
            done: dict[str, float] = {}

            async def analyze():
                r = await c.post("/api/v1/analyze", files=batch)
                done["batch"] = time.perf_counter()
                return r

            async def health():
                await asyncio.sleep(0.05)
                r = await c.get("/healthz")
                done["health"] = time.perf_counter()
                return r

            batch_response, health_response = await asyncio.gather(analyze(), health())
            return batch_response, health_response, done

    batch_response, health_response, done = asyncio.run(run())
    assert batch_response.status_code == 200 and len(batch_response.json()["images"]) == 3
    assert health_response.json()["status"] == "ok" and health_response.json()["in_flight"] == 1
    assert done["health"] < done["batch"]


def _model_copy(tmp_path: Path, card_update: dict) -> Path:
    """The shipped model under another name, with the flip-free graph its card names (video and the live page
    use it), its card changed through ModelCard (so still a valid card)."""
    model = tmp_path / "m.onnx"
    shutil.copy(default_model_path(), model)
    card = ModelCard.of_model(default_model_path())
    if card.flip_free_graph:
        shutil.copy(default_model_path().with_name(card.flip_free_graph), tmp_path / card.flip_free_graph)
    ModelCard.model_validate(card.model_dump() | card_update).save(model.with_suffix(".json"))
    return model


def test_model_endpoint_reports_card_metrics(tmp_path):
    shipped = ModelCard.of_model(default_model_path()).split("PublicTest").model_dump()
    model = _model_copy(tmp_path, {"name": "fer-test", "version": "7",
                                   "metrics": {"publictest": shipped | {"accuracy": 0.712, "macro_f1": 0.68}}})
    with TestClient(create_app(AnalysisSettings(model=model), workers=1, access=ACCESS), headers=OPERATOR) as c:
        info = c.get("/api/v1/model").json()
        page = c.get("/").text
    assert (info["name"], info["version"], info["classes"]) == ("fer-test", "7", list(EMOTIONS))
    assert info["metrics"] == {"split": "publictest", "accuracy": 0.712, "macro_f1": 0.68}
    assert info["sha256"] == file_sha256(model)[:16] and info["detector"]
    assert "accuracy 71.2%" in page
    # The card as the API shows it: no file-system paths, host names or training commands.
    shown = json.dumps(info["card"])
    assert info["card"]["name"] == "fer-test" and "/" not in shown and ".pt" not in shown and "commands" not in shown


def test_model_endpoint_without_metrics_says_null(tmp_path):
    model = _model_copy(tmp_path, {"metrics": {}})
    with TestClient(create_app(AnalysisSettings(model=model), workers=1, access=ACCESS), headers=OPERATOR) as c:
        info = c.get("/api/v1/model").json()
        assert c.get("/").status_code == 200
    assert info["metrics"]["accuracy"] is None and info["metrics"]["macro_f1"] is None


def test_healthz(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["capacity"] == LIMITS["workers"] + LIMITS["max_queue"]


def test_head_answers_like_get_without_a_body(client):
    for path in ("/healthz", "/api/v1/limits", "/docs", "/static/common.js"):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code == 200 and head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"], path
    assert client.head("/api/v1/analyze").status_code == 405  # no GET there either
    assert client.head("/api/v1/limits", headers={"Authorization": ""}).status_code == 401


def test_openapi_docs_work_offline(client):
    docs = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/analyze", "/api/v1/model", "/api/v1/limits", "/healthz"} <= set(spec["paths"])
    body = spec["paths"]["/api/v1/analyze"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["files"]["items"]["format"] == "binary"
    assert {"200", "207", "413", "415", "422", "503"} <= set(spec["paths"]["/api/v1/analyze"]["post"]["responses"])



def test_live_connections_beyond_the_limit_are_told_busy_and_closed():
    app = create_app(workers=1, max_live=1, access=ACCESS)
    with TestClient(app, headers=OPERATOR) as c:
        with c.websocket_connect("/api/v1/live") as first:
            with c.websocket_connect("/api/v1/live") as second:
                refusal = second.receive_json()
                with pytest.raises(WebSocketDisconnect) as closed:
                    second.receive_json()
            assert refusal["busy"] is True and "live connections are open" in refusal["error"]
            assert closed.value.code == 1013
            first.send_bytes(ASTRONAUT)
            assert len(first.receive_json()["faces"]) == 1
        with c.websocket_connect("/api/v1/live") as again:  # a closed connection frees its place
            again.send_bytes(ASTRONAUT)
            assert len(again.receive_json()["faces"]) == 1

def test_live_websocket_tracks_faces_and_survives_bad_frames(client):
    with client.websocket_connect("/api/v1/live") as ws:
        ws.send_bytes(ASTRONAUT)
        first = ws.receive_json()
        ws.send_bytes(b"garbage")
        bad = ws.receive_json()
        ws.send_text("hello")
        text = ws.receive_json()
        ws.send_bytes(ASTRONAUT)
        second = ws.receive_json()
    assert (first["width"], first["height"], len(first["faces"])) == (512, 512, 1)
    assert first["ms"] > 0
    assert "not a supported image" in bad["error"] and "binary" in text["error"]
    assert first["faces"][0]["track_id"] == second["faces"][0]["track_id"] is not None
