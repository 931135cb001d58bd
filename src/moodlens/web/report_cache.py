"""Reports kept until new data arrives, each built at most once at a time (single flight).

The events page polls every few seconds while a camera ingests, and several people may open the same
event at once: each (slot, version) is built by the first caller only; callers arriving meanwhile
wait for that build and share its result (or its error). A slot keeps only its latest version.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any


class SingleFlightCache:
    """``get(slot, version, build)``: the value built for ``version`` of ``slot``, built once."""

    def __init__(self, max_slots: int = 64) -> None:
        self.max_slots = max_slots
        self._lock = threading.Lock()
        self._done: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._flights: dict[tuple[Hashable, Hashable], Future[Any]] = {}
        #: How many builds were started (a count, for tests and monitoring).
        self.builds = 0

    def get(self, slot: Hashable, version: Hashable, build: Callable[[], Any]) -> Any:
        key = (slot, version)
        with self._lock:
            hit = self._done.get(slot)
            if hit is not None and hit[0] == version:
                self._done.move_to_end(slot)
                return hit[1]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Future()
                self.builds += 1
        if not leader:
            return flight.result()
        try:
            value = build()
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            with self._lock:
                self._done[slot] = (version, value)
                self._done.move_to_end(slot)
                while len(self._done) > self.max_slots:
                    self._done.popitem(last=False)
            flight.set_result(value)
            return value
        finally:
            with self._lock:
                self._flights.pop(key, None)
