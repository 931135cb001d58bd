"""Events in the web app: list events, their aggregate reports (JSON, HTML, live page), photo uploads to an event.

The database is ``app.state.event_db`` when the app sets it, else ``$MOODLENS_DB`` or the default SQLite
file, so the page shows what ``moodlens event ingest --camera`` (another process) is writing.
Uploaded photos are analysed in memory; only per-face numbers are stored, never the photos.
"""

from __future__ import annotations

import hashlib
import io
import threading
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from moodlens.events.compare import MAX_EVENTS, Comparison, build_comparison, check_names
from moodlens.events.ingest import ingest_images
from moodlens.events.names import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    InvalidName,
    check_description,
    check_event_name,
    check_label,
)
from moodlens.events.report import EventReport, build_report
from moodlens.events.report_files import comparison_tables, report_tables, write_csv_stream
from moodlens.events.store import MAX_RETENTION_DAYS, EventExists, EventNotFound, EventStore
from moodlens.settings import MIN_GROUP_SIZE
from moodlens.web.deps import Pool, Settings, Worker, admit_or_503, read_uploads
from moodlens.web.report_cache import SingleFlightCache
from moodlens.web.routers.analyze import IMAGE_ERROR_STATUS
from moodlens.web.schemas import FileError
from moodlens.web.templating import render_page

router = APIRouter(tags=["events"])

#: The web never breaks out groups smaller than this, whatever the query asks.
WEB_MIN_GROUP_SIZE = MIN_GROUP_SIZE
_store_lock = threading.Lock()


def get_event_store(request: Request) -> EventStore:
    """One EventStore per app, opened on first use (with an empty report cache)."""
    state = request.app.state
    with _store_lock:
        if getattr(state, "event_store", None) is None:
            state.event_store = EventStore(getattr(state, "event_db", None))
            state.report_cache = SingleFlightCache()
    return state.event_store


Store = Annotated[EventStore, Depends(get_event_store)]
MinGroup = Annotated[int, Query(ge=WEB_MIN_GROUP_SIZE, description="groups with fewer people are not broken out")]


class EventInfo(BaseModel):
    name: str
    description: str
    starts_at: str | None
    ends_at: str | None
    retention_days: int | None
    created_at: str
    sources: int
    people: int = Field(description="tracks in video/camera plus faces in photos")
    faces: int
    last_seen: str | None


class EventCreate(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="no '/', no control characters")
    description: str = Field(default="", max_length=MAX_DESCRIPTION_LENGTH)
    retention_days: int | None = Field(default=None, ge=1, le=MAX_RETENTION_DAYS)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        return check_event_name(name)

    @field_validator("description")
    @classmethod
    def _valid_description(cls, description: str) -> str:
        return check_description(description)


class PhotoUploadResult(BaseModel):
    event: str
    batch: str
    photos: int = Field(description="photos analysed")
    faces: int
    errors: list[FileError] = []


def _not_found(exc: EventNotFound) -> HTTPException:
    return HTTPException(404, str(exc))


@router.get("/api/v1/events", response_model=list[EventInfo], summary="List events with their totals")
async def list_events(store: Store) -> list[dict[str, Any]]:
    return [e.to_dict() for e in await run_in_threadpool(store.list_events)]


@router.post("/api/v1/events", response_model=EventInfo, status_code=201, summary="Create an event")
async def create_event(body: EventCreate, store: Store) -> dict[str, Any]:
    try:
        await run_in_threadpool(store.create_event, body.name, None, None, body.description, body.retention_days)
    except EventExists as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:  # the store's own checks, should the model's ever let something through
        raise HTTPException(422, str(exc)) from None
    return next(e.to_dict() for e in store.list_events() if e.name == body.name)


@router.delete("/api/v1/events/{name}", status_code=204, summary="Delete an event with all its observations")
async def delete_event(request: Request, name: str, store: Store) -> Response:
    try:
        await run_in_threadpool(store.delete_event, name)
    except EventNotFound as exc:
        raise _not_found(exc) from None
    return Response(status_code=204)


def report_version(store: EventStore, name: str) -> tuple[Any, ...]:
    """Changes whenever the event's report could: new observations, sources added or finished, a new window."""
    ev = store.get_event(name)
    sources = tuple((s.id, bool(s.finished), s.model_sha256, s.frames_dropped) for s in store.sources(name))
    outages = tuple((o.id, o.ended_at) for parts in store.outages(name).values() for o in parts)
    return store.data_version(name), sources, outages, ev.starts_at, ev.ends_at


def _cache(request: Request) -> SingleFlightCache:
    return request.app.state.report_cache


def _report(request: Request, store: EventStore, name: str, min_group_size: int,
            version: tuple[Any, ...] | None = None) -> EventReport:
    """The event's report, rebuilt only when its data changed and never twice at once."""
    version = version or report_version(store, name)
    return _cache(request).get(("report", name, min_group_size), version,
                               lambda: build_report(store, name, min_group_size=min_group_size))


def _etag(name: str, version: tuple[Any, ...], kind: str) -> str:
    # Hashed: event names may hold characters that HTTP headers cannot.
    digest = hashlib.sha1(repr((name, version, kind)).encode()).hexdigest()[:20]
    return f'"{digest}"'


@router.get("/api/v1/events/{name}/report", summary="The event's aggregate report as JSON")
async def event_report(request: Request, name: str, store: Store,
                       min_group_size: MinGroup = WEB_MIN_GROUP_SIZE) -> dict[str, Any]:
    try:
        return (await run_in_threadpool(_report, request, store, name, min_group_size)).to_dict()
    except EventNotFound as exc:
        raise _not_found(exc) from None


def _html(request: Request, store: EventStore, name: str, full: bool) -> tuple[str, str]:
    """(HTML, ETag) of the full report page or of the fragment the live page swaps in."""
    from moodlens.events.report_html import render_fragment, render_html

    version = report_version(store, name)
    report = _report(request, store, name, WEB_MIN_GROUP_SIZE, version)
    kind = "page" if full else "fragment"
    html = _cache(request).get((kind, name), version,
                               lambda: render_html(report) if full else render_fragment(report))
    return html, _etag(name, version, kind)


def _download_name(name: str, suffix: str) -> str:
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)[:80]
    return f"{safe}-{suffix}"


@router.get("/events/{name}/report.html", response_class=HTMLResponse, include_in_schema=False)
async def event_report_html(request: Request, name: str, store: Store) -> HTMLResponse:
    """The self-contained report page (same file as ``moodlens event report``)."""
    try:
        html, _ = await run_in_threadpool(_html, request, store, name, True)
    except EventNotFound as exc:
        raise _not_found(exc) from None
    return HTMLResponse(html, headers={
        "Content-Disposition": f'inline; filename="{_download_name(name, "report.html")}"'})


@router.get("/events/{name}/fragment", response_class=HTMLResponse, include_in_schema=False)
async def event_report_fragment(request: Request, name: str, store: Store) -> Response:
    """The report body the live page swaps in; 304 while the event's data is unchanged."""
    try:
        etag = _etag(name, await run_in_threadpool(report_version, store, name), "fragment")
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        html, etag = await run_in_threadpool(_html, request, store, name, False)
    except EventNotFound as exc:
        raise _not_found(exc) from None
    return HTMLResponse(html, headers={"ETag": etag, "Cache-Control": "no-cache"})


def _csv_response(tables: dict[str, tuple[list[dict[str, Any]], list[str]]], table: str, filename: str) -> Response:
    if table not in tables:
        raise HTTPException(404, f"no table {table!r}; choose from {', '.join(tables)}")
    rows, columns = tables[table]
    buffer = io.StringIO()
    write_csv_stream(buffer, rows, columns)
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/api/v1/events/{name}/{table}.csv", summary="A table of the event's report as CSV",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def event_report_csv(request: Request, name: str, table: str, store: Store,
                           min_group_size: MinGroup = WEB_MIN_GROUP_SIZE) -> Response:
    """``table``: ``summary``, ``timeline`` (one row per time bin, with its ``state``: empty, hidden or shown,
    and the rule that hid it), ``sources`` or ``outside`` (observations outside the report period)."""
    try:
        report = await run_in_threadpool(_report, request, store, name, min_group_size)
    except EventNotFound as exc:
        raise _not_found(exc) from None
    return _csv_response(report_tables(report), table, _download_name(name, f"{table}.csv"))


EventNames = Annotated[list[str], Query(alias="e", description=f"event names, 2 to {MAX_EVENTS}")]


def _comparison(request: Request, store: EventStore, names: list[str], min_group_size: int,
                html: bool = False) -> Comparison | str:
    """The comparison (or its HTML fragment), rebuilt only when one of the events' data changed."""
    names = check_names(names)
    version = tuple(report_version(store, n) for n in names)
    slot = (tuple(names), min_group_size)
    comparison = _cache(request).get(("compare", *slot), version,
                                     lambda: build_comparison(store, names, min_group_size=min_group_size))
    if not html:
        return comparison
    from moodlens.events.compare_html import render_comparison_fragment

    return _cache(request).get(("compare-html", *slot), version, lambda: render_comparison_fragment(comparison))


async def _compare_or_error(request: Request, store: EventStore, names: list[str], min_group_size: int,
                            html: bool = False) -> Any:
    try:
        return await run_in_threadpool(_comparison, request, store, names, min_group_size, html)
    except EventNotFound as exc:
        raise _not_found(exc) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/api/v1/events/compare", summary="Events side by side, as JSON (same privacy rules as reports)")
async def compare_json(request: Request, store: Store, names: EventNames,
                       min_group_size: MinGroup = WEB_MIN_GROUP_SIZE) -> dict[str, Any]:
    return (await _compare_or_error(request, store, names, min_group_size)).to_dict()


@router.get("/api/v1/events/compare.csv", summary="A table of an events comparison as CSV",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def compare_csv(request: Request, store: Store, names: EventNames,
                      table: Annotated[str, Query(description="events, event_time or event_sources")] = "events",
                      min_group_size: MinGroup = WEB_MIN_GROUP_SIZE) -> Response:
    comparison = await _compare_or_error(request, store, names, min_group_size)
    return _csv_response(comparison_tables(comparison), table, f"comparison-{table}.csv")


def _ingest_uploads(worker: Worker, store: EventStore, name: str, batch: str,
                    files: list[tuple[str, bytes]]) -> tuple[int, int, list[FileError]]:
    """Store the faces of the uploads in the event; unreadable files come back as errors naming them."""
    result = ingest_images(store, name, files, batch=batch, analyzer=worker.photos)
    index = {filename: i for i, (filename, _) in enumerate(files)}
    errors = []
    for filename, reason, kind in result.errors:
        reason = reason.removeprefix(f"{filename}: ")
        errors.append(FileError(index=index.get(filename, -1), filename=filename, kind=kind,
                                status=IMAGE_ERROR_STATUS[kind], reason=reason))
    return result.frames, result.faces, errors


@router.post("/api/v1/events/{name}/photos", response_model=PhotoUploadResult,
             summary="Add photos to an event (analysed in memory; only per-face numbers are stored)",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["files"], "properties": {"files": {
                     "type": "array", "items": {"type": "string", "format": "binary"}}}}}}}})
async def upload_photos(request: Request, name: str, store: Store, settings: Settings, pool: Pool,
                        batch: Annotated[str, Query(max_length=MAX_NAME_LENGTH, description="source name the photos "
                                                    "are grouped under in the report")] = "web uploads",
                        ) -> PhotoUploadResult:
    try:
        batch = check_label(batch, "batch name")
        await run_in_threadpool(store.get_event, name)
    except InvalidName as exc:
        raise HTTPException(422, str(exc)) from None
    except EventNotFound as exc:
        raise _not_found(exc) from None
    # The body is read before a worker slot is taken, so slow uploads never hold analysis capacity.
    files = await read_uploads(request, settings)
    with admit_or_503(pool):
        photos, faces, errors = await pool.run(_ingest_uploads, store, name, batch, files)
    if not photos and errors:
        raise HTTPException(errors[0].status, [e.model_dump() for e in errors])
    return PhotoUploadResult(event=name, batch=batch, photos=photos, faces=faces, errors=errors)


@router.get("/events", response_class=HTMLResponse, include_in_schema=False)
async def events_page(request: Request, store: Store) -> HTMLResponse:
    events = await run_in_threadpool(store.list_events)
    return render_page(request, "events.html", title="Events", events=events)


@router.get("/events/compare", response_class=HTMLResponse, include_in_schema=False)
async def compare_page(request: Request, store: Store,
                       names: Annotated[list[str] | None, Query(alias="e")] = None) -> HTMLResponse:
    """Events side by side; without ``e`` (or an event named ``compare``), the events list to choose from."""
    if not names:
        if any(e.name == "compare" for e in await run_in_threadpool(store.list_events)):
            return await event_page(request, "compare", store)
        return RedirectResponse("/events", status_code=303)
    fragment = await _compare_or_error(request, store, list(names), WEB_MIN_GROUP_SIZE, html=True)
    query = urlencode([("e", n) for n in names])
    return render_page(request, "event_compare.html", title="Compare events", fragment=Markup(fragment),
                       query=query, names=list(names))


@router.get("/events/{name}", response_class=HTMLResponse, include_in_schema=False)
async def event_page(request: Request, name: str, store: Store) -> HTMLResponse:
    try:
        event = await run_in_threadpool(store.get_event, name)
        sources = await run_in_threadpool(store.sources, name)
    except EventNotFound as exc:
        raise _not_found(exc) from None
    return render_page(request, "event.html", title=f"Event {name}", event=event, sources=sources)
