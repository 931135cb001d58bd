"""Turn videos, cameras and photo folders into stored observations of an event.

Frames live only in memory: each is analysed, its faces tracked, and only the
numbers (time, anonymous track, 7 probabilities, box size) are written. Writes are
batched into transactions at least every ``commit_interval_s`` seconds, each one
also advancing the source's resume cursor, so a killed ingest loses at most that
much work and the next run of the same command continues where it stopped.

Resuming a video is exact: the tracker's state is not stored, so the ingest goes
back to the last frame at which no track was alive (nothing the tracker remembers
can differ there), drops the observations after it and replays from it. The
resumed run therefore ends with the same people and faces as an uninterrupted one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from tqdm import tqdm

from moodlens.events.store import PROB_COLUMNS, EventStore, Source, to_utc_naive, utcnow
from moodlens.recognition.faces import Faces
from moodlens.recognition.track import FaceTracker

if TYPE_CHECKING:  # the Analyzer loads ONNX models: imported only when one is made
    from moodlens.recognition.analyzer import Analyzer

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: Frame rate assumed when a video file does not say.
FALLBACK_FPS = 25.0


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

    def summary(self) -> str:
        unit = "photos" if self.kind in ("photos", "upload") else "frames"
        if self.finished and not self.frames and self.resumed_from is None:
            return f"{self.source}: already ingested completely (delete the event to start again)"
        text = f"{self.source}: {self.frames} {unit} analysed, {self.faces} faces, {self.new_tracks} new tracks"
        if self.resumed_from is not None:
            text += f" (resumed from {unit[:-1]} {self.resumed_from})"
        if self.skipped:
            text += f", {self.skipped} unreadable skipped"
        return text + ("" if self.finished else "; stopped before the end (run the same command to resume)")


def _default_analyzer() -> Analyzer:
    from moodlens.recognition.analyzer import Analyzer

    return Analyzer()


def _model_name(analyzer: Any) -> str:
    classifier = getattr(analyzer, "classifier", None)
    card = getattr(classifier, "card", {}) or {}
    path = getattr(classifier, "model_path", None)
    return str(card.get("name") or (Path(path).name if path else ""))


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

    def add(self, rows: list[dict[str, Any]], next_frame: int) -> None:
        self.rows.extend(rows)
        if time.monotonic() - self.last_commit >= self.interval_s:
            self.commit(next_frame)

    def commit(self, next_frame: int, finished: bool = False) -> None:
        self.store.commit_batch(self.source_id, self.rows, next_frame, finished)
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


def quiet_frame(spans: list[tuple[int, int, int]], frame: int, every: int, max_age: int) -> int | None:
    """``frame`` if no stored track could still be alive in the tracker there, else the earliest start of
    a track that could (to go back further); ``None`` when ``frame`` is quiet.

    A track last seen at processed update ``u`` can still be matched up to update ``u + max_age + 1``.
    """
    update = -(-frame // every)  # the next analysed frame at or after ``frame``
    alive = [first for _, first, last in spans if first < frame and last // every + max_age + 1 >= update]
    return min(alive) if alive else None


def rewind_to_quiet_frame(store: EventStore, source: Source, max_age: int) -> int:
    """Move a partly ingested video source back to its last quiet frame; returns that frame."""
    frame = source.frames_done
    while frame > 0:
        since = max(0, frame - (max_age + 2) * source.every)
        earlier = quiet_frame(store.track_spans(source.id, since), frame, source.every, max_age)
        if earlier is None:
            break
        frame = earlier
    store.rewind_source(source.id, frame)
    return frame


def video_info(path: Path) -> tuple[float, int]:
    """(fps, frame count) of a video file; raises ``ValueError`` naming the file if it cannot be read."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ValueError(f"{path}: cannot open as a video (missing file or unsupported format)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    return (fps if 1.0 <= fps <= 1000.0 else FALLBACK_FPS), max(count, 0)


def _tracking_note(max_age: int, every: int, fps: float | None) -> str:
    gap = f"{max_age + 1} analysed frames"
    if fps:
        gap += f" ({(max_age + 1) * every / fps:.1f} s)"
    return f"box-overlap tracker; a track ends after its face is unseen for {gap}"


def _max_age(track_gap_s: float, fps: float, every: int) -> int:
    if track_gap_s < 0:
        raise ValueError("track_gap_s must be >= 0")
    return max(0, round(track_gap_s * fps / every) - 1)


def _check_every(every: int) -> None:
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")


def ingest_video(store: EventStore, event: str, video: str | Path, every: int = 1, start: datetime | None = None,
                 track_gap_s: float = 1.0, analyzer: Analyzer | None = None, commit_interval_s: float = 1.0,
                 progress: bool = True, stop: threading.Event | None = None) -> IngestResult:
    """Analyse a video file into ``event``; running it again on the same file resumes an unfinished ingest.

    ``every``: analyse every Nth frame. ``start``: wall-clock time of the first frame (default: the
    event's start, else the file's modification time minus its duration). ``track_gap_s``: how long a
    face may go unseen before its track (person) ends.
    """
    _check_every(every)
    path = Path(video).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    fps, total = video_info(path)
    uri = str(path.resolve())
    src = store.open_source(event, "video", uri, label=path.name, fps=fps, every=every, track_gap_s=track_gap_s,
                            frames_total=total or None)
    # Resuming replays part of the video: with other settings its tracks would not join up.
    for name, used, asked in (("every", src.every, every), ("track_gap_s", src.track_gap_s, track_gap_s)):
        if used is not None and used != asked and not src.finished:
            raise ValueError(f"{path}: this ingest was started with {name}={used}; resume with the same value "
                             f"or delete the event's data first")
    result = IngestResult(event, path.name, "video")
    if src.finished:
        result.finished = True
        return result
    max_age = _max_age(track_gap_s, fps, every)
    if src.started_at is None:
        ev = store.get_event(event)
        if start is not None:
            started = to_utc_naive(start)
        elif ev.starts_at is not None:
            started = ev.starts_at
        else:
            started = to_utc_naive(datetime.fromtimestamp(path.stat().st_mtime)) - timedelta(seconds=total / fps)
        store.update_source(src.id, started_at=started, tracking=_tracking_note(max_age, every, fps))
        src = store.get_source(src.id)
    first = 0
    if src.frames_done > 0:
        first = rewind_to_quiet_frame(store, src, max_age)
        result.resumed_from = first
    analyzer = analyzer or _default_analyzer()
    store.update_source(src.id, model=_model_name(analyzer))

    def frames() -> Iterator[tuple[int, datetime, np.ndarray]]:
        cap = cv2.VideoCapture(str(path))
        try:
            # Skipping by grab() instead of seeking: seeks land on keyframes in many codecs.
            for _ in range(first):
                if not cap.grab():
                    return
            index = first
            while True:
                if index % every:
                    ok = cap.grab()
                    image = None
                else:
                    ok, image = cap.read()
                if not ok:
                    return
                if image is not None:
                    yield index, src.started_at + timedelta(seconds=index / fps), image
                index += 1
        finally:
            cap.release()

    bar = tqdm(total=total or None, initial=first, unit="frame", desc=path.name, disable=not progress)
    return _run_stream(store, src, frames(), FaceTracker(max_age=max_age, predict_motion=True), analyzer, result, bar,
                       commit_interval_s, stop)


def ingest_camera(store: EventStore, event: str, camera: int = 0, every: int = 1, track_gap_s: float = 1.0,
                  analyzer: Analyzer | None = None, commit_interval_s: float = 1.0, progress: bool = True,
                  stop: threading.Event | None = None, max_frames: int | None = None,
                  capture: Any = None) -> IngestResult:
    """Analyse a live camera until stopped (Ctrl-C, ``stop`` set, ``max_frames`` read or the event's end).

    Frames are timestamped when read. Restarting continues the same source; a person in view during
    the restart is counted again. ``capture``: an already opened ``cv2.VideoCapture``-like object.
    """
    _check_every(every)
    cap = capture if capture is not None else cv2.VideoCapture(camera)
    if not cap.isOpened():
        raise ValueError(f"camera {camera}: cannot open (no such device, or it is in use)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    fps = fps if 1.0 <= fps <= 1000.0 else FALLBACK_FPS
    max_age = _max_age(track_gap_s, fps, every)
    src = store.open_source(event, "camera", f"camera:{camera}", label=f"camera {camera}", fps=fps, every=every)
    store.update_source(src.id, finished=False, tracking=_tracking_note(max_age, every, fps),
                        started_at=src.started_at or utcnow())
    ev = store.get_event(event)
    result = IngestResult(event, f"camera {camera}", "camera", resumed_from=src.frames_done or None)
    analyzer = analyzer or _default_analyzer()
    store.update_source(src.id, model=_model_name(analyzer))
    first = src.frames_done

    def frames() -> Iterator[tuple[int, datetime, np.ndarray]]:
        index, read = first, 0
        try:
            while max_frames is None or read < max_frames:
                ok, image = cap.read()
                if not ok:
                    return
                now = utcnow()
                if ev.ends_at is not None and now > ev.ends_at:
                    return
                read += 1
                if index % every == 0:
                    yield index, now, image
                index += 1
        finally:
            cap.release()

    bar = tqdm(unit="frame", desc=f"camera {camera}", disable=not progress)
    return _run_stream(store, src, frames(), FaceTracker(max_age=max_age, predict_motion=True), analyzer, result, bar,
                       commit_interval_s, stop, finish=False)


def _run_stream(store: EventStore, src: Source, frames: Iterator[tuple[int, datetime, np.ndarray]],
                tracker: FaceTracker, analyzer: Any, result: IngestResult, bar: tqdm, commit_interval_s: float,
                stop: threading.Event | None, finish: bool = True) -> IngestResult:
    numbers = _TrackNumbers(store.max_track(src.id) + 1)
    writer = _BatchWriter(store, src.id, commit_interval_s)
    next_frame = store.get_source(src.id).frames_done
    completed = False
    try:
        for index, ts, image in frames:
            faces = tracker.update(analyzer.analyze(image))
            writer.add(_rows(faces, index, ts, numbers(faces.track_ids)), index + 1)
            next_frame = index + 1
            result.frames += 1
            result.faces += len(faces)
            bar.update(next_frame - bar.n)
            bar.set_postfix(people=numbers.created, refresh=False)
            if stop is not None and stop.is_set():
                break
        else:
            completed = True
    except KeyboardInterrupt:
        pass  # Ctrl-C: keep what was analysed, commit below, resumable
    finally:
        bar.close()
        result.new_tracks = numbers.created
        result.finished = completed and finish
        writer.commit(next_frame, finished=result.finished)
    return result


def list_photos(directory: str | Path) -> list[Path]:
    """Image files under ``directory`` (recursively), in a stable order."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise NotADirectoryError(f"photo folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)


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
    store.update_source(src.id, frames_total=len(files), model=_model_name(analyzer),
                        tracking="photos: every face in every photo counts as one person")
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
                faces = Faces.empty()
            ts = photo_time(path if data is None else None, data) or utcnow()
            # No tracking across photos: each face is its own "track".
            ids = numbers.fresh(len(faces))
            writer.add(_rows(faces, index, ts, ids), index + 1)
            next_item = index + 1
            result.frames += 1
            result.faces += len(faces)
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
