"""``StoreError``: a database problem as one line that names the database and the reason.

The event store can fail for reasons outside moodlens: a read-only or full file system, a ``--db`` path
that is a folder or another kind of file, an unsupported URL, a missing driver, a server that is down.
:func:`database_errors` turns each into a :class:`StoreError` (the CLI prints it as one ``error:`` line;
the web app answers 503 with the reason only, never the server's file paths).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, NoSuchModuleError

#: The databases moodlens runs on (SQLAlchemy backend names).
SUPPORTED_BACKENDS = ("sqlite", "postgresql")

#: SQLite and PostgreSQL messages -> what they mean for the person running the command.
_KNOWN_REASONS = (
    ("readonly database", "the database file or its file system is read-only"),
    ("read-only file system", "the file system is read-only"),
    ("database or disk is full", "the disk is full (or the database reached its size limit)"),
    ("could not extend file", "the disk is full"),
    ("no space left", "the disk is full"),
    ("file is not a database", "the file is not a SQLite database"),
    ("disk i/o error", "a disk I/O error occurred (is the file system full or read-only?)"),
    ("database is locked", "the database is locked by another process (timed out waiting)"),
    ("connection refused", "no database server answers at that address (connection refused)"),
    ("password authentication failed", "the server refused the user name or password"),
)


class StoreError(RuntimeError):
    """The event database cannot be used; ``str()`` is one line naming it (``url``) and the ``reason``."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"event database {url}: {reason}")
        self.url = url
        self.reason = reason


def display_url(url: str) -> str:
    """The URL as shown in messages: passwords hidden, SQLite files as their path."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def _sqlite_path(url: str) -> Path | None:
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def check_backend(url: str) -> None:
    """Refuse databases moodlens does not support, before any driver is imported."""
    backend = make_url(url).get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StoreError(display_url(url), f"{backend!r} databases are not supported; use a SQLite file or "
                                           "postgresql://user@host/database")


def _file_system(path: Path) -> os.statvfs_result | None:
    folder = path if path.is_dir() else path.parent
    try:
        return os.statvfs(folder)
    except OSError:
        return None


def _read_only_file_system(path: Path) -> bool:
    fs = _file_system(path)
    return fs is not None and bool(fs.f_flag & os.ST_RDONLY)


def _disk_full(path: Path) -> bool:
    """Less free space than one SQLite write needs (a few pages) on the database's file system."""
    fs = _file_system(path)
    return fs is not None and fs.f_bavail * fs.f_frsize < 64 * 1024


def _reason(url: str, exc: BaseException) -> str:
    """What went wrong, in words: a missing driver, a file-system error, the state of a SQLite file's file
    system and folder, or the database's own message (translated when it is a known one)."""
    if isinstance(exc, ModuleNotFoundError | NoSuchModuleError):
        return _missing_driver(url, exc)
    if isinstance(exc, OSError):
        return _os_error(exc)
    original = getattr(exc, "orig", None) or exc
    text = " ".join(str(original).split())
    lower = text.lower()
    path = _sqlite_path(url)
    in_file_system = _sqlite_file_problem(path, lower) if path is not None else None
    return in_file_system or _known_reason(lower) or text[:300] or type(original).__name__


def _missing_driver(url: str, exc: BaseException) -> str:
    if make_url(url).get_backend_name() == "postgresql":
        return "PostgreSQL needs the psycopg driver, which is not installed: pip install 'moodlens[postgres]'"
    return f"the database driver is not installed ({exc})"


def _os_error(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return f"the file system is read-only ({exc.filename})"
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    return f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")


def _sqlite_file_problem(path: Path, message: str) -> str | None:
    """Why the SQLite file at ``path`` failed, found by looking at its file system and folder; ``message``
    is the driver's message in lower case. ``None`` when nothing there explains it."""
    if _read_only_file_system(path):
        return "the file system is read-only"
    if _disk_full(path):
        return "the disk is full"
    if "unable to open database file" not in message:
        return None
    if path.is_dir():
        return "the path is a folder, not a database file"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    return "the file cannot be opened (check its permissions and the file system)"


def _known_reason(message: str) -> str | None:
    """The meaning of a known SQLite or PostgreSQL ``message`` (lower case), else ``None``."""
    return next((meaning for needle, meaning in _KNOWN_REASONS if needle in message), None)


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Turn database failures inside the block into :class:`StoreError` (a duplicate key stays an
    ``IntegrityError``, which callers handle)."""
    try:
        yield
    except StoreError:
        raise
    except IntegrityError:
        raise
    except (DBAPIError, ModuleNotFoundError, NoSuchModuleError, OSError) as exc:
        raise StoreError(display_url(url), _reason(url, exc)) from exc
