"""Counts in sentences: ``1 person``, ``2 people``, ``1 new track``; one place so every message agrees."""

from __future__ import annotations

#: Irregular plurals of the nouns moodlens counts; the rest take an ``s``.
_IRREGULAR = {"person": "people"}


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """``n`` followed by ``noun`` in the right number: ``plural(1, "person") == "1 person"``.

    ``noun`` may hold adjectives (``"new track"``); only its last word changes.
    """
    if n == 1:
        return f"{n} {noun}"
    if plural_form is None:
        head, _, last = noun.rpartition(" ")
        last = _IRREGULAR.get(last, last + ("es" if last.endswith(("s", "x", "ch", "sh")) else "s"))
        plural_form = f"{head} {last}" if head else last
    return f"{n:,} {plural_form}"
