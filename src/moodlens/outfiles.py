"""Files and folders a command writes its results to (``--out``, ``--csv``, ``--json``): made ready before any
analysis starts, so a path that cannot be written is one clear line up front, not a traceback after a long run."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def output_problem(path: str | Path, folder: bool = False) -> str | None:
    """Create the folder that will hold ``path`` (``path`` itself when ``folder``) and check that the file can
    be written there: ``None``, or a one-line error naming the path. A probe file is not left behind, and a
    named pipe without a reader is refused rather than waited on."""
    path = Path(path)
    try:
        if folder:
            if path.exists() and not path.is_dir():
                return f"cannot write to {path}: a file, not a folder"
            path.mkdir(parents=True, exist_ok=True)
            return None
        if path.is_dir():
            return f"cannot write to {path}: a folder, not a file"
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NONBLOCK", 0), 0o666))
        if not existed:
            path.unlink()
    except OSError as exc:
        return f"cannot write to {path}: {_reason(exc)}"
    return None


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EEXIST, errno.ENOTDIR) and exc.filename:
        what = "a link that leads nowhere" if Path(exc.filename).is_symlink() else "a file"
        return f"{exc.filename} is {what}, not a folder"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno == errno.ENXIO:
        return "a pipe that nothing reads"
    return (exc.strerror or str(exc)).lower()
