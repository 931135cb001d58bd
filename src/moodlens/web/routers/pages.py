"""The HTML pages: photo upload (``/``) and live camera (``/live``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from moodlens.web.templating import render_page

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def upload_page(request: Request) -> HTMLResponse:
    return render_page(request, "upload.html", title="Photos")


@router.get("/live", response_class=HTMLResponse)
async def live_page(request: Request) -> HTMLResponse:
    return render_page(request, "live.html", title="Live camera")
