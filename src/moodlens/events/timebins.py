"""The period an event report covers and its time bins, chosen for the event.

The period is the event's window when it has one, else the observed span. Bins come from a ladder
(1 min, 5 min, 15 min, 30 min, 1 h, 3 h, 6 h, 12 h, 1 day, then whole days) so that the period needs at
most :data:`MAX_BINS` of them. Observations outside the period are counted and listed, never stretched
over: a period without a set end is at most :data:`OPEN_PERIOD` long (the longest the ladder shows in
daily bins), so a photo whose clock says 9999 lands outside instead of allocating millennia of bins.

Times are int64 microseconds since 1970 (naive UTC), which covers years 1 to 9999.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

US = 1_000_000
MINUTE, HOUR, DAY = 60 * US, 3600 * US, 86400 * US
#: Bin widths tried in order, smallest first.
LADDER: tuple[int, ...] = (MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY)
#: Most bins a report draws.
MAX_BINS = 150
#: Longest period covered when the event window does not fix both ends.
OPEN_PERIOD = MAX_BINS * DAY

_EPOCH = datetime(1970, 1, 1)


def to_us(value: datetime) -> int:
    """A naive UTC datetime as microseconds since 1970."""
    return (value - _EPOCH) // timedelta(microseconds=1)


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def step_label(step_us: int) -> str:
    """``1 minute``, ``15 minutes``, ``6 hours``, ``1 day``, ``3 days``."""
    for unit, size in (("day", DAY), ("hour", HOUR), ("minute", MINUTE)):
        if step_us % size == 0:
            n = step_us // size
            return f"{n} {unit}" + ("s" if n != 1 else "")
    return f"{step_us / US:g} seconds"


def choose_step(start_us: int, end_us: int, max_bins: int = MAX_BINS, closed: bool = False) -> int:
    """The smallest ladder step (else whole days) that covers ``[start, end]`` in at most ``max_bins`` bins."""
    for step in LADDER:
        if _bin_count(start_us, end_us, step, closed) <= max_bins:
            return step
    days = -(-(end_us - start_us) // (max_bins * DAY))
    while _bin_count(start_us, end_us, days * DAY, closed) > max_bins:
        days += 1
    return days * DAY


def _bin_count(start_us: int, end_us: int, step: int, closed: bool = False) -> int:
    """Bins from ``start`` (aligned down to the step) to ``end``; ``closed``: a bin starting at ``end`` counts
    too (the end is an observation's time, not a window's end)."""
    first = start_us - start_us % step
    if closed:
        return (end_us - first) // step + 1
    return max(1, -(-(end_us - first) // step))


@dataclass(frozen=True)
class TimeAxis:
    """``bins`` bins of ``step_us`` from ``first_us`` (aligned to the step), covering the report period."""

    period_start_us: int
    period_end_us: int
    step_us: int
    #: How the period was chosen, in words (printed on the report).
    basis: str
    #: True when the period ends at an observation (its bin is included), False at a window's end.
    closed: bool = False

    @property
    def first_us(self) -> int:
        return self.period_start_us - self.period_start_us % self.step_us

    @property
    def bins(self) -> int:
        return _bin_count(self.period_start_us, self.period_end_us, self.step_us, self.closed)

    @property
    def label(self) -> str:
        return step_label(self.step_us)

    def starts(self) -> list[datetime]:
        return [from_us(self.first_us + i * self.step_us) for i in range(self.bins)]

    def bin_of(self, ts_us: np.ndarray) -> np.ndarray:
        """Bin index of each time inside the period (one at a window's very end joins the last bin)."""
        return np.minimum((ts_us - self.first_us) // self.step_us, self.bins - 1)

    def fraction_of(self, ts_us: np.ndarray) -> np.ndarray:
        """Position of each time in the period, 0 at its start and 1 at its end."""
        span = max(self.period_end_us - self.period_start_us, 1)
        return np.clip((ts_us - self.period_start_us) / span, 0.0, 1.0)

    def to_dict(self) -> dict[str, object]:
        return {"start": from_us(self.period_start_us).isoformat(), "end": from_us(self.period_end_us).isoformat(),
                "basis": self.basis, "bin": self.label, "bin_seconds": self.step_us // US, "bins": self.bins}


def report_period(ts_us: np.ndarray, starts_at: datetime | None, ends_at: datetime | None,
                  bin_us: int | None = None) -> tuple[TimeAxis | None, np.ndarray]:
    """The axis of the report period and a mask of the observations inside it.

    ``ts_us``: observation times (any order). ``bin_us``: a fixed bin width instead of the ladder's
    choice (rejected when it needs more than :data:`MAX_BINS` bins). ``None`` axis: nothing to show.
    """
    lo = to_us(starts_at) if starts_at is not None else None
    hi = to_us(ends_at) if ends_at is not None else None
    inside = np.ones(len(ts_us), bool)
    if lo is not None:
        inside &= ts_us >= lo
    if hi is not None:
        inside &= ts_us <= hi
    period = _period(ts_us[inside], lo, hi)
    if period is None:
        return None, inside
    start, end, basis = period
    inside &= (ts_us >= start) & (ts_us <= end)  # an open period may end before the last observation
    closed = hi is None  # the period ends at the last observation, not at a window's end
    step = bin_us if bin_us is not None else choose_step(start, end, closed=closed)
    axis = TimeAxis(start, end, step, basis, closed)
    if axis.bins > MAX_BINS:
        raise ValueError(f"bins of {step_label(step)} give {axis.bins} bins over this period; at most {MAX_BINS}: "
                         f"use wider bins, or leave the width out to have it chosen")
    return axis, inside


def _period(seen: np.ndarray, lo: int | None, hi: int | None) -> tuple[int, int, str] | None:
    """``(start, end, basis)`` of the report period from the window's ends (``None``: not set) and the times
    ``seen`` inside them: the window when both ends are set, else an open period of at most
    :data:`OPEN_PERIOD` reaching to the observations; ``None`` when there is neither window nor observation."""
    if lo is not None and hi is not None:
        return lo, hi, "the event window"
    if not len(seen):
        edge = lo if lo is not None else hi
        return None if edge is None else (edge, edge, "the event window (no observations inside it yet)")
    if lo is not None:
        return lo, int(min(seen.max(), lo + OPEN_PERIOD)), "the event start to the last observation"
    if hi is not None:
        return int(max(seen.min(), hi - OPEN_PERIOD)), hi, "the first observation to the event end"
    start, end = _busiest_period(np.sort(seen))
    if (start, end) == (int(seen.min()), int(seen.max())):
        return start, end, "the observed span"
    return start, end, f"the busiest {OPEN_PERIOD // DAY} days of observations (no event window set)"


def _busiest_period(ts: np.ndarray) -> tuple[int, int]:
    """``[start, end]`` of the observations in the :data:`OPEN_PERIOD` that holds the most of them."""
    if int(ts[-1] - ts[0]) <= OPEN_PERIOD:
        return int(ts[0]), int(ts[-1])
    ends = np.searchsorted(ts, ts + OPEN_PERIOD, side="right")
    best = int(np.argmax(ends - np.arange(len(ts))))  # first of the busiest on ties: earliest
    return int(ts[best]), int(ts[ends[best] - 1])
