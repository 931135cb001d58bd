"""``/login`` and ``/logout``: a browser exchanges a role's token for a signed session cookie.

``moodlens serve`` prints ``/login#token=...`` URLs: the token sits in the fragment, which browsers never
send, and ``static/login.js`` posts it with the form below (which also works typed in by hand).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from moodlens.web.auth import COOKIE_NAME, Access, safe_next
from moodlens.web.templating import render_page

router = APIRouter(include_in_schema=False)


def _access(request: Request) -> Access:
    return request.app.state.access


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "") -> HTMLResponse:  # noqa: A002 - the query's name
    return render_page(request, "login.html", title="Sign in", next=safe_next(next, ""), error=None)


@router.post("/login", response_model=None)
async def login(request: Request, token: Annotated[str, Form(max_length=300)] = "",
                next: Annotated[str, Form(max_length=2000)] = "") -> Response:  # noqa: A002
    access = _access(request)
    role = access.role_for_token(token.strip()) if access.enabled else None
    if role is None:
        page = render_page(request, "login.html", title="Sign in", next=safe_next(next, ""),
                           error="That token is not valid on this server." if access.enabled else
                           "This server runs without sign-in.")
        page.status_code = 401 if access.enabled else 400
        return page
    response = RedirectResponse(safe_next(next, request.app.state.home(role)), 303)
    response.set_cookie(COOKIE_NAME, access.session_cookie(role), max_age=int(access.session_hours * 3600),
                        httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
async def logout() -> RedirectResponse:
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")
    return response
