"""Shared concerns of the web layer: settings and limits, the bounded inference pool,
in-memory upload parsing with read timeouts, and the FastAPI dependencies that hand them to routes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

T = TypeVar("T")

MB = 1024 * 1024


@dataclass(frozen=True)
class WebSettings:
    """Operator-chosen limits of one server; the CLI options of ``moodlens serve`` map onto these."""

    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    max_files: int = 50
    workers: int = 1
    max_queue: int = 16
    save_dir: Path | None = None
    #: Upload bodies received at once; beyond that 503. Bounds memory: at most this many x max_upload_mb.
    max_uploads: int = 32
    #: Seconds an upload body may go without sending a byte before it is refused (408).
    read_timeout_s: float = 10.0
    #: Seconds a whole upload body may take (1.3 Mbit/s for 20 MB in the default 120 s).
    body_timeout_s: float = 120.0
    #: Seconds a live WebSocket may stay silent before the server closes it.
    frame_timeout_s: float = 60.0
    #: Live WebSockets open at once (each holds its own tracker); beyond that a new one is closed with 1013.
    max_live: int = 64

    def __post_init__(self) -> None:
        if self.max_upload_mb <= 0 or self.max_pixels <= 0 or self.max_files <= 0:
            raise ValueError("max_upload_mb, max_pixels and max_files must be positive")
        if self.workers < 1 or self.max_queue < 0 or self.max_uploads < 1 or self.max_live < 1:
            raise ValueError("workers, max_uploads and max_live must be >= 1 and max_queue >= 0")
        if min(self.read_timeout_s, self.body_timeout_s, self.frame_timeout_s) <= 0:
            raise ValueError("read_timeout_s, body_timeout_s and frame_timeout_s must be positive")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    def limits(self) -> dict[str, Any]:
        """The limits a client (or the upload page) must respect."""
        return {"max_upload_bytes": self.max_upload_bytes, "max_pixels": self.max_pixels,
                "max_files": self.max_files, "saving": self.save_dir is not None}


@dataclass(frozen=True)
class Worker:
    """What one analysis thread works with: an Analyzer for photos and one for live camera frames (the video
    defaults: :data:`~moodlens.settings.VIDEO_DEFAULTS`, as ``moodlens camera`` uses)."""

    photos: Any
    live: Any


class Overloaded(RuntimeError):
    """Every worker is busy and the waiting queue is full."""


class InferencePool:
    """Runs analyses on worker threads, at most ``len(workers)`` at once.

    Admission is counted per request: up to ``workers + max_queue`` requests may be in flight,
    the next one is refused at once (``Overloaded`` -> HTTP 503) instead of piling up. Thread
    primitives (not asyncio ones) keep it usable from any event loop, e.g. several test clients.
    """

    def __init__(self, workers: list[Any], max_queue: int) -> None:
        self._idle: SimpleQueue[Any] = SimpleQueue()
        for worker in workers:
            self._idle.put(worker)
        self.size = len(workers)
        self.capacity = self.size + max_queue
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def admit(self) -> _Admission:
        """Count one more request in flight, or raise ``Overloaded`` at once; use the result in ``with``."""
        with self._lock:
            if self._in_flight >= self.capacity:
                raise Overloaded(f"server busy: {self._in_flight} requests in progress "
                                 f"({self.size} worker(s), queue of {self.capacity - self.size}); retry shortly")
            self._in_flight += 1
        return _Admission(self)

    def _release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(worker, *args)`` on a thread, with a worker taken from the pool (waits if none is idle)."""
        return await run_in_threadpool(self._call, fn, *args)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        worker = self._idle.get()
        try:
            return fn(worker, *args)
        finally:
            self._idle.put(worker)


class _Admission:
    """Releases one admitted request when its ``with`` block ends."""

    def __init__(self, pool: InferencePool) -> None:
        self._pool = pool

    def __enter__(self) -> InferencePool:
        return self._pool

    def __exit__(self, *exc: object) -> None:
        self._pool._release()


class _InMemoryMultiPartParser(MultiPartParser):
    """Starlette's multipart parser, but uploaded files never roll over to a temporary file on disk."""

    def __init__(self, *args: Any, spool_max_size: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spool_max_size = spool_max_size


class Gate:
    """Counts what is in progress (upload bodies being received, live connections) and refuses more than
    ``limit`` at once with ``Overloaded``: it bounds the memory they hold. ``what`` names them in the refusal."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Gate:
        with self._lock:
            if self.count >= self.limit:
                raise Overloaded(f"server busy: {self.count} {self.what}; retry shortly")
            self.count += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.count -= 1


async def bounded_body(stream: AsyncIterator[bytes], limit: int, read_timeout_s: float, body_timeout_s: float,
                       too_big: str | None = None) -> AsyncIterator[bytes]:
    """The body's chunks, refused with 413 past ``limit`` bytes (``too_big``: the refusal's text) and with 408
    when the client stalls for ``read_timeout_s`` or takes longer than ``body_timeout_s`` in all."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + body_timeout_s
    chunks = aiter(stream)
    received = 0
    while True:
        wait = min(read_timeout_s, deadline - loop.time())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            why = (f"nothing received for {read_timeout_s:g} s" if wait == read_timeout_s
                   else f"not complete after {body_timeout_s:g} s")
            raise HTTPException(408, f"request body too slow: {why} ({received:,} bytes received)",
                                headers={"Connection": "close"}) from None
        received += len(chunk)
        if received > limit:
            raise HTTPException(413, too_big or f"request body exceeds the upload limit of {limit / MB:g} MB")
        yield chunk


async def read_uploads(request: Request, settings: WebSettings, field: str = "files") -> list[tuple[str, bytes]]:
    """The files of a multipart request as ``(filename, bytes)``, kept in memory and within the limits.

    Call it before taking a worker slot: a slow or stalled body then holds no analysis capacity, only one
    of ``max_uploads`` receiving slots, and only until its read timeout.
    Raises 413 for a body over ``max_upload_mb`` or more than ``max_files`` files, 408 for a body that
    stalls or is too slow, 400/415 for a malformed or non-multipart body, 422 when the field is missing,
    503 when ``max_uploads`` bodies are already being received.
    """
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body of {int(declared) / MB:.1f} MB exceeds the upload limit of "
                                 f"{limit / MB:g} MB")
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise HTTPException(415, f"send the images as multipart/form-data in the field '{field}'")
    form = await _parse_form(request, settings)
    try:
        uploads = [item for item in form.getlist(field) if isinstance(item, UploadFile)]
        if not uploads:
            raise HTTPException(422, f"no files: send one or more images in the multipart field '{field}'")
        files = []
        for i, upload in enumerate(uploads):
            upload.file.seek(0)
            files.append((upload.filename or f"file-{i + 1}", upload.file.read()))
        return files
    finally:
        await form.close()  # every part's buffer, those of other fields too


async def _parse_form(request: Request, settings: WebSettings) -> FormData:
    """The multipart body, parsed in memory within the limits (see :func:`read_uploads`)."""
    body = bounded_body(request.stream(), settings.max_upload_bytes, settings.read_timeout_s, settings.body_timeout_s)
    parser = _InMemoryMultiPartParser(request.headers, body, max_files=settings.max_files, max_fields=100,
                                      spool_max_size=settings.max_upload_bytes + 1)
    try:
        with request.app.state.upload_gate:
            return await parser.parse()
    except Overloaded as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from None
    except MultiPartException as exc:
        status = 413 if "Too many files" in exc.message else 400
        raise HTTPException(status, f"{exc.message} (limit: {settings.max_files} files per request)"
                            if status == 413 else f"malformed multipart body: {exc.message}") from None
    except ClientDisconnect:
        raise HTTPException(400, "the client closed the connection before the upload was complete") from None


def get_settings(request: Request) -> WebSettings:
    return request.app.state.settings


def get_pool(request: Request) -> InferencePool:
    return request.app.state.pool


def admit_or_503(pool: InferencePool) -> _Admission:
    """``pool.admit()`` for an HTTP route: an overloaded pool becomes 503 with ``Retry-After``."""
    try:
        return pool.admit()
    except Overloaded as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from None


Settings = Annotated[WebSettings, Depends(get_settings)]
Pool = Annotated[InferencePool, Depends(get_pool)]
