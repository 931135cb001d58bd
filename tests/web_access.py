"""Known sign-in tokens for web tests: apps built with ``ACCESS`` accept ``OPERATOR`` / ``VIEWER`` headers."""

from __future__ import annotations

from moodlens.web.auth import Access

OPERATOR_TOKEN = "operator-test-token-0123456789"
VIEWER_TOKEN = "viewer-test-token-0123456789"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}


def access(**options: object) -> Access:
    """The tests' tokens, with :class:`Access` options such as ``public_analyze=True``."""
    return Access.create(OPERATOR_TOKEN, VIEWER_TOKEN, secret=b"test-secret-" * 4, **options)


ACCESS = access()
