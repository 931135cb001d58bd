"""Ray test helpers: clusters of separate nodes on this machine (:mod:`moodlens.distributed.nodes`), and a
detector that kills its own worker process once, at a chosen call."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

from moodlens.distributed.cluster import LOCAL, ClusterInfo, ray_cluster
from moodlens.distributed.nodes import NODE_ENV, QUIET_MEMORY_MONITOR, free_port, ray_nodes

__all__ = ["NODE_ENV", "QUIET_MEMORY_MONITOR", "dies_once_detector", "free_port", "local_cluster", "ray_nodes"]


@contextmanager
def local_cluster(num_cpus: int = 2) -> Iterator[ClusterInfo]:
    """A local Ray cluster started in this process (as ``--ray local`` starts one), without Ray's memory monitor
    (the machine's memory may be taken by other programs)."""
    saved = {k: os.environ.get(k) for k in QUIET_MEMORY_MONITOR}
    os.environ.update(QUIET_MEMORY_MONITOR)
    try:
        with ray_cluster(LOCAL, num_cpus=num_cpus) as info:
            yield info
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def dies_once_detector(marker, on_call: int):  # noqa: ANN001, ANN201 - a detector object
    """The real detector, but the process that makes its ``on_call``-th detection kills itself with SIGKILL, once
    across the cluster (the marker file, created exclusively, holds the pid that died). A restarted process
    counts its calls from zero again and carries on past ``on_call``.

    Defined in a function so that Ray ships the class by value to worker processes that cannot import tests."""
    import os
    import signal

    from moodlens.recognition.detect import create_detector

    class DiesOnce:
        name = "dies-once"

        def __init__(self) -> None:
            self.calls, self.real = 0, None

        def __getstate__(self) -> dict:  # the real detector (a native handle) is made again where it runs
            return {"calls": 0, "real": None}

        def _real(self):  # noqa: ANN202
            self.real = self.real or create_detector("auto")
            return self.real

        @property
        def face_range(self):  # noqa: ANN202 - the real detector's, so that detection runs at the same scales
            return getattr(self._real(), "face_range", None)

        def detect(self, bgr):  # noqa: ANN001, ANN202
            self.calls += 1
            if self.calls == on_call:
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:  # already killed once: a restarted process carries on
                    return self._real().detect(bgr)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
            return self._real().detect(bgr)

    return DiesOnce()
