"""Photos into an event, and the pieces every ingest shares (results, batched commits, track numbers).

Frames and photos live only in memory: only the numbers (time, anonymous track, 7 probabilities, box size)
are written. Writes are batched into transactions at least every ``commit_interval_s`` seconds, each one
also advancing the source's resume cursor, so a killed ingest loses at most that much work and the next run
of the same command continues where it stopped. Videos, cameras and stream URLs are ingested by the stream
engine with the event store as its sink (:mod:`moodlens.events.stream_ingest`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from moodlens.events.model_facts import model_facts
from moodlens.events.store import PROB_COLUMNS, EventStore, Source, to_utc_naive, utcnow
from moodlens.recognition.faces import Faces
from moodlens.recognition.imageio import iter_image_paths
from moodlens.wording import plural

if TYPE_CHECKING:  # the Analyzer loads ONNX models: imported only when one is made
    from moodlens.recognition.analyzer import Analyzer

@dataclass
class IngestResult:
    """What one ingest run did."""

    event: str
    source: str
    kind: str
    frames: int = 0
    faces: int = 0
    new_tracks: int = 0
    resumed_from: int | None = None
    finished: bool = False
    skipped: int = 0
    #: (file name, reason, :class:`~moodlens.recognition.imageio.ImageError` kind) of each photo that could not be read.
    errors: list[tuple[str, str, str]] = field(default_factory=list)
    #: Live sources: frames dropped because analysis fell behind, and the intervals offline (``from``, ``to``).
    frames_dropped: int = 0
    offline: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        unit = "photos" if self.kind in ("photos", "upload") else "frames"
        if self.finished and not self.frames and self.resumed_from is None:
            return f"{self.source}: already ingested completely (delete the event to start again)"
        text = (f"{self.source}: {plural(self.frames, unit[:-1])} analysed, {plural(self.faces, 'face')}, "
                f"{plural(self.new_tracks, 'new track')}")
        if self.resumed_from is not None:
            text += f" (resumed from {unit[:-1]} {self.resumed_from})"
        if self.skipped:
            text += f", {plural(self.skipped, 'unreadable file')} skipped"
        if self.frames_dropped:
            text += f", {plural(self.frames_dropped, 'frame')} dropped (analysis behind the source)"
        if self.offline:
            text += f", offline {plural(len(self.offline), 'time')}"
        return text + ("" if self.finished else "; stopped before the end (run the same command to resume)")


def _default_analyzer() -> Analyzer:
    from moodlens.recognition.analyzer import Analyzer

    return Analyzer()


def _rows(faces: Faces, frame: int, ts: datetime, track_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Observation rows of one frame: numbers only, nothing that shows or identifies a face."""
    rows = []
    for box, probs, track in zip(faces.boxes, faces.probs, track_ids, strict=True):
        row: dict[str, Any] = {"frame": frame, "ts": ts, "track": int(track),
                               "box_w": int(box[2]), "box_h": int(box[3])}
        row.update(zip(PROB_COLUMNS, (float(p) for p in np.nan_to_num(probs)), strict=True))
        rows.append(row)
    return rows


class _BatchWriter:
    """Buffers rows and commits them, with the resume cursor, at least every ``interval_s`` seconds."""

    def __init__(self, store: EventStore, source_id: int, interval_s: float) -> None:
        self.store, self.source_id, self.interval_s = store, source_id, interval_s
        self.rows: list[dict[str, Any]] = []
        self.last_commit = time.monotonic()
        #: Further source columns written with every commit (e.g. ``frames_dropped``).
        self.fields: dict[str, Any] = {}

    def add(self, rows: list[dict[str, Any]], next_frame: int) -> None:
        self.rows.extend(rows)
        if time.monotonic() - self.last_commit >= self.interval_s:
            self.commit(next_frame)

    def commit(self, next_frame: int, finished: bool = False) -> None:
        self.store.commit_batch(self.source_id, self.rows, next_frame, finished, **self.fields)
        self.rows = []
        self.last_commit = time.monotonic()


class _TrackNumbers:
    """Maps tracker ids to the source's stored track numbers, continuing after earlier runs."""

    def __init__(self, first: int) -> None:
        self.next = first
        self.stored: dict[int, int] = {}
        self.count = 0

    def __call__(self, tracker_ids: np.ndarray) -> list[int]:
        out = []
        for tid in tracker_ids.tolist():
            if tid not in self.stored:
                self.stored[tid] = self.next
                self.next += 1
            out.append(self.stored[tid])
        return out

    def fresh(self, n: int) -> list[int]:
        """``n`` new numbers not tied to any tracker id (photos: one per face)."""
        out = list(range(self.next, self.next + n))
        self.next += n
        self.count += n
        return out

    @property
    def created(self) -> int:
        return len(self.stored) + self.count


def _check_every(every: int) -> None:
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")


def list_photos(directory: str | Path) -> list[Path]:
    """Image files under ``directory`` (recursively, by :data:`~moodlens.recognition.imageio.IMAGE_SUFFIXES`),
    in a stable order: the files ``moodlens analyze DIR`` takes."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise NotADirectoryError(f"photo folder not found: {root}")
    return iter_image_paths([root])


def photo_time(path: Path | None, data: bytes | None = None) -> datetime | None:
    """When a photo was taken (EXIF DateTimeOriginal, as local time), else its file time, as naive UTC."""
    try:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data) if data is not None else path) as im:
            exif = im.getexif()
            raw = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)  # DateTimeOriginal, DateTime
        if raw:
            return to_utc_naive(datetime.strptime(str(raw).strip(), "%Y:%m:%d %H:%M:%S"))
    except Exception:  # noqa: BLE001 - any unreadable EXIF just falls back to the file time
        pass
    if path is not None:
        return to_utc_naive(datetime.fromtimestamp(path.stat().st_mtime))
    return None


def ingest_photos(store: EventStore, event: str, photos: str | Path, every: int = 1,
                  analyzer: Analyzer | None = None, commit_interval_s: float = 1.0,
                  progress: bool = True) -> IngestResult:
    """Analyse every ``every``-th photo of a folder; each face found counts as one person.

    Unreadable files are skipped and listed in ``errors`` (the CLI prints them). Re-running resumes after the
    last committed photo; photos added to the folder later are picked up only if they sort after it, so add
    new batches as new folders.
    """
    _check_every(every)
    files = list_photos(photos)[::every]
    root = Path(photos).expanduser().resolve()
    src = store.open_source(event, "photos", str(root), label=root.name, every=every, frames_total=len(files))
    result = IngestResult(event, root.name, "photos", resumed_from=src.frames_done or None)
    analyzer = analyzer or _default_analyzer()
    store.update_source(src.id, frames_total=len(files),
                        tracking="photos: every face in every photo counts as one person")
    store.record_model(src.id, model_facts(analyzer))
    items = ((i, f, None) for i, f in enumerate(files) if i >= src.frames_done)
    return _run_photos(store, src, items, analyzer, result, len(files), commit_interval_s, progress)


def ingest_images(store: EventStore, event: str, images: list[tuple[str, bytes]], batch: str = "upload",
                  analyzer: Analyzer | None = None) -> IngestResult:
    """Analyse uploaded images (name, bytes) into ``event`` as one ``upload`` source per batch name.

    All or nothing: the faces of every readable image are committed together at the end, so a request
    that fails part-way stores nothing and can be retried without counting anyone twice. Unreadable
    images are listed in ``errors`` and store nothing. Uploads to the same batch run one at a time, so
    concurrent requests never hand out the same person numbers.
    """
    with _upload_lock(store, event, batch):
        src = store.open_source(event, "upload", batch, label=batch,
                                tracking="photos: every face in every photo counts as one person")
        result = IngestResult(event, batch, "upload")
        analyzer = analyzer or _default_analyzer()
        store.record_model(src.id, model_facts(analyzer))
        start = src.frames_done
        items = ((start + i, Path(name), data) for i, (name, data) in enumerate(images))
        return _run_photos(store, src, items, analyzer, result, None, float("inf"), False, atomic=True)


_upload_locks: dict[tuple[str, str, str], threading.Lock] = {}
_upload_locks_guard = threading.Lock()


def _upload_lock(store: EventStore, event: str, batch: str) -> threading.Lock:
    with _upload_locks_guard:
        return _upload_locks.setdefault((store.url, event, batch), threading.Lock())


def _run_photos(store: EventStore, src: Source, items: Iterable[tuple[int, Path, bytes | None]], analyzer: Any,
                result: IngestResult, total: int | None, commit_interval_s: float, progress: bool,
                atomic: bool = False) -> IngestResult:
    """Analyse photos into ``src``; unreadable ones are skipped and listed in ``result.errors``.

    ``atomic``: commit only when every item was handled (uploads); otherwise what was analysed before an
    interruption or error is committed, so the same command resumes after it (folders).
    """
    from moodlens.recognition.imageio import MAX_PIXELS, ImageError, decode_image

    numbers = _TrackNumbers(store.max_track(src.id) + 1)
    writer = _BatchWriter(store, src.id, commit_interval_s)
    next_item = src.frames_done
    completed = False
    bar = tqdm(total=total, initial=next_item, unit="photo", desc=src.label, disable=not progress)
    try:
        for index, path, data in items:
            try:
                # Bytes are decoded here so that errors name the uploaded file.
                image = path if data is None else decode_image(data, name=str(path),
                                                               max_pixels=getattr(analyzer, "max_pixels", MAX_PIXELS))
                faces = analyzer.analyze(image, name=str(path))
            except (ImageError, OSError) as e:
                result.skipped += 1
                result.errors.append((str(path), str(e), getattr(e, "kind", "unreadable")))
                faces = None
            if faces is not None:
                ts = photo_time(path if data is None else None, data) or utcnow()
                # No tracking across photos: each face is its own "track".
                writer.add(_rows(faces, index, ts, numbers.fresh(len(faces))), index + 1)
                result.frames += 1  # photos analysed; the skipped ones are counted apart
                result.faces += len(faces)
            else:
                writer.add([], index + 1)
            next_item = index + 1
            bar.update(next_item - bar.n)
        completed = True
    except KeyboardInterrupt:
        pass
    finally:
        bar.close()
        result.new_tracks = numbers.created
        result.finished = completed
        if completed or not atomic:
            writer.commit(next_item, finished=completed)
    return result
