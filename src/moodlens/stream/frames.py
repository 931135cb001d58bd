"""What flows from a source into the pipeline: frames, a source's facts, and its online/offline events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import numpy as np

from moodlens.recognition.preprocess import to_gray

#: Frame rate assumed when a source does not report a plausible one (the one frame-rate rule: see :func:`frame_rate`).
FALLBACK_FPS: float = 25.0


class StreamError(RuntimeError):
    """A video, camera or stream URL that cannot be opened or read; the message names it and says why."""


def frame_rate(reported: float | None) -> float:
    """The frame rate of a source: what it reports when that lies in [1, 1000], else :data:`FALLBACK_FPS`."""
    if reported is not None and np.isfinite(reported) and 1.0 <= reported <= 1000.0:
        return float(reported)
    return FALLBACK_FPS


def utcnow() -> datetime:
    """Current time as naive UTC (the event store's convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class SourceInfo:
    """Facts about one source, known once it is open.

    ``name``: what people see (a URL without its password). ``uri``: the source's identity (resolved file path,
    ``camera:N``, or the URL without its password). ``kind``: ``video`` (a file), ``camera`` (a device index or
    a stream URL) or ``push`` (frames handed in by a program, e.g. the web live page). ``fps`` follows
    :func:`frame_rate`; ``frames`` is the count a file announces (``None`` when unknown or live).
    """

    name: str
    uri: str
    kind: str
    fps: float
    live: bool
    frames: int | None = None


@dataclass
class Frame:
    """One decoded frame on its way through the pipeline.

    ``index``: the source's frame number (files: position in the file; live sources: frames read since the
    source first started, dropped ones included). ``time_s``: seconds since the source's time zero (files:
    index / fps; live: since it was opened). ``dropped``: frames this source dropped so far because analysis
    was behind. Stages record what they did on the frame: ``detected`` (the detector ran) and ``ended``
    (ids of tracks that ended with this frame).
    """

    index: int
    time_s: float
    image: np.ndarray
    dropped: int = 0
    detected: bool = False
    ended: list[int] = field(default_factory=list)

    @cached_property
    def gray(self) -> np.ndarray:
        """Grayscale once per frame: optical flow and face crops share it."""
        return to_gray(self.image)


@dataclass(frozen=True)
class SourceEvent:
    """A live source went ``offline`` (it dropped; ``reason`` says how) or came back ``online``, at wall time ``at``."""

    kind: str
    at: datetime
    reason: str = ""
