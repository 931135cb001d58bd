"""``create_app``: the FastAPI application behind ``moodlens serve``.

The web layer only translates HTTP to library calls (``Analyzer``, ``load_image``, ``annotate``)
and back; analyses run on worker threads so the event loop stays free for other requests.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from moodlens import __version__
from moodlens.events.model_facts import model_facts
from moodlens.events.store_errors import StoreError
from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.imageio import MAX_PIXELS
from moodlens.recognition.schema import ModelRef
from moodlens.settings import DEFAULTS, VIDEO_DEFAULTS, AnalysisSettings
from moodlens.web.auth import Access
from moodlens.web.deps import Gate, InferencePool, WebSettings, Worker
from moodlens.web.routers import analyze, health, live, login, model, pages
from moodlens.web.routers.model import model_info
from moodlens.web.security import SecurityMiddleware
from moodlens.web.templating import WEB_DIR

ROUTERS = (analyze.router, live.router, model.router, health.router, pages.router, login.router)
EVENTS_ROUTER = "moodlens.web.routers.events"

#: Swagger UI from a pip package, started by a static script (the CSP allows no inline script).
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>moodlens API</title>
<link rel="stylesheet" href="/docs-assets/swagger-ui.css">
<link rel="icon" href="/docs-assets/favicon-32x32.png"></head>
<body><div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="/docs-assets/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body></html>
"""

API_DESCRIPTION = """Facial-expression recognition (FER2013's 7 classes) for uploaded photos and live camera frames.

Images are processed in memory and are not stored or logged unless the operator started the server with
`--save-dir`. Limits: see `GET /api/v1/limits`. Live frames: WebSocket `/api/v1/live` (see docs/web.md).
"""


class HeadAsGet:
    """Answers ``HEAD`` as ``GET`` without the body: HTTP wants every GET resource to answer HEAD (monitors
    and link checkers send it), and FastAPI's routes list GET only, so they would answer 405."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_head(message: Any) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}  # headers, Content-Length included, stay as for GET
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_head)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def create_app(settings: AnalysisSettings | None = None, max_upload_mb: float = 20.0,
               max_pixels: int = MAX_PIXELS, max_files: int = 50, workers: int | None = None, max_queue: int = 16,
               save_dir: str | Path | None = None, access: Access | None = None, **limits: Any) -> FastAPI:
    """Build the app: two ``Analyzer`` per worker thread (photos, live frames), the API under ``/api/v1``,
    pages at ``/`` and ``/live``.

    ``settings``: how faces are found and classified (:class:`~moodlens.settings.AnalysisSettings`).

    ``workers`` analyses run at once (default: CPU cores, at most 4) and ``max_queue`` more requests
    wait; beyond that requests get 503. Uploads over ``max_upload_mb`` or ``max_files``, and images over
    ``max_pixels``, are refused. ``save_dir`` (off by default) keeps uploaded photos and their results.
    ``limits``: further :class:`~moodlens.web.deps.WebSettings` fields (``max_uploads``, ``read_timeout_s``,
    ``body_timeout_s``, ``frame_timeout_s``, ``max_live``).

    ``access``: who may sign in (:class:`~moodlens.web.auth.Access`); by default tokens from
    ``$MOODLENS_TOKEN`` / ``$MOODLENS_VIEWER_TOKEN``, else random ones nobody knows (everything but
    ``/healthz`` and ``/login`` then stays closed). ``moodlens serve`` prints the login URLs.
    """
    web = WebSettings(max_upload_mb=max_upload_mb, max_pixels=max_pixels, max_files=max_files,
                      workers=workers or default_workers(), max_queue=max_queue,
                      save_dir=Path(save_dir) if save_dir is not None else None, **limits)
    photos = settings or DEFAULTS
    live = photos.with_(min_face=VIDEO_DEFAULTS.min_face, flip=VIDEO_DEFAULTS.flip)
    workers_ = [Worker(Analyzer(photos, max_pixels=max_pixels), Analyzer(live, max_pixels=max_pixels))
                for _ in range(web.workers)]
    access = access or Access.create()

    app = FastAPI(title="moodlens", version=__version__, description=API_DESCRIPTION,
                  docs_url=None, redoc_url=None)
    app.state.settings = web
    app.state.access = access
    app.state.pool = InferencePool(workers_, web.max_queue)
    app.state.upload_gate = Gate(web.max_uploads, "uploads are being received")
    app.state.live_gate = Gate(web.max_live, "live connections are open")
    app.state.model_info = model_info(workers_[0].photos)
    app.state.model_ref = ModelRef.from_facts(model_facts(workers_[0].photos))  # in every image result
    app.state.nav = [("/", "Photos"), ("/live", "Live camera")]

    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    # Swagger UI from a pip package, so /docs works without internet access.
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")
    for router in ROUTERS:
        app.include_router(router)
    viewer_home = "/docs"
    if importlib.util.find_spec(EVENTS_ROUTER) is not None:
        app.include_router(importlib.import_module(EVENTS_ROUTER).router)
        app.state.nav.append(("/events", "Events"))
        viewer_home = "/events"
    app.state.nav.append(("/docs", "API docs"))
    app.state.home = lambda role: "/" if role == "operator" else viewer_home

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE.format(openapi=app.openapi_url or "/openapi.json"))

    @app.exception_handler(StoreError)
    async def store_unavailable(request: Request, exc: StoreError) -> JSONResponse:
        # The reason only: the database's location on the server is none of the client's business.
        return JSONResponse({"detail": f"the event database is unavailable: {exc.reason}"}, 503,
                            headers={"Retry-After": "30"})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's answer, ASCII-escaped: the errors echo the client's input, and JSON text may hold lone
        # surrogates ("\\ud800") that UTF-8 cannot encode.
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
        return Response(body, 422, media_type="application/json")

    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityMiddleware, access=access, home=app.state.home)  # the outermost: sees HEAD
    _document_bearer_auth(app)
    return app


def _document_bearer_auth(app: FastAPI) -> None:
    """Tell the OpenAPI description (and the docs page's Authorize button) how clients sign in."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "the operator's or a viewer's token (printed or read by `moodlens serve`)"}}
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def serve(host: str = "127.0.0.1", port: int = 8000, access: Access | None = None, **app_options: Any) -> None:
    """Run ``create_app(access=access, **app_options)`` with uvicorn (blocks until interrupted).

    Prints how to sign in: the login URL of each role whose token was generated here (or where the tokens
    come from), or a warning that sign-in is off. Without sign-in ``host`` must be a loopback address.
    """
    import sys

    import uvicorn

    from moodlens.web.security import is_loopback

    access = access or Access.create()
    if not access.enabled and not is_loopback(host):
        raise ValueError(f"--no-auth serves only the loopback interface (127.0.0.1, ::1, localhost), not {host!r}; "
                         "sign-in is needed for a server others can reach")
    print(sign_in_banner(access, host, port), file=sys.stderr, flush=True)
    uvicorn.run(create_app(access=access, **app_options), host=host, port=port)


def sign_in_banner(access: Access, host: str, port: int) -> str:
    """What ``moodlens serve`` prints at start about signing in."""
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}"
    if not access.enabled:
        return (f"WARNING: sign-in is OFF. Anyone who can open {base}/ on this machine is an operator.\n"
                "It answers only loopback clients; a web page cannot post to it (cross-site requests are refused).")
    urls = access.login_urls(base)
    lines = ["Sign-in is on. Open the operator's login URL in a browser, or send 'Authorization: Bearer <token>':"]
    for role in ("operator", "viewer"):
        where = "generated for this run" if role in access.generated else "from your token file or environment"
        lines.append(f"  {role:<8} ({where}): " + (urls[role] if role in access.generated else f"{base}/login"))
    if access.public_analyze:
        lines.append("  the Photos and Live camera pages and /api/v1/analyze are public (--public-analyze)")
    return "\n".join(lines)
