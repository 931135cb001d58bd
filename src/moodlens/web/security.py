"""``SecurityMiddleware``: every request and WebSocket passes here before any route sees it.

In order, it:

1. without sign-in, answers only clients on the loopback interface that use a loopback host name
   (so neither the network nor a DNS-rebinding web page can reach a server that checks no token);
2. refuses state-changing requests (POST, PUT, PATCH, DELETE) and WebSocket handshakes sent by another
   site: their ``Origin`` (or, without one, ``Sec-Fetch-Site``) must be this server. Browsers always send
   one of them, so a web page open in a staff member's browser cannot post to the server; clients
   without either (curl, scripts) are not browsers and cannot be driven by another site;
3. asks :class:`~moodlens.web.auth.Access` which role the request needs and which role it has
   (bearer token or session cookie): pages redirect to ``/login``, the API answers 401 or 403, a
   WebSocket is closed before it opens;
4. adds security headers to every response: a Content-Security-Policy without inline script and with
   ``frame-ancestors 'none'``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, RedirectResponse, Response

from moodlens.web.auth import SAFE_METHODS, Access, Role

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Pages and their scripts come only from this server; no inline script anywhere, no framing.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
#: The event report is also a self-contained file, so its CSS is inline: those pages allow inline styles
#: (never inline script).
CSP_INLINE_STYLE = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
INLINE_STYLE_PREFIXES = ("/events/",)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with that, browsers send "Origin: null" on the server's own form posts (the login form).
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and the name localhost."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """The name part of a Host header (``[::1]:8000`` -> ``::1``, ``example.org:80`` -> ``example.org``)."""
    return urlsplit(f"//{host_header}").hostname or ""


def _netloc(scheme: str, host: str | None, port: int | None) -> str:
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme)
    return f"{host}" if port in (None, default) else f"{host}:{port}"


def same_origin(origin: str, host_header: str, scheme: str) -> bool:
    """True when the ``Origin`` a browser sent names this server: the host and port the client reached.

    The scheme is not compared: behind a TLS proxy that does not say so, the server sees ``http`` while
    the browser's origin is ``https``; another site always differs in host or port.
    """
    try:
        sent = urlsplit(origin)
        ours = urlsplit(f"{scheme}://{host_header}")
        return (sent.scheme in ("http", "https") and bool(sent.hostname)
                and _netloc(sent.scheme, sent.hostname, sent.port) == _netloc(ours.scheme, ours.hostname, ours.port))
    except ValueError:  # a malformed port or host
        return False


def _cross_site(scope: Scope, method: str, headers: Headers) -> Response | None:
    """The refusal of a state-changing request or WebSocket handshake sent by another site, else None."""
    reason = cross_site_reason(scope, headers) if method not in SAFE_METHODS else None
    return None if reason is None else JSONResponse({"detail": reason}, 403)


def cross_site_reason(scope: Scope, headers: Headers) -> str | None:
    """Why a state-changing request or WebSocket handshake comes from another site, or None if it does not."""
    origin = headers.get("origin")
    if origin is not None:
        http_scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        if same_origin(origin, headers.get("host", ""), http_scheme):
            return None
        return f"cross-site request refused: Origin {origin[:100]!r} is not this server"
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {fetch_site[:30]})"
    return None


class SecurityMiddleware:
    """Access control, cross-site refusal and security headers for the whole app (see the module doc)."""

    def __init__(self, app: ASGIApp, access: Access, home: Callable[[str], str] | None = None) -> None:
        self.app = app
        self.access = access
        #: Where a signed-in role lands (``/`` for the operator; the viewer's reading page).
        self.home = home or (lambda role: "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            send = self._with_headers(scope, send)
        refusal = self._check(scope)
        if refusal is not None:
            await self._refuse(scope, receive, send, refusal)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> Response | None:
        """The refusal for this request (steps 1 to 3 of the module doc), or None to let it through."""
        headers = Headers(scope=scope)
        method = "WEBSOCKET" if scope["type"] == "websocket" else scope["method"]
        refusal = self._unreachable(scope, headers) or _cross_site(scope, method, headers)
        if refusal is not None:
            return refusal
        role, _how = self.access.role_of(headers, cookie_parser(headers.get("cookie", "")))
        scope.setdefault("state", {})["role"] = role
        needed = self.access.required_role("GET" if method == "WEBSOCKET" else method, scope["path"])
        if self.access.allows(role, needed):
            return None
        return self._not_allowed(scope, method, headers, role, needed)

    def _unreachable(self, scope: Scope, headers: Headers) -> Response | None:
        """Without sign-in, the refusal of a client that is not on loopback or names a non-loopback host."""
        if self.access.enabled:
            return None
        client = (scope.get("client") or ("", 0))[0]
        if is_loopback(client) and is_loopback(_host_name(headers.get("host", ""))):
            return None
        return JSONResponse({"detail": "this server runs without sign-in and answers only on its loopback "
                                       "address (127.0.0.1 / localhost)"}, 403)

    def _not_allowed(self, scope: Scope, method: str, headers: Headers, role: Role | None,
                     needed: Role | None) -> Response:
        """The answer to a request whose role is not enough: a page asks for sign-in (or goes to the role's
        home), the API answers 401 (no role) or 403 (another role)."""
        path = scope["path"]
        wants_page = method in ("GET", "HEAD") and not path.startswith("/api/") and "text/html" in headers.get(
            "accept", "")
        if role is None and wants_page:
            target = path + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
        if role is None:
            return JSONResponse({"detail": "sign in first: send 'Authorization: Bearer <token>' (the token "
                                           "`moodlens serve` printed or read) or open /login in a browser"}, 401,
                                headers={"WWW-Authenticate": 'Bearer realm="moodlens"'})
        if wants_page and path == "/":
            return RedirectResponse(self.home(role), 303)
        return JSONResponse({"detail": f"signed in as {role}: this needs the {needed} role"}, 403)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, response: Response) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        await response(scope, receive, send)

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        path = scope["path"]
        csp = CSP_INLINE_STYLE if path.startswith(INLINE_STYLE_PREFIXES) else CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", csp)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not path.startswith(("/static/", "/docs-assets/")):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        return send_with_headers
