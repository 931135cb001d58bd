"""A Ray cluster of separate nodes on this machine, started as an operator starts one on several machines
(``ray start --head``, then ``ray start --address HEAD`` per worker): for the fleet check, benchmarks and tests.

Each node is a ``ray start --block`` process in its own process group, stopped by signalling that group only:
``ray stop`` would stop every Ray process on the machine, those of other programs included.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

#: Ray kills its workers when the whole machine is short of memory; on a machine busy with other programs that
#: is their memory, so these clusters leave that to the kernel.
QUIET_MEMORY_MONITOR = {"RAY_memory_monitor_refresh_ms": "0"}
#: ... and shut down in seconds.
NODE_ENV = {**QUIET_MEMORY_MONITOR, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "3"}
STARTED = "Ray runtime started."
#: Worker processes listen on ports of a block of this size, chosen at random per node between these bounds:
#: away from Ray's default range (10002-19999), which other Ray clusters on the machine use, and below Linux's
#: ephemeral ports (32768 on).
WORKER_PORT_BLOCK, WORKER_PORT_RANGE = 400, (20000, 32400)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(args: list[str], log: Path, timeout_s: float, cores: set[int] | None) -> subprocess.Popen:
    ray_cli = Path(sys.executable).parent / "ray"

    def pin() -> None:  # in the child: the node and every process it starts run on these cores only
        if cores:
            os.sched_setaffinity(0, cores)

    with log.open("wb") as out:
        proc = subprocess.Popen([str(ray_cli), "start", "--disable-usage-stats", "--block", *args], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **NODE_ENV}, start_new_session=True,
                                preexec_fn=pin if cores else None)
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
def ray_nodes(node_cpus: Sequence[int] = (1, 1), timeout_s: float = 180.0,
              cores: Sequence[set[int] | None] | None = None) -> Iterator[str]:
    """A head node and one worker node per further entry of ``node_cpus`` (the CPUs each offers; a head with 0
    only coordinates); yields the head's HOST:PORT. ``cores``: per node, the CPU cores its processes may run
    on (``None``: any), so that a node stands for a machine of that many cores."""
    temp = Path(tempfile.mkdtemp(prefix="mlray-"))  # short: Ray's socket paths must fit in 107 bytes
    port = free_port()
    address = f"127.0.0.1:{port}"
    pinned = list(cores) if cores is not None else [None] * len(node_cpus)
    blocks = random.sample(range(*WORKER_PORT_RANGE, WORKER_PORT_BLOCK), len(node_cpus))
    ports = [[f"--min-worker-port={b}", f"--max-worker-port={b + WORKER_PORT_BLOCK - 1}"] for b in blocks]
    nodes: list[subprocess.Popen] = []
    try:
        nodes.append(_start_node(["--head", f"--port={port}", f"--num-cpus={node_cpus[0]}", *ports[0],
                                  "--include-dashboard=false", f"--temp-dir={temp}"], temp / "head.log", timeout_s,
                                 pinned[0]))
        for i, cpus in enumerate(node_cpus[1:]):
            nodes.append(_start_node([f"--address={address}", f"--num-cpus={cpus}", *ports[i + 1]],
                                     temp / f"worker{i}.log", timeout_s, pinned[i + 1]))
        yield address
    finally:
        for node in reversed(nodes):
            _stop_node(node)
        shutil.rmtree(temp, ignore_errors=True)
