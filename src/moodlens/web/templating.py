"""The shared page layout: ``base.html`` (nav, privacy notice) plus ``static/common.js``/``style.css``.

Any router renders a page with ``render_page(request, "name.html", title=...)``; the template
extends ``base.html`` and fills ``{% block content %}`` (and optionally ``{% block scripts %}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from moodlens.spec import EMOTION_COLORS_BGR, EMOTIONS

WEB_DIR = Path(__file__).parent
templates = Jinja2Templates(directory=WEB_DIR / "templates")


def emotion_colors_hex() -> dict[str, str]:
    """The spec's BGR colours as CSS hex, so pages draw each emotion as the annotator does."""
    return {e: "#{2:02x}{1:02x}{0:02x}".format(*EMOTION_COLORS_BGR[e]) for e in EMOTIONS}


def render_page(request: Request, name: str, title: str, **context: Any) -> HTMLResponse:
    """``name`` rendered in the shared layout; the navigation shows only pages the visitor's role may open,
    and templates get ``role`` (None when not signed in) and ``sign_in`` (False without sign-in)."""
    state = request.app.state
    role = getattr(request.state, "role", None)
    nav = [(href, label) for href, label in state.nav if state.access.permits(role, "GET", href)]
    page_config = {"emotions": list(EMOTIONS), "colors": emotion_colors_hex(), "limits": state.settings.limits()}
    return templates.TemplateResponse(request, name, {
        "title": title, "nav": nav, "saving": state.settings.save_dir is not None, "role": role,
        "sign_in": state.access.enabled, "model": state.model_info, "page_config": page_config, **context})
