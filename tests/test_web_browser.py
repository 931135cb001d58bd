"""A real browser (Debian's chromium, driven by Playwright) against ``moodlens serve`` on 127.0.0.1.

Screenshots land in ``test-artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from skimage import data

CHROMIUM = os.environ.get("MOODLENS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"{CHROMIUM} not found: apt-get install chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """``moodlens serve`` in a subprocess, exactly as an operator starts it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from moodlens.cli import app; app()", "serve",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moodlens serve did not start:\n{proc.stdout.read()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    paths = {"astronaut.jpg": folder / "astronaut.jpg", "notes.jpg": folder / "notes.jpg"}
    cv2.imwrite(str(paths["astronaut.jpg"]), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    paths["notes.jpg"].write_text("not a photo, whatever the name says\n")
    return paths


def launch(playwright, extra_args: list[str] = ()):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def test_upload_shows_annotated_photo_table_chart_and_downloads(server, photos, artifacts, tmp_path):
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.goto(server + "/")
            assert "never stored or logged" in page.inner_text("#privacy-notice")
            page.set_input_files("#file-input", [str(photos["astronaut.jpg"]), str(photos["notes.jpg"])])
            page.wait_for_selector("#progress-text:has-text('Done')", timeout=60_000)

            card = page.locator('article.result[data-filename="astronaut.jpg"]')
            img = card.locator("img")
            assert img.get_attribute("src").startswith("data:image/jpeg;base64,")
            assert img.evaluate("i => i.complete && i.naturalWidth") == 512
            rows = card.locator("table.faces tbody tr")
            assert rows.count() == 1
            emotion = rows.first.get_attribute("data-emotion")
            assert emotion in rows.first.inner_text()

            bars = page.locator("#chart rect[data-emotion]")
            assert bars.count() == 7
            counts = {bars.nth(i).get_attribute("data-emotion"): int(bars.nth(i).get_attribute("data-count"))
                      for i in range(7)}
            assert counts[emotion] == 1 and sum(counts.values()) == 1
            assert page.locator(f'#chart rect[data-emotion="{emotion}"]').evaluate("r => r.getBBox().width") > 10
            assert page.inner_text("#stat-faces") == "1" and page.inner_text("#stat-rejected") == "1"
            assert "notes.jpg" in page.inner_text("#error-list") and "not a supported image" in page.inner_text(
                "#error-list")

            with page.expect_download() as download:
                page.click("#download-csv")
            rows_csv = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
            assert [(r["filename"], r["emotion"]) for r in rows_csv] == [("astronaut.jpg", emotion)]
            page.screenshot(path=str(artifacts / "web-upload-desktop.png"), full_page=True)

            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                     has_touch=True)
            phone.goto(server + "/")
            # Drag and drop five photos: the page sends them in two requests (4 + 1) and counts them all.
            photo = base64.b64encode(photos["astronaut.jpg"].read_bytes()).decode()
            phone.evaluate("""photo => {
                const bytes = Uint8Array.from(atob(photo), c => c.charCodeAt(0));
                const drop = new DataTransfer();
                for (let i = 1; i <= 5; i++) drop.items.add(new File([bytes], `guest${i}.jpg`, {type: "image/jpeg"}));
                const event = new DragEvent("drop", {dataTransfer: drop, bubbles: true, cancelable: true});
                document.getElementById("dropzone").dispatchEvent(event);
            }""", photo)
            phone.wait_for_selector("#progress-text:has-text('Done: 5 photos')", timeout=60_000)
            assert phone.inner_text("#stat-photos") == "5" and phone.inner_text("#stat-faces") == "5"
            assert phone.locator("article.result").count() == 5
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
            phone.screenshot(path=str(artifacts / "web-upload-phone.png"), full_page=True)
        finally:
            browser.close()


def fake_camera_video(path: Path, frames: int = 10) -> Path:
    """A Y4M clip of the astronaut on a 640x480 frame, which chromium plays as its fake camera."""
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 64:576] = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (512, 480))
    yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes()
    with path.open("wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            f.write(b"FRAME\n" + yuv)
    return path


def test_live_page_draws_faces_from_the_camera(server, artifacts, tmp_path):
    """Chromium's fake camera plays the astronaut; boxes, FPS, server time and the distribution appear."""
    video = fake_camera_video(tmp_path / "astronaut.y4m")
    with sync_api.sync_playwright() as p:
        browser = launch(p, [*FAKE_CAMERA, f"--use-file-for-fake-video-capture={video}"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server + "/live")
            page.click("#start")
            page.wait_for_selector("#live-status:has-text('Live')", timeout=20_000)
            page.wait_for_function("Number(document.getElementById('fps').textContent) >= 1", timeout=20_000)
            page.wait_for_function("document.getElementById('faces-now').textContent === '1'", timeout=20_000)
            assert page.inner_text("#latency").endswith("ms")
            counts = page.eval_on_selector_all("#live-chart rect[data-emotion]",
                                               "rs => rs.map(r => Number(r.dataset.count))")
            assert len(counts) == 7 and sum(counts) >= 1
            drawn = page.eval_on_selector("#overlay", """c => {
                const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 3; i < px.length; i += 4) n += px[i] > 0; return n; }""")
            assert drawn > 500  # the box outline and label were painted over the video
            page.screenshot(path=str(artifacts / "web-live.png"))
            page.click("#stop")
            assert page.inner_text("#live-status") == "Camera off."
        finally:
            browser.close()


def test_live_page_explains_a_missing_camera_and_docs_render(server):
    """Without a camera (or permission) the page says so instead of failing silently; /docs works offline."""
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context(permissions=[])
            page = context.new_page()
            page.goto(server + "/live")
            page.click("#start")
            page.wait_for_selector("#live-status.error", timeout=20_000)
            message = page.inner_text("#live-status")
            assert "camera" in message.lower() and ("denied" in message or "No camera" in message), message
            assert page.is_enabled("#start")

            # The API docs render from the server's own Swagger UI files (no CDN reachable here).
            page.goto(server + "/docs", wait_until="commit")  # 1.5 MB of script: parse time varies with load
            page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/analyze']", timeout=90_000)
            assert page.locator(".opblock").count() >= 4
        finally:
            browser.close()


def test_chromium_is_the_system_one():
    assert shutil.which("chromium") or Path(CHROMIUM).is_file()
