"""Shared concerns of the web layer: settings and limits, the bounded inference pool,
in-memory upload parsing, and the FastAPI dependencies that hand them to routes."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

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

    def __post_init__(self) -> None:
        if self.max_upload_mb <= 0 or self.max_pixels <= 0 or self.max_files <= 0:
            raise ValueError("max_upload_mb, max_pixels and max_files must be positive")
        if self.workers < 1 or self.max_queue < 0:
            raise ValueError("workers must be >= 1 and max_queue >= 0")

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


async def _bounded(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit:
            raise HTTPException(413, f"request body exceeds the upload limit of {limit / MB:g} MB")
        yield chunk


async def read_uploads(request: Request, settings: WebSettings, field: str = "files") -> list[tuple[str, bytes]]:
    """The files of a multipart request as ``(filename, bytes)``, kept in memory and within the limits.

    Raises 413 for a body over ``max_upload_mb`` or more than ``max_files`` files, 400/415 for a
    malformed or non-multipart body, 422 when the field is missing.
    """
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body of {int(declared) / MB:.1f} MB exceeds the upload limit of "
                                 f"{limit / MB:g} MB")
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise HTTPException(415, f"send the images as multipart/form-data in the field '{field}'")
    parser = _InMemoryMultiPartParser(request.headers, _bounded(request.stream(), limit),
                                      max_files=settings.max_files, max_fields=100, spool_max_size=limit + 1)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        status = 413 if "Too many files" in exc.message else 400
        raise HTTPException(status, f"{exc.message} (limit: {settings.max_files} files per request)"
                            if status == 413 else f"malformed multipart body: {exc.message}") from None
    uploads = [item for item in form.getlist(field) if isinstance(item, UploadFile)]
    if not uploads:
        raise HTTPException(422, f"no files: send one or more images in the multipart field '{field}'")
    files = []
    for i, upload in enumerate(uploads):
        upload.file.seek(0)
        files.append((upload.filename or f"file-{i + 1}", upload.file.read()))
        upload.file.close()
    return files


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
