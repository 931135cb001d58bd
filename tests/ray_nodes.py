"""A Ray cluster of separate nodes on this machine, started as an operator would (``ray start --head``, then
``ray start --address``), for tests of joining a cluster by address.

Each node is a ``ray start --block`` process in its own process group, stopped by signalling that group only:
``ray stop`` would stop every Ray process on the machine, those of other programs included.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

#: Ray kills its workers when the whole machine is short of memory; on a machine busy with other programs
#: that is their memory, so test clusters leave that to the kernel.
QUIET_MEMORY_MONITOR = {"RAY_memory_monitor_refresh_ms": "0"}
#: ... and shut down in seconds.
NODE_ENV = {**QUIET_MEMORY_MONITOR, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "3"}
STARTED = "Ray runtime started."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(args: list[str], log: Path, timeout_s: float) -> subprocess.Popen:
    ray_cli = Path(sys.executable).parent / "ray"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(ray_cli), "start", "--disable-usage-stats", "--block", *args], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **NODE_ENV}, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while STARTED not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop_node(proc)
            raise RuntimeError(f"ray start {' '.join(args)} did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.5)
    return proc


def _stop_node(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        with suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of that node is left


@contextmanager
def ray_nodes(node_cpus: tuple[int, ...] = (1, 1), timeout_s: float = 180.0) -> Iterator[str]:
    """A head node and one worker node per further entry of ``node_cpus``; yields the head's HOST:PORT."""
    temp = Path(tempfile.mkdtemp(prefix="mlray-"))  # short: Ray's socket paths must fit in 107 bytes
    port = free_port()
    address = f"127.0.0.1:{port}"
    nodes: list[subprocess.Popen] = []
    try:
        nodes.append(_start_node(["--head", f"--port={port}", f"--num-cpus={node_cpus[0]}",
                                  "--include-dashboard=false", f"--temp-dir={temp}"], temp / "head.log", timeout_s))
        for i, cpus in enumerate(node_cpus[1:]):
            nodes.append(_start_node([f"--address={address}", f"--num-cpus={cpus}"], temp / f"worker{i}.log",
                                     timeout_s))
        yield address
    finally:
        for node in reversed(nodes):
            _stop_node(node)
        shutil.rmtree(temp, ignore_errors=True)
