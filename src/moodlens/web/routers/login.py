"""``/login`` and ``/logout``: a browser exchanges a role's token for a signed session cookie.

``moodlens serve`` prints ``/login#token=...`` URLs: the token sits in the fragment, which browsers never
send, and ``static/login.js`` posts it with the form below (which also works typed in by hand).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from moodlens.web.auth import COOKIE_NAME, Access, safe_next
from moodlens.web.deps import bounded_body
from moodlens.web.templating import render_page

router = APIRouter(include_in_schema=False)

#: A sign-in form holds a token and a path; a bigger body is not one.
MAX_LOGIN_BODY = 8 * 1024


def _access(request: Request) -> Access:
    return request.app.state.access


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "") -> HTMLResponse:  # noqa: A002 - the query's name
    return render_page(request, "login.html", title="Sign in", next=safe_next(next, ""), error=None)


async def _login_form(request: Request) -> dict[str, str]:
    """The sign-in form's fields. Anybody may post here without signing in, so the body is read only as
    the urlencoded form the page sends, up to :data:`MAX_LOGIN_BODY` bytes and within the uploads' read
    timeouts (415 / 413 / 408 otherwise): never as multipart, whose file parts would spool to disk, nor
    without a bound."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the sign-in form as application/x-www-form-urlencoded (fields token, next)")
    settings = request.app.state.settings
    body = bytearray()
    async for chunk in bounded_body(request.stream(), MAX_LOGIN_BODY, settings.read_timeout_s,
                                    settings.body_timeout_s, f"a sign-in form is at most {MAX_LOGIN_BODY:,} bytes"):
        body += chunk
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    form = await _login_form(request)
    token, target = form.get("token", ""), form.get("next", "")
    access = _access(request)
    role = access.role_for_token(token.strip()) if access.enabled else None
    if role is None:
        page = render_page(request, "login.html", title="Sign in", next=safe_next(target, ""),
                           error="That token is not valid on this server." if access.enabled else
                           "This server runs without sign-in.")
        page.status_code = 401 if access.enabled else 400
        return page
    response = RedirectResponse(safe_next(target, request.app.state.home(role)), 303)
    response.set_cookie(COOKIE_NAME, access.session_cookie(role), max_age=int(access.session_hours * 3600),
                        httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
async def logout() -> RedirectResponse:
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")
    return response
