"""Event names and source labels: checked once, here, for the CLI, the web API and the store.

An event name becomes a database key, a URL path segment (``/events/{name}``), a file name of the
downloaded report and a line in the terminal. So it must be non-blank, fit the column, hold no control
characters (terminal escapes, newlines) and no ``/`` (which would split the URL path).
"""

from __future__ import annotations

import unicodedata

#: Length of the ``events.name`` and ``sources.label`` columns.
MAX_NAME_LENGTH = 200


class InvalidName(ValueError):
    """A name or label that cannot be stored or shown safely; the message says which rule it breaks."""


def _control_characters(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]


def check_label(value: str, what: str = "source label") -> str:
    """``value`` stripped of surrounding spaces, or :class:`InvalidName` if blank, too long or holding
    control characters."""
    if not isinstance(value, str):
        raise InvalidName(f"{what} must be text, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise InvalidName(f"{what} must not be blank")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidName(f"{what} is {len(text)} characters long; at most {MAX_NAME_LENGTH} are allowed")
    bad = _control_characters(text)
    if bad:
        shown = ", ".join(sorted({ch.encode("unicode_escape").decode("ascii") for ch in bad}))
        raise InvalidName(f"{what} must not contain control characters (found {shown})")
    return text


def check_event_name(name: str) -> str:
    """The event name to store (surrounding spaces removed), or :class:`InvalidName`.

    Also refuses ``/`` and the path segments ``.`` and ``..``, so every name works as one URL path segment.
    """
    text = check_label(name, "event name")
    if "/" in text or "\\" in text:
        raise InvalidName(f"event name {text!r} must not contain '/' or '\\' (it is part of the event's web address)")
    if text in (".", ".."):
        raise InvalidName(f"event name {text!r} is not allowed (it is a path segment)")
    return text
