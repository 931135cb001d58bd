"""``create_app``: the FastAPI application behind ``moodlens serve``.

The web layer only translates HTTP to library calls (``Analyzer``, ``load_image``, ``annotate``)
and back; analyses run on worker threads so the event loop stays free for other requests.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from moodlens import __version__
from moodlens.events.model_facts import model_facts
from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.imageio import MAX_PIXELS
from moodlens.recognition.schema import ModelRef
from moodlens.settings import DEFAULTS, VIDEO_DEFAULTS, AnalysisSettings
from moodlens.web.deps import InferencePool, WebSettings, Worker
from moodlens.web.routers import analyze, health, live, model, pages
from moodlens.web.routers.model import model_info
from moodlens.web.templating import WEB_DIR

ROUTERS = (analyze.router, live.router, model.router, health.router, pages.router)
EVENTS_ROUTER = "moodlens.web.routers.events"

API_DESCRIPTION = """Facial-expression recognition (FER2013's 7 classes) for uploaded photos and live camera frames.

Images are processed in memory and are not stored or logged unless the operator started the server with
`--save-dir`. Limits: see `GET /api/v1/limits`. Live frames: WebSocket `/api/v1/live` (see docs/web.md).
"""


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def create_app(settings: AnalysisSettings | None = None, max_upload_mb: float = 20.0,
               max_pixels: int = MAX_PIXELS, max_files: int = 50, workers: int | None = None, max_queue: int = 16,
               save_dir: str | Path | None = None) -> FastAPI:
    """Build the app: two ``Analyzer`` per worker thread (photos, live frames), the API under ``/api/v1``,
    pages at ``/`` and ``/live``.

    ``settings``: how faces are found and classified (:class:`~moodlens.settings.AnalysisSettings`).

    ``workers`` analyses run at once (default: CPU cores, at most 4) and ``max_queue`` more requests
    wait; beyond that requests get 503. Uploads over ``max_upload_mb`` or ``max_files``, and images over
    ``max_pixels``, are refused. ``save_dir`` (off by default) keeps uploaded photos and their results.
    """
    web = WebSettings(max_upload_mb=max_upload_mb, max_pixels=max_pixels, max_files=max_files,
                           workers=workers or default_workers(), max_queue=max_queue,
                           save_dir=Path(save_dir) if save_dir is not None else None)
    photos = settings or DEFAULTS
    live = photos.with_(min_face=VIDEO_DEFAULTS.min_face, flip=VIDEO_DEFAULTS.flip)
    workers_ = [Worker(Analyzer(photos, max_pixels=max_pixels), Analyzer(live, max_pixels=max_pixels))
                for _ in range(web.workers)]

    app = FastAPI(title="moodlens", version=__version__, description=API_DESCRIPTION,
                  docs_url=None, redoc_url=None)
    app.state.settings = web
    app.state.pool = InferencePool(workers_, web.max_queue)
    app.state.model_info = model_info(workers_[0].photos)
    app.state.model_ref = ModelRef.from_facts(model_facts(workers_[0].photos))  # in every image result
    app.state.nav = [("/", "Photos"), ("/live", "Live camera")]

    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    # Swagger UI from a pip package, so /docs works without internet access.
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")
    for router in ROUTERS:
        app.include_router(router)
    if importlib.util.find_spec(EVENTS_ROUTER) is not None:
        app.include_router(importlib.import_module(EVENTS_ROUTER).router)
        app.state.nav.append(("/events", "Events"))
    app.state.nav.append(("/docs", "API docs"))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="moodlens API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    return app


def serve(host: str = "127.0.0.1", port: int = 8000, **app_options: object) -> None:
    """Run ``create_app(**app_options)`` with uvicorn (blocks until interrupted)."""
    import uvicorn

    uvicorn.run(create_app(**app_options), host=host, port=port)  # type: ignore[arg-type]
