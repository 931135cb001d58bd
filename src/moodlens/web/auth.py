"""Sign-in for ``moodlens serve``: two roles, each with its own token, as notebook servers do it.

- **operator**: everything (analyse photos and live frames, create events, upload to them, delete them).
- **viewer**: reading only (event lists and reports, the model and the limits).

Tokens come from a file or an environment variable, or are generated at start and printed as login URLs.
API clients send ``Authorization: Bearer <token>``; a browser exchanges the token once on ``/login`` for a
session cookie (HMAC-SHA256 signed with a server secret, HttpOnly, SameSite=Lax, Secure over HTTPS) that
names the role and expires. The cookie is bound to the token it was made from, so changing a token ends
the sessions made with the old one. The analyse-only pages and API can be made public for a kiosk
(``public_analyze``); ``/healthz``, ``/login`` and static files are always open. Requests are checked by
:class:`moodlens.web.security.SecurityMiddleware`, which asks :meth:`Access.required_role` what a request needs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from starlette.datastructures import Headers

Role = Literal["viewer", "operator"]
#: Roles in order of what they may do: each may do everything the ones before it may.
ROLES: tuple[Role, ...] = ("viewer", "operator")

COOKIE_NAME = "moodlens_session"
TOKEN_ENV = {"operator": "MOODLENS_TOKEN", "viewer": "MOODLENS_VIEWER_TOKEN"}
#: Tokens are used in URLs and headers: URL-safe characters only, long enough not to be guessed.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,256}")
SECRET_BYTES = 32

#: Open to everyone, signed in or not.
PUBLIC_PATHS = frozenset({"/healthz", "/login", "/logout", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/", "/docs-assets/")
#: The analyse-only pages and API: the operator's, or everyone's with ``public_analyze`` (a kiosk).
ANALYZE_PATHS = frozenset({"/", "/live", "/api/v1/analyze", "/api/v1/live"})
#: Facts the analyse pages need (limits, model): viewers may read them, and everyone with ``public_analyze``.
ANALYZE_INFO_PATHS = frozenset({"/api/v1/limits", "/api/v1/model"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

log = logging.getLogger("moodlens.web")


class TokenError(ValueError):
    """A token or secret that cannot be used; the message names where it came from."""


def generate_token() -> str:
    """A fresh random token (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def check_token(token: str, where: str) -> str:
    token = token.strip()
    if not TOKEN_PATTERN.fullmatch(token):
        raise TokenError(f"{where}: a token must be 16 to 256 characters of A-Z, a-z, 0-9, '.', '_', '~' or '-'")
    return token


def read_token_file(path: str | Path) -> str:
    """The token in a file (surrounding whitespace ignored)."""
    path = Path(path).expanduser()
    try:
        return check_token(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"{path}: cannot read the token file ({getattr(exc, 'strerror', None) or exc})") from None


def load_secret(path: str | Path | None) -> bytes:
    """The key that signs session cookies: read from ``path`` (created with 32 random bytes, mode 0600, if
    missing), or a new random key for this process only (sessions then end when the server restarts)."""
    if path is None:
        return secrets.token_bytes(SECRET_BYTES)
    path = Path(path).expanduser()
    try:
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(SECRET_BYTES))
        secret = path.read_bytes()
    except OSError as exc:
        raise TokenError(f"{path}: cannot read or create the secret file ({exc.strerror or exc})") from None
    if len(secret) < SECRET_BYTES:
        raise TokenError(f"{path}: the secret file holds {len(secret)} bytes; it needs at least {SECRET_BYTES}")
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a path on this server (never another site), else ``default``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(
            ord(c) < 32 for c in target):
        return default
    return target


@dataclass(frozen=True)
class Access:
    """Who may do what on one server.

    ``tokens`` maps each role to its token; ``secret`` signs session cookies. ``enabled=False`` is the
    no-sign-in mode, which :class:`~moodlens.web.security.SecurityMiddleware` allows only for clients and
    host names on the loopback interface.
    """

    tokens: dict[str, str] = field(default_factory=dict)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(SECRET_BYTES), repr=False)
    public_analyze: bool = False
    session_hours: float = 12.0
    enabled: bool = True
    #: Roles whose token was generated here (printed at start because nobody else knows them).
    generated: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.enabled:
            missing = [r for r in ROLES if r not in self.tokens]
            if missing:
                raise TokenError(f"no token for role(s) {', '.join(missing)}")
            if self.tokens["viewer"] == self.tokens["operator"]:
                raise TokenError("the viewer and operator tokens must differ")
        if self.session_hours <= 0:
            raise TokenError("session_hours must be positive")

    def __repr__(self) -> str:  # never print tokens or the secret by accident
        return (f"Access(enabled={self.enabled}, public_analyze={self.public_analyze}, "
                f"session_hours={self.session_hours})")

    @classmethod
    def create(cls, operator_token: str | None = None, viewer_token: str | None = None,
               secret: bytes | None = None, **options: object) -> Access:
        """Tokens given here, else from ``$MOODLENS_TOKEN`` / ``$MOODLENS_VIEWER_TOKEN``, else generated."""
        given = {"operator": operator_token, "viewer": viewer_token}
        tokens: dict[str, str] = {}
        generated = []
        for role in ROLES:
            value = given[role] or os.environ.get(TOKEN_ENV[role])
            if value:
                tokens[role] = check_token(value, "token" if given[role] else f"${TOKEN_ENV[role]}")
            else:
                tokens[role] = generate_token()
                generated.append(role)
        return cls(tokens=tokens, secret=secret or secrets.token_bytes(SECRET_BYTES), generated=tuple(generated),
                   **options)  # type: ignore[arg-type]

    @classmethod
    def without_sign_in(cls, public_analyze: bool = False) -> Access:
        """The no-sign-in mode: everyone is operator, but only on loopback (enforced per request)."""
        return cls(enabled=False, public_analyze=public_analyze)

    # -- who is asking ---------------------------------------------------------------------------------
    def role_for_token(self, token: str) -> Role | None:
        """The role whose token this is (constant-time comparison), else None."""
        found: Role | None = None
        for role in ROLES:
            if hmac.compare_digest(token.encode(), self.tokens.get(role, "").encode()):
                found = role
        return found

    def _fingerprint(self, role: str) -> str:
        return hmac.new(self.secret, b"token:" + self.tokens[role].encode(), hashlib.sha256).hexdigest()[:16]

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest())

    def session_cookie(self, role: Role, now: float | None = None) -> str:
        """The signed cookie value for a browser signed in as ``role``."""
        expires = int((now or time.time()) + self.session_hours * 3600)
        payload = f"{role}.{expires}.{self._fingerprint(role)}"
        return f"{payload}.{self._sign(payload)}"

    def role_for_cookie(self, value: str, now: float | None = None) -> Role | None:
        """The role a session cookie grants, or None when it is forged, expired or made from an old token."""
        parts = value.split(".")
        # A cookie this server made is ASCII; compare_digest refuses to compare other text.
        if not value.isascii() or len(parts) != 4 or parts[0] not in ROLES:
            return None
        role, expires, fingerprint, signature = parts
        payload = f"{role}.{expires}.{fingerprint}"
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        if not expires.isdigit() or int(expires) < (now or time.time()):
            return None
        if not hmac.compare_digest(fingerprint, self._fingerprint(role)):
            return None
        return role  # type: ignore[return-value]

    def role_of(self, headers: Headers, cookies: dict[str, str]) -> tuple[Role | None, str]:
        """(role, how) of a request: a bearer token first, else the session cookie; how is "bearer",
        "cookie" or "" (anonymous). Without sign-in everyone is operator."""
        if not self.enabled:
            return "operator", "open"
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials:
            role = self.role_for_token(credentials.strip())
            return role, "bearer" if role else ""
        cookie = cookies.get(COOKIE_NAME)
        role = self.role_for_cookie(cookie) if cookie else None
        return role, "cookie" if role else ""

    # -- what a request needs --------------------------------------------------------------------------
    def required_role(self, method: str, path: str) -> Role | None:
        """The least role a request needs (None: open to everyone).

        Unknown paths are not open: reading needs a viewer, anything else the operator.
        """
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        if path in ANALYZE_PATHS:
            return None if self.public_analyze else "operator"
        if path in ANALYZE_INFO_PATHS:
            return None if self.public_analyze else "viewer"
        return "viewer" if method.upper() in SAFE_METHODS else "operator"

    @staticmethod
    def allows(role: Role | None, needed: Role | None) -> bool:
        if needed is None:
            return True
        return role is not None and ROLES.index(role) >= ROLES.index(needed)

    def permits(self, role: Role | None, method: str, path: str) -> bool:
        """True when ``role`` (None: not signed in) may make this request."""
        return self.allows(role, self.required_role(method, path))

    def login_urls(self, base_url: str) -> dict[str, str]:
        """The URL per role that signs a browser in. The token is in the fragment (after ``#``), so it never
        reaches the server's access log or another site's Referer header."""
        return {role: f"{base_url.rstrip('/')}/login#token={self.tokens[role]}" for role in ROLES}
