"""A real server in a subprocess on a free loopback port, for tests that need real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from web_access import OPERATOR_TOKEN, VIEWER_TOKEN

#: The test tokens, as ``moodlens serve`` reads them from the environment.
TOKEN_ENV = {"MOODLENS_TOKEN": OPERATOR_TOKEN, "MOODLENS_VIEWER_TOKEN": VIEWER_TOKEN}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(port: int, *options: str) -> list[str]:
    """``moodlens serve`` on 127.0.0.1:``port``, exactly as an operator starts it."""
    return [sys.executable, "-c", "from moodlens.cli import app; app()", "serve", "--host", "127.0.0.1",
            "--port", str(port), *options]


@contextmanager
def running(command: list[str], port: int, env: dict[str, str] | None = None, start_s: float = 90) -> Iterator[str]:
    """Start ``command`` (a server on ``port``), wait until ``/healthz`` answers, yield its URL, stop it."""
    # A file, not a pipe: a full pipe would stall the server's access log.
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **TOKEN_ENV, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_s
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.seek(0)
                pytest.fail(f"server did not start:\n{log.read()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
