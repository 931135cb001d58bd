"""Event names and source labels: checked once, here, for the CLI, the web API and the store.

An event name becomes a database key, a URL path segment (``/events/{name}``), a file name of the
downloaded report and a line in the terminal. So it must be non-blank, fit the column, hold no control
characters (terminal escapes, newlines) and no ``/`` (which would split the URL path).
"""

from __future__ import annotations

import unicodedata

#: Length of the ``events.name`` and ``sources.label`` columns.
MAX_NAME_LENGTH = 200
#: Length of an event's free-text description (shown on its page and report).
MAX_DESCRIPTION_LENGTH = 2000


class InvalidName(ValueError):
    """A name or label that cannot be stored or shown safely; the message says which rule it breaks."""


#: What a name or label may not hold: terminal escapes, newlines, invisible formatting (RTL overrides).
NAME_CONTROL = ("Cc", "Cf", "Zl", "Zp")


def _refuse_control(text: str, what: str, categories: tuple[str, ...] = NAME_CONTROL, allowed: str = "") -> None:
    bad = [ch for ch in text if unicodedata.category(ch) in categories and ch not in allowed]
    if bad:
        shown = ", ".join(sorted({ch.encode("unicode_escape").decode("ascii") for ch in bad}))
        raise InvalidName(f"{what} must not contain control characters (found {shown})")


def _check_encodable(text: str, what: str) -> None:
    """Refuse lone surrogates (JSON's ``"\\ud800"``, undecodable command-line bytes): no database stores them."""
    if any(unicodedata.category(ch) == "Cs" for ch in text):
        raise InvalidName(f"{what} is not valid Unicode text (it holds a lone surrogate)")


def check_label(value: str, what: str = "source label") -> str:
    """``value`` stripped of surrounding spaces, or :class:`InvalidName` if blank, too long or holding
    control characters."""
    if not isinstance(value, str):
        raise InvalidName(f"{what} must be text, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise InvalidName(f"{what} must not be blank")
    _check_encodable(text, what)
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidName(f"{what} is {len(text)} characters long; at most {MAX_NAME_LENGTH} are allowed")
    _refuse_control(text, what)
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


def check_description(value: str) -> str:
    """An event's description, stripped, or :class:`InvalidName`: at most :data:`MAX_DESCRIPTION_LENGTH`
    characters of text whose only control characters are line breaks and tabs (formatting characters such as
    emoji joiners and right-to-left marks belong to ordinary text)."""
    if not isinstance(value, str):
        raise InvalidName(f"description must be text, not {type(value).__name__}")
    text = value.strip()
    _check_encodable(text, "description")
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise InvalidName(f"description is {len(text)} characters long; at most {MAX_DESCRIPTION_LENGTH} are allowed")
    _refuse_control(text, "description", ("Cc",), allowed="\n\t")
    return text
