"""Connecting to Ray: start a local cluster or join a running one, with one-line errors and never a hang.

Ray is optional (``pip install 'moodlens[ray]'``): it is imported inside :func:`import_ray` only, so the
rest of moodlens never loads it. Addresses, as ``--ray`` takes them:

* ``local`` (or ``None``): start a cluster in this process, sized to this machine's usable cores;
* ``auto``: join the cluster this machine joined with ``ray start`` (or ``$RAY_ADDRESS``);
* ``HOST:PORT``: join a head's GCS port (``ray start --head`` prints it; 6379 by default);
* ``ray://HOST:PORT``: join through Ray Client (the head's client server, 10001 by default; needs
  ``ray[client]``). Ray Data pipelines (photos) cannot run that way; plain tasks and actors can.

Ray's own ``ray.init`` waits for minutes, or for ever, when nothing Ray answers at an address; joining
therefore first opens a TCP connection to the address (fails at once when nothing listens) and then waits
for ``ray.init`` at most ``timeout_s``.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import BinaryIO

#: Start a new cluster on this machine.
LOCAL = "local"
#: Join the cluster ``ray start`` joined on this machine (or ``$RAY_ADDRESS``).
AUTO = "auto"
#: How long joining a cluster may take before it is reported as unreachable.
CONNECT_TIMEOUT_S = 30.0
#: What a user without the extra is told to run.
INSTALL_HINT = "pip install 'moodlens[ray]'"
CLIENT_SCHEME = "ray://"

_HOST_PORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")


class ClusterError(RuntimeError):
    """Ray cannot be used: not installed, a malformed or unreachable address, a cluster without CPUs,
    or a run that failed on the cluster. The message is one line meant for the user."""


@dataclass(frozen=True)
class ClusterInfo:
    """The cluster a run uses: its address as given, its CPUs and nodes, and whether this process started it."""

    address: str
    cpus: int
    nodes: int
    started_here: bool


def import_ray() -> ModuleType:
    """The ``ray`` module with Ray Data, or :class:`ClusterError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data comes with the [data] extra only
    except ImportError as exc:
        raise ClusterError(f"Ray is not installed: {INSTALL_HINT}") from exc
    return ray


def parse_address(address: str | None) -> str:
    """The canonical form of a ``--ray`` address (see the module doc), or :class:`ClusterError`."""
    if address is None or address.strip().lower() in ("", LOCAL):
        return LOCAL
    text = address.strip()
    if text.lower() == AUTO:
        return AUTO
    bare = text[len(CLIENT_SCHEME):] if text.lower().startswith(CLIENT_SCHEME) else text
    match = _HOST_PORT.match(bare)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ClusterError(f"{address!r} is not a Ray address: use local, auto, HOST:PORT or ray://HOST:PORT")
    return CLIENT_SCHEME + bare if bare != text else bare


def host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a canonical ``HOST:PORT`` or ``ray://HOST:PORT`` address; None for local and auto."""
    match = _HOST_PORT.match(address.removeprefix(CLIENT_SCHEME))
    return (match["host"].strip("[]"), int(match["port"])) if match else None


def usable_cpus() -> int:
    """CPU cores this process may run on (what a local cluster offers)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _check_reachable(address: str, timeout_s: float) -> None:
    """Fail at once, with the reason, when nothing accepts a TCP connection at ``address``."""
    target = host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {reason}") from None


@contextmanager
def _native_stderr_held_back() -> Iterator[BinaryIO]:
    """File descriptor 2 into a temporary file for the block (yielded, to read back): Ray's C++ core writes its
    connection retries there directly, past Python's logging."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield held
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _join(ray: ModuleType, address: str, timeout_s: float) -> None:
    """``ray.init(address)`` in a helper thread, given up after ``timeout_s`` (ray.init cannot be interrupted).

    What Ray's core prints meanwhile is held back: a failed join is one line for the user, not Ray's retries;
    after a successful one it is printed as it came."""
    outcome: dict[str, BaseException] = {}

    def connect() -> None:
        try:
            ray.init(address=address, logging_level=logging.ERROR)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=connect, name="moodlens-ray-connect", daemon=True)
    with _native_stderr_held_back() as held:
        thread.start()
        thread.join(timeout_s)
        held.seek(0)
        printed = held.read()
    if thread.is_alive():
        raise ClusterError(f"no answer from a Ray cluster at {address} within {timeout_s:g} s "
                           "(is it a Ray head's address? `ray status` on the head prints it)")
    if "error" in outcome:
        first_line = (str(outcome["error"]).strip().splitlines() or [type(outcome["error"]).__name__])[0]
        raise ClusterError(f"cannot join the Ray cluster at {address}: {first_line}")
    if printed:
        os.write(2, printed)


def _start_local(ray: ModuleType, num_cpus: int | None) -> None:
    # No dashboard: on a small machine its processes cost more than the work; usable cores only, so a
    # 2-core machine runs 2 single-threaded actors and no more.
    ray.init(address=LOCAL, num_cpus=num_cpus or usable_cpus(), include_dashboard=False,
             logging_level=logging.ERROR)


@contextmanager
def ray_cluster(address: str | None = LOCAL, *, num_cpus: int | None = None,
                timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[ClusterInfo]:
    """Connect this process to Ray for the ``with`` block; disconnect afterwards only if it connected here.

    A process already connected (``ray.init`` called before, e.g. by a test or a notebook) keeps its
    connection and ``address`` is not used. ``num_cpus``: what a local cluster offers (default: the usable
    cores). Raises :class:`ClusterError` for every reason Ray cannot be used.
    """
    ray = import_ray()
    canonical = parse_address(address)
    started_here = not ray.is_initialized()
    if started_here:
        if canonical == LOCAL:
            _start_local(ray, num_cpus)
        else:
            _check_reachable(canonical, timeout_s)
            _join(ray, canonical, timeout_s)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            raise ClusterError(f"the Ray cluster at {canonical} has no CPUs to run on; "
                               "join worker machines with `ray start --address HEAD:6379`")
        yield ClusterInfo(canonical, cpus, len([n for n in ray.nodes() if n.get("Alive")]), started_here)
    finally:
        if started_here:
            ray.shutdown()
