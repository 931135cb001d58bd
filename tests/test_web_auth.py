"""Sign-in, roles, cross-site refusal and security headers of ``moodlens serve`` (in process, real app)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import cv2
import httpx
import pytest
import skimage.data
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from web_access import ACCESS, OPERATOR, OPERATOR_TOKEN, VIEWER, VIEWER_TOKEN, access

from moodlens.web import create_app
from moodlens.web.auth import COOKIE_NAME, Access, TokenError, load_secret, read_token_file, safe_next
from moodlens.web.security import same_origin

ASTRONAUT = cv2.imencode(".jpg", skimage.data.astronaut()[:, :, ::-1])[1].tobytes()
PAGE = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = create_app(workers=1, access=ACCESS)
    app.state.event_db = f"sqlite:///{tmp_path_factory.mktemp('db') / 'events.db'}"
    return app


@pytest.fixture
def anonymous(app):
    with TestClient(app) as c:
        yield c


def photo_files():
    return [("files", ("me.jpg", ASTRONAUT, "image/jpeg"))]


def test_everything_but_health_and_login_needs_sign_in(anonymous):
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/login").status_code == 200
    assert anonymous.get("/static/common.js").status_code == 200
    for path in ("/api/v1/model", "/api/v1/limits", "/api/v1/events", "/openapi.json"):
        r = anonymous.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), path
    r = anonymous.post("/api/v1/analyze", files=photo_files())
    assert r.status_code == 401
    # A browser is sent to the login page, which brings it back afterwards.
    for path in ("/", "/live", "/events", "/docs"):
        r = anonymous.get(path, headers=PAGE, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={path.replace('/', '%2F')}", path
    with pytest.raises(WebSocketDisconnect) as closed, anonymous.websocket_connect("/api/v1/live"):
        pass
    assert closed.value.code == 1008


def test_roles_operator_does_everything_viewer_only_reads(app):
    with TestClient(app, headers=OPERATOR) as op, TestClient(app, headers=VIEWER) as viewer:
        assert op.post("/api/v1/events", json={"name": "roles"}).status_code == 201
        assert op.post("/api/v1/analyze", files=photo_files()).status_code == 200
        with op.websocket_connect("/api/v1/live") as ws:
            ws.send_bytes(ASTRONAUT)
            assert len(ws.receive_json()["faces"]) == 1

        for path in ("/api/v1/events", "/api/v1/events/roles/report", "/api/v1/model", "/api/v1/limits"):
            assert viewer.get(path).status_code == 200, path
        assert viewer.get("/events/roles", headers=PAGE).status_code == 200
        refused = [viewer.post("/api/v1/events", json={"name": "mine"}),
                   viewer.post("/api/v1/events/roles/photos", files=photo_files()),
                   viewer.delete("/api/v1/events/roles"),
                   viewer.post("/api/v1/analyze", files=photo_files())]
        assert [r.status_code for r in refused] == [403] * 4
        assert "needs the operator role" in refused[0].json()["detail"]
        with pytest.raises(WebSocketDisconnect), viewer.websocket_connect("/api/v1/live"):
            pass
        # A viewer's browser lands on the events page and is not offered the operator's pages.
        home = viewer.get("/", headers=PAGE, follow_redirects=False)
        assert home.status_code == 303 and home.headers["location"] == "/events"
        nav = re.search(r'<nav aria-label="Pages">(.*?)</nav>', viewer.get("/events").text, re.S).group(1)
        assert 'href="/events"' in nav and 'href="/live"' not in nav and 'href="/"' not in nav

        assert op.delete("/api/v1/events/roles").status_code == 204
        assert op.get("/api/v1/events/roles/report").status_code == 404


def test_browser_login_sets_a_signed_httponly_samesite_cookie(app):
    with TestClient(app) as browser:
        bad = browser.post("/login", data={"token": "not-the-token-at-all-123"})
        assert bad.status_code == 401 and "not valid" in bad.text and COOKIE_NAME not in browser.cookies
        r = browser.post("/login", data={"token": OPERATOR_TOKEN, "next": "/events"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/events"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie and "Max-Age=43200" in cookie
        assert OPERATOR_TOKEN not in cookie  # the cookie names the role, never the token
        assert browser.get("/api/v1/limits").status_code == 200
        assert "Signed in as <strong>operator</strong>" in browser.get("/").text
        assert browser.post("/logout", follow_redirects=False).headers["location"] == "/login"
        assert browser.get("/api/v1/limits").status_code == 401

        # A login link cannot send the browser to another site afterwards.
        r = browser.post("/login", data={"token": VIEWER_TOKEN, "next": "//evil.example/x"}, follow_redirects=False)
        assert r.headers["location"] == "/events"
    assert [safe_next(t, "/") for t in ("/a?b=1", "//x.org", "/\\x.org", "https://x.org", "", "/\x07")] == [
        "/a?b=1", "/", "/", "/", "/", "/"]


def test_cookies_are_checked_signature_expiry_and_token():
    cookie = ACCESS.session_cookie("viewer")
    assert ACCESS.role_for_cookie(cookie) == "viewer"
    role, expires, fingerprint, signature = cookie.split(".")
    assert ACCESS.role_for_cookie(f"operator.{expires}.{fingerprint}.{signature}") is None  # role changed
    assert ACCESS.role_for_cookie(f"{role}.{int(expires) + 10**6}.{fingerprint}.{signature}") is None
    assert ACCESS.role_for_cookie(cookie + "x") is None and ACCESS.role_for_cookie("garbage") is None
    assert ACCESS.role_for_cookie(cookie, now=int(expires) + 1) is None  # expired
    assert ACCESS.role_for_cookie(f"{role}.{expires}.{fingerprint}.\u00e9") is None  # not ASCII: no error
    other_secret = Access.create(OPERATOR_TOKEN, VIEWER_TOKEN, secret=b"another-secret-" * 3)
    assert other_secret.role_for_cookie(cookie) is None
    new_token = Access.create(OPERATOR_TOKEN, "a-new-viewer-token-0123", secret=ACCESS.secret)
    assert new_token.role_for_cookie(cookie) is None  # changing the token ends its sessions
    assert ACCESS.role_for_token(OPERATOR_TOKEN) == "operator" and ACCESS.role_for_token(VIEWER_TOKEN) == "viewer"
    assert ACCESS.role_for_token(OPERATOR_TOKEN[:-1]) is None
    assert OPERATOR_TOKEN not in repr(ACCESS)


def test_a_garbled_session_cookie_is_refused_not_an_error(anonymous):
    # Headers arrive as Latin-1: a cookie with non-ASCII bytes must be "not signed in", never a 500.
    for value in ("viewer.1.x.\u00e9", "operator.\u00b2\u00b3.\u00ff\u00fe.sig", "\u00e9\u00e9\u00e9"):
        r = anonymous.get("/api/v1/events", headers={"Cookie": f"{COOKIE_NAME}={value}".encode("latin-1")})
        assert r.status_code == 401, value



def test_the_sign_in_form_is_read_only_as_a_small_urlencoded_form(anonymous):
    # Anybody may post to /login: a big field is not read into memory, a file part never spools to disk.
    assert anonymous.post("/login", data={"token": "x" * 20_000}).status_code == 413
    assert anonymous.post("/login", files={"token": ("t", b"x" * 2_000_000)}).status_code == 415
    assert anonymous.post("/login", json={"token": OPERATOR_TOKEN}).status_code == 415
    r = anonymous.post("/login", data={"token": OPERATOR_TOKEN, "next": "/events"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/events"

def test_cross_site_post_is_refused_and_stores_nothing(app):
    """A page on another site, open in a signed-in staff member's browser, cannot push photos into an event."""
    with TestClient(app, headers=OPERATOR) as op:
        op.post("/api/v1/events", json={"name": "xsite"})
        with TestClient(app) as browser:
            browser.post("/login", data={"token": OPERATOR_TOKEN})
            for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                            {"Origin": "http://testserver.evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
                r = browser.post("/api/v1/events/xsite/photos", files=photo_files(), headers=headers)
                assert r.status_code == 403 and "cross-site" in r.json()["detail"], headers
                assert browser.post("/api/v1/analyze", files=photo_files(), headers=headers).status_code == 403
                assert browser.post("/login", data={"token": VIEWER_TOKEN}, headers=headers).status_code == 403
            with pytest.raises(WebSocketDisconnect), browser.websocket_connect(
                    "/api/v1/live", headers={"Origin": "http://evil.example"}):
                pass
            same = browser.post("/api/v1/events/xsite/photos", files=photo_files(),
                                headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"})
            assert same.status_code == 200
        assert op.get("/api/v1/events/xsite/report").json()["totals"]["faces"] == 1  # only the same-site upload
    assert same_origin("https://venue.example", "venue.example:443", "https")
    assert same_origin("http://127.0.0.1:8000", "127.0.0.1:8000", "http")
    assert not same_origin("http://127.0.0.1:8001", "127.0.0.1:8000", "http")
    assert not same_origin("https://venue.example.evil.example", "venue.example", "https")
    # Behind a TLS proxy the server may see http while the browser says https: the host and port decide.
    assert same_origin("https://venue.example", "venue.example", "http")


def test_public_analyze_opens_only_the_analyse_pages():
    kiosk = create_app(workers=1, access=access(public_analyze=True))
    with TestClient(kiosk) as anyone:
        assert anyone.get("/", headers=PAGE).status_code == 200
        assert anyone.get("/live", headers=PAGE).status_code == 200
        assert anyone.post("/api/v1/analyze", files=photo_files()).status_code == 200
        assert anyone.get("/api/v1/model").status_code == 200
        with anyone.websocket_connect("/api/v1/live") as ws:
            ws.send_bytes(ASTRONAUT)
            assert len(ws.receive_json()["faces"]) == 1
        assert anyone.get("/api/v1/events").status_code == 401
        assert anyone.post("/api/v1/events", json={"name": "x"}).status_code == 401
        nav = re.search(r'<nav aria-label="Pages">(.*?)</nav>', anyone.get("/").text, re.S).group(1)
        assert 'href="/live"' in nav and 'href="/events"' not in nav


def test_without_sign_in_only_loopback_clients_and_names_are_answered():
    app = create_app(workers=1, access=Access.without_sign_in())

    async def get(client: tuple[str, int], base_url: str) -> int:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as c:
            return (await c.get("/api/v1/limits")).status_code

    async def run() -> list[int]:
        return [await get(("127.0.0.1", 5000), "http://127.0.0.1:8000"),
                await get(("::1", 5000), "http://localhost:8000"),
                await get(("192.168.1.20", 5000), "http://127.0.0.1:8000"),  # another machine
                await get(("127.0.0.1", 5000), "http://rebound.evil.example:8000")]  # DNS rebinding

    assert asyncio.run(run()) == [200, 200, 403, 403]


def test_serve_refuses_no_auth_on_a_network_address_and_prints_login_urls(tmp_path):
    cli = [sys.executable, "-c", "from moodlens.cli import app; app()", "serve"]
    r = subprocess.run([*cli, "--no-auth", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "loopback" in r.stderr and "Traceback" not in r.stderr
    short = tmp_path / "short"
    short.write_text("abc\n")
    r = subprocess.run([*cli, "--token-file", str(short)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "16 to 256 characters" in r.stderr and "Traceback" not in r.stderr

    from moodlens.web.app import sign_in_banner

    generated = Access.create()
    banner = sign_in_banner(generated, "0.0.0.0", 8000)
    assert f"http://127.0.0.1:8000/login#token={generated.tokens['operator']}" in banner
    assert f"/login#token={generated.tokens['viewer']}" in banner
    assert "sign-in is OFF" in sign_in_banner(Access.without_sign_in(), "127.0.0.1", 8000)


def test_tokens_and_secrets_from_files_and_environment(tmp_path, monkeypatch):
    token_file = tmp_path / "operator.token"
    token_file.write_text("  from-a-file-0123456789\n")
    assert read_token_file(token_file) == "from-a-file-0123456789"
    with pytest.raises(TokenError, match="cannot read"):
        read_token_file(tmp_path / "missing")
    monkeypatch.setenv("MOODLENS_TOKEN", "from-the-environment-0123")
    monkeypatch.delenv("MOODLENS_VIEWER_TOKEN", raising=False)
    made = Access.create()
    assert made.tokens["operator"] == "from-the-environment-0123" and made.generated == ("viewer",)
    with pytest.raises(TokenError, match="differ"):
        Access.create("same-token-for-both-0123", "same-token-for-both-0123")
    secret_path = tmp_path / "secret"
    first = load_secret(secret_path)
    assert len(first) == 32 and load_secret(secret_path) == first and secret_path.stat().st_mode & 0o777 == 0o600
    assert load_secret(None) != load_secret(None)


def test_security_headers_and_no_inline_script_on_every_page(app):
    with TestClient(app, headers=OPERATOR) as op:
        op.post("/api/v1/events", json={"name": "headers"})
        pages = ["/", "/live", "/events", "/events/headers", "/events/headers/report.html", "/login", "/docs"]
        for path in [*pages, "/api/v1/model", "/healthz", "/static/upload.js", "/nope"]:
            r = op.get(path)
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp, path
            assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
            assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "same-origin"
            assert r.headers["x-frame-options"] == "DENY"
        for path in pages:
            html = op.get(path).text
            for tag in re.findall(r"<script\b[^>]*>", html):
                assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
            assert not re.search(r"\son[a-z]+\s*=", html), path  # no inline event handlers
            assert " style=" not in html.split("<style>")[0], path


def test_model_endpoint_shows_no_paths_or_checkpoints(app):
    with TestClient(app, headers=VIEWER) as viewer:
        text = viewer.get("/api/v1/model").text
        info = viewer.get("/api/v1/model").json()
    assert ".pt" not in text and "runs/" not in text and "/" not in str(info["card"])
    assert info["card"]["classes"] and info["card"]["metrics"]["publictest"]["accuracy"] > 0
    assert "config" not in info["card"] and "ensemble" not in info["card"]


def test_openapi_documents_bearer_sign_in(app):
    with TestClient(app, headers=VIEWER) as viewer:
        spec = viewer.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearer": []}]
