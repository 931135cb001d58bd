"""Turning bad user input into one clear error line (exit code 1) instead of a traceback; shared by CLI modules."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import typer

from moodlens.textsafe import terminal_text


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` in red on stderr (control characters escaped); raise the returned ``typer.Exit``."""
    typer.secho(f"error: {terminal_text(message)}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def check_outputs(*paths: tuple[Path | None, bool]) -> None:
    """Stop with one line, before any work, when an output path (a folder when its flag is set) cannot be written."""
    from moodlens.outfiles import output_problem

    for path, folder in paths:
        if path is not None and (problem := output_problem(path, folder)):
            raise fail(problem)


def user_errors(*errors: type[BaseException]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the given exception types (bad names, paths, options, data) become :func:`fail` lines."""
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except typer.Exit:  # already reported (typer.Exit is a RuntimeError subclass)
                raise
            except errors as exc:
                raise fail(str(exc)) from None
        return wrapper
    return decorate


def require_extra(module: str, command: str, extra: str) -> None:
    """Stop ``moodlens COMMAND`` with one line naming the extra to install when ``module`` is missing."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise fail(f"`moodlens {command}` needs {module}, which is not installed. "
                   f"Install the {extra} extra: pip install 'moodlens[{extra}]'")
