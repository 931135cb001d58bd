"""Text that leaves moodlens for another program: spreadsheet cells and terminals.

Names and labels come from users (event names, source labels, file names). A CSV cell that
starts with ``=``, ``+``, ``-`` or ``@`` is run as a formula by spreadsheet programs, and
control characters printed to a terminal can move the cursor or rewrite the screen. Every
CSV the project writes goes through :func:`csv_cell` / :func:`csv_rows`, and every user-given
name printed to a terminal through :func:`terminal_text`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` made safe for a spreadsheet: text starting like a formula gets a leading ``'``.

    Numbers are left alone (a negative number is data, not a formula); only strings change.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``csv.DictWriter`` row with every cell passed through :func:`csv_cell`."""
    return {k: csv_cell(v) for k, v in row.items()}


def csv_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`csv_row` for many rows."""
    return [csv_row(r) for r in rows]


def terminal_text(text: str) -> str:
    """``text`` with control characters (escape sequences, newlines, bells) shown as ``\\xNN`` escapes."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in ("Cc", "Cf") and ch != " ":
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)
