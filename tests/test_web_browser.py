"""A real browser (Debian's chromium, driven by Playwright) against ``moodlens serve`` on 127.0.0.1.

Screenshots land in ``test-artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from live_server import free_port, running, serve_command
from skimage import data
from web_access import OPERATOR_TOKEN, VIEWER_TOKEN

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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``moodlens serve`` in a subprocess, exactly as an operator starts it (sign-in on, the tests' tokens)."""
    port = free_port()
    db = tmp_path_factory.mktemp("events") / "events.db"
    with running(serve_command(port, "--workers", "1"), port, env={"MOODLENS_DB": str(db)}) as url:
        yield url


def sign_in(page, server: str, token: str = OPERATOR_TOKEN, next_path: str = "/") -> None:
    """Open the login URL ``moodlens serve`` prints (token after '#') and wait for the page it leads to."""
    page.goto(f"{server}/login?next={next_path.replace('/', '%2F')}#token={token}")
    page.wait_for_url(server + next_path)


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
            sign_in(page, server)
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
            sign_in(phone, server)
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
            sign_in(page, server, next_path="/live")
            page.click("#start")
            page.wait_for_selector("#live-status:has-text('Live')", timeout=20_000)
            # Locator assertions, not wait_for_function: the page's CSP forbids evaluating strings as script.
            sync_api.expect(page.locator("#fps")).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=20_000)
            sync_api.expect(page.locator("#faces-now")).to_have_text("1", timeout=20_000)
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
            violations: list[str] = []
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            sign_in(page, server, next_path="/live")
            page.click("#start")
            page.wait_for_selector("#live-status.error", timeout=20_000)
            message = page.inner_text("#live-status")
            assert "camera" in message.lower() and ("denied" in message or "No camera" in message), message
            assert page.is_enabled("#start")

            # The API docs render from the server's own Swagger UI files (no CDN reachable here).
            page.goto(server + "/docs", wait_until="commit")  # 1.5 MB of script: parse time varies with load
            page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/analyze']", timeout=90_000)
            assert page.locator(".opblock").count() >= 4
            assert violations == []  # Swagger UI runs from static files under the Content-Security-Policy
        finally:
            browser.close()


def test_chromium_is_the_system_one():
    assert shutil.which("chromium") or Path(CHROMIUM).is_file()


def test_sign_in_roles_formula_safe_csv_and_no_policy_violations(server, artifacts, tmp_path):
    """The login flow as an operator and as a viewer, in chromium, with the Content-Security-Policy enforced."""
    violations: list[str] = []
    formula = tmp_path / "=HYPERLINK(1).jpg"
    formula.write_bytes(cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1].tobytes())
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 720}, accept_downloads=True)
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(server + "/events")
            page.wait_for_url(server + "/login?next=%2Fevents")  # not signed in: sent to the login page
            page.screenshot(path=str(artifacts / "web-login.png"))
            page.fill("#token", "not-the-token-0123456789")
            page.click("#login-form button")
            assert "not valid" in page.inner_text("#login-error")

            sign_in(page, server, OPERATOR_TOKEN, "/events")  # the URL `moodlens serve` prints
            assert "token" not in page.url and page.evaluate("document.cookie") == ""  # HttpOnly session cookie
            assert "Signed in as operator" in page.inner_text("#account")
            page.fill("#create-event input[name=name]", "gala")
            page.click("#create-event button")
            page.wait_for_url(server + "/events/gala")
            page.set_input_files("#event-upload input[type=file]", [str(formula)] * 6)
            page.fill("#event-upload input[name=batch]", "entrance")
            page.click("#event-upload button")
            sync_api.expect(page.locator("#upload-status")).to_contain_text("6 photo(s), 6 face(s) added",
                                                                            timeout=60_000)

            page.goto(server + "/")
            page.set_input_files("#file-input", [str(formula)])
            page.wait_for_selector("#progress-text:has-text('Done')", timeout=60_000)
            with page.expect_download() as download:
                page.click("#download-csv")
            [row] = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
            assert row["filename"] == "'=HYPERLINK(1).jpg"  # a spreadsheet shows it as text, never runs it

            page.click("#account button")  # sign out
            page.wait_for_url(server + "/login")
            page.goto(server + "/events")
            page.wait_for_url(server + "/login?next=%2Fevents")

            sign_in(page, server, VIEWER_TOKEN, "/events")
            nav = page.inner_text("nav")
            assert "Events" in nav and "Photos" not in nav and "Live camera" not in nav
            assert page.locator("#create-event").count() == 0  # nothing to create or upload for a viewer
            page.goto(server + "/events/gala")
            report = page.locator("#report section.ml-report")
            sync_api.expect(report).to_have_attribute("data-people", "6", timeout=30_000)
            assert page.locator("#event-upload").count() == 0
            page.screenshot(path=str(artifacts / "web-viewer-event.png"), full_page=True)
            status = page.evaluate("""async () => (await fetch("/api/v1/events", {method: "POST",
                headers: {"Content-Type": "application/json"}, body: JSON.stringify({name: "x"})})).status""")
            assert status == 403
        finally:
            browser.close()
    assert violations == []


EVIL_PAGE = """<!doctype html><html><body><script>
const photo = Uint8Array.from(atob("{photo}"), c => c.charCodeAt(0));
const body = new FormData();
body.append("files", new Blob([photo], {{type: "image/jpeg"}}), "pushed.jpg");
// The request goes out with the session cookie; its answer is unreadable here either way (no-cors, and the
// server's Cross-Origin-Resource-Policy), so go on whether the fetch resolves or fails.
fetch("{target}/api/v1/events/xsite/photos", {{method: "POST", body, mode: "no-cors", credentials: "include"}})
  .catch(() => null).then(() => {{
    const ws = new WebSocket("{target}".replace("http", "ws") + "/api/v1/live");
    ws.onopen = () => {{ document.title = "websocket opened"; }};
    ws.onclose = () => {{ if (document.title !== "websocket opened") document.title = "done"; }};
  }});
</script></body></html>"""


def test_another_site_cannot_post_into_an_event(server, tmp_path):
    """A page from another origin, open in a signed-in operator's browser, sends the photo with the session
    cookie (same site: only the port differs); the server refuses it because of its Origin."""
    import http.server
    import threading

    import httpx
    from web_access import OPERATOR

    assert httpx.post(f"{server}/api/v1/events", json={"name": "xsite"}, headers=OPERATOR).status_code == 201
    photo = base64.b64encode(cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1]).decode()
    (tmp_path / "index.html").write_text(EVIL_PAGE.format(photo=photo, target=server))
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        with sync_api.sync_playwright() as p:
            browser = launch(p)
            try:
                page = browser.new_page()
                sign_in(page, server, OPERATOR_TOKEN, "/events")
                page.goto(f"http://127.0.0.1:{evil.server_address[1]}/index.html")
                page.wait_for_function("document.title !== ''", timeout=30_000)
                assert page.title() == "done"  # the WebSocket was refused too
                # The same request from the server's own page is accepted: the Origin made the difference.
                page.goto(server + "/events/xsite")
                status = page.evaluate("""async photo => {
                    const bytes = Uint8Array.from(atob(photo), c => c.charCodeAt(0));
                    const body = new FormData();
                    body.append("files", new Blob([bytes], {type: "image/jpeg"}), "own.jpg");
                    return (await fetch("/api/v1/events/xsite/photos", {method: "POST", body})).status;
                }""", photo)
                assert status == 200
            finally:
                browser.close()
    finally:
        evil.shutdown()
        evil.server_close()
    report = httpx.get(f"{server}/api/v1/events/xsite/report", headers=OPERATOR).json()
    assert report["totals"]["faces"] == 1  # only the same-origin upload was stored
