"""``run_streams``: sources -> analysis -> sinks for one or several streams at once, on both cores.

Per stream, one thread decodes (the source) and one runs the stages before classification (detector on
its schedule, optical flow, tracker); one shared thread classifies the faces of all streams in batches and
runs the stages after it (smoothing, summary) and the sinks, each stream's frames in order. OpenCV and
ONNX Runtime release the GIL, so decoding, detection and classification overlap.

Hand-over queues are bounded. A live source whose frames wait while analysis is behind drops the oldest
waiting frame and counts it (``Frame.dropped``, ``StreamSummary.frames_dropped``); a file waits instead.
``stop`` (or Ctrl-C in the calling thread) ends every stream cleanly: what was analysed reaches the sinks
and each sink's ``close`` runs, so the event store commits its last batch.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moodlens.recognition.faces import Faces
from moodlens.settings import STREAM_DEFAULTS, StreamSettings
from moodlens.stream.frames import Frame, SourceEvent
from moodlens.stream.pipeline import Pipeline
from moodlens.stream.sinks import Sink
from moodlens.stream.sources import LIVE_QUEUE, Source
from moodlens.stream.stages import classify_frames
from moodlens.stream.summary import StreamSummary

if TYPE_CHECKING:
    from moodlens.recognition.analyzer import Analyzer

#: Frames of a file that may wait between two threads (a file never drops frames).
FILE_QUEUE = 8
#: Faces classified together at most (ONNX Runtime's throughput is near its best from here on).
BATCH_FACES = 64
#: Frames whose faces are classified together at most.
BATCH_FRAMES = 32

_END = object()


class _Handover:
    """A bounded queue between two threads. ``drop``: when full, the oldest waiting frame is dropped (counted
    in :attr:`dropped`); otherwise ``put`` waits. Both ends give up when ``halt`` is set (an error elsewhere)."""

    def __init__(self, capacity: int, drop: bool, halt: threading.Event) -> None:
        self.capacity, self.drop, self.halt = capacity, drop, halt
        self.dropped = 0
        self._items: deque[Any] = deque()
        self._cv = threading.Condition()

    def _drop_oldest_frame(self) -> bool:
        for i, item in enumerate(self._items):
            if isinstance(item, Frame):
                del self._items[i]
                self.dropped += 1
                return True
        return False

    def put(self, item: Any) -> bool:
        """Hand ``item`` over; ``False`` when halted."""
        with self._cv:
            while len(self._items) >= self.capacity:
                if self.drop and isinstance(item, Frame) and self._drop_oldest_frame():
                    break
                if self.halt.is_set():
                    return False
                self._cv.wait(0.1)
            if isinstance(item, Frame):
                item.dropped = self.dropped
            self._items.append(item)
            self._cv.notify_all()
        return True

    def get(self, block: bool = True) -> Any:
        """The oldest item; ``None`` when halted, or at once when empty and not ``block``."""
        with self._cv:
            while not self._items:
                if not block or self.halt.is_set():
                    return None
                self._cv.wait(0.1)
            item = self._items.popleft()
            self._cv.notify_all()
            return item


@dataclass
class Stream:
    """One source with its sinks. ``max_frames``: stop after reading this many frames (``None``: to the end,
    or until stopped). ``pipeline``: the analysis state (built from ``settings`` and the source's frame rate
    when not given)."""

    source: Source
    sinks: Sequence[Sink] = ()
    settings: StreamSettings = STREAM_DEFAULTS
    max_frames: int | None = None
    pipeline: Pipeline | None = None
    _inbox: _Handover | None = field(default=None, init=False, repr=False)


class _Engine:
    def __init__(self, streams: Sequence[Stream], analyzer: Analyzer, stop: threading.Event) -> None:
        self.streams, self.analyzer, self.stop = list(streams), analyzer, stop
        #: Set when the classify-and-sinks thread has closed every sink. Waited on instead of
        #: ``Thread.join``: a join that Ctrl-C interrupts can leave ``is_alive()`` False while the thread still
        #: runs (CPython 3.11), and the process would end before the sinks committed.
        self.closed = threading.Event()
        #: Per stream, whether its next analysed frame is classified mirrored (``flip="alternate"``).
        self._mirrored = [False] * len(self.streams)
        self.halt = threading.Event()
        self.errors: list[BaseException] = []
        for s in self.streams:
            if s.pipeline is None:
                s.pipeline = Pipeline(analyzer, s.settings, fps=s.source.info.fps, name=s.source.info.name)
            live_drop = s.source.info.live and s.settings.drop_late_frames
            s._inbox = _Handover(LIVE_QUEUE if live_drop else FILE_QUEUE, live_drop, self.halt)
        self.middle = _Handover(FILE_QUEUE * len(self.streams), False, self.halt)

    def fail(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.halt.set()
        self.stop.set()

    def read(self, s: Stream) -> None:
        frames = s.source.frames(self.stop)
        n = 0
        try:
            for item in frames:
                if isinstance(item, Frame):
                    n += 1
                if not s._inbox.put(item) or (s.max_frames is not None and n >= s.max_frames):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            self.fail(exc)
        finally:
            frames.close()
            s._inbox.put(_END)

    def locate(self, k: int, s: Stream) -> None:
        try:
            while (item := s._inbox.get()) is not None:
                faces = s.pipeline.locate(item) if isinstance(item, Frame) else None
                if not self.middle.put((k, item, faces)) or item is _END:
                    return
        except BaseException as exc:  # noqa: BLE001
            self.fail(exc)

    def _batch(self) -> list[tuple[int, Any, Faces | None]] | None:
        first = self.middle.get()
        if first is None:
            return None
        batch, faces = [first], len(first[2]) if first[2] is not None else 0
        while faces < BATCH_FACES and len(batch) < BATCH_FRAMES:
            item = self.middle.get(block=False)
            if item is None:
                break
            batch.append(item)
            faces += len(item[2]) if item[2] is not None else 0
        return batch

    def finish(self) -> None:
        """Classify in shared batches, then smooth, summarise and hand each frame to its stream's sinks."""
        open_streams = set(range(len(self.streams)))
        try:
            while open_streams and (batch := self._batch()) is not None:
                for (k, item, located), classified in zip(batch, self._classify(batch), strict=True):
                    if item is _END:
                        open_streams.discard(k)
                        self.close(self.streams[k])
                    else:
                        self._deliver(self.streams[k], item, located if classified is None else classified)
        except BaseException as exc:  # noqa: BLE001
            self.fail(exc)
        finally:
            try:
                for k in open_streams:  # after an error: commit and close what was analysed
                    self.close(self.streams[k])
            finally:
                self.closed.set()

    def _classify(self, batch: list[tuple[int, Any, Faces | None]]) -> list[Faces | None]:
        """The classified faces of each frame of ``batch`` that has any (``None`` for the other items), in one
        call; each stream's frames alternate between plain and mirrored (used by ``flip="alternate"``)."""
        mirror = [self._next_mirrored(k) if isinstance(item, Frame) else False for k, item, _ in batch]
        todo = [i for i, (_, item, faces) in enumerate(batch) if isinstance(item, Frame) and len(faces)]
        if not todo:
            return [None] * len(batch)
        classified = classify_frames(self.analyzer, [batch[i][1:] for i in todo], [mirror[i] for i in todo])
        done = dict(zip(todo, classified, strict=True))
        return [done.get(i) for i in range(len(batch))]

    def _next_mirrored(self, k: int) -> bool:
        """Whether stream ``k``'s next frame is classified mirrored; flips it for the frame after."""
        mirrored = self._mirrored[k]
        self._mirrored[k] = not mirrored
        return mirrored

    def _deliver(self, s: Stream, item: Frame | SourceEvent, faces: Faces | None) -> None:
        """A frame to the pipeline's last stages (smoothing, summary) and to the sinks; a source event (went
        offline, came back) to the summary and the sinks."""
        if isinstance(item, Frame):
            out = s.pipeline.finish(item, faces)
            for sink in s.sinks:
                sink.write(item, out)
        else:
            s.pipeline.summary.add_event(item)
            for sink in s.sinks:
                sink.status(item)

    def close(self, s: Stream) -> StreamSummary:
        summary = s.pipeline.close()
        summary.completed = bool(s.source.completed) and not self.halt.is_set()
        summary.ended_early = s.source.ended_early
        summary.frames_dropped = max(summary.frames_dropped, s._inbox.dropped)
        for sink in s.sinks:
            try:
                sink.close(summary)
            except BaseException as exc:  # noqa: BLE001 - close the other sinks too
                self.fail(exc)
        return summary

    def run(self) -> list[StreamSummary]:
        workers = [threading.Thread(target=self.read, args=(s,), daemon=True, name=f"read-{k}")
                   for k, s in enumerate(self.streams)]
        workers += [threading.Thread(target=self.locate, args=(k, s), daemon=True, name=f"locate-{k}")
                    for k, s in enumerate(self.streams)]
        finisher = threading.Thread(target=self.finish, daemon=True, name="classify-sinks")
        for t in [*workers, finisher]:
            t.start()
        try:
            while not self.closed.wait(0.2):
                pass
        except KeyboardInterrupt:  # Ctrl-C (or SIGTERM mapped to it): end cleanly, sinks commit
            self.stop.set()
            while not self.closed.wait(0.2):
                pass
        self.stop.set()
        for t in workers:
            t.join(5.0)
        if self.errors:
            raise self.errors[0]
        return [s.pipeline.summary for s in self.streams]


def run_streams(streams: Sequence[Stream], analyzer: Analyzer, stop: threading.Event | None = None,
                ) -> list[StreamSummary]:
    """Analyse several streams at once into their sinks; returns each stream's summary, in order.

    Blocks until every stream ended (files at their end, live sources when ``stop`` is set, after
    ``max_frames``, or on Ctrl-C). An error in any stream stops all of them, closes every sink (so
    stores commit what was analysed) and is raised here.
    """
    return _Engine(streams, analyzer, stop or threading.Event()).run()


def run_stream(source: Source, analyzer: Analyzer, sinks: Sequence[Sink] = (),
               settings: StreamSettings = STREAM_DEFAULTS, stop: threading.Event | None = None,
               max_frames: int | None = None) -> StreamSummary:
    """:func:`run_streams` for one source."""
    return run_streams([Stream(source, sinks, settings, max_frames)], analyzer, stop)[0]
