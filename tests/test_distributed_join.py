"""Joining a Ray cluster that an operator started (``ray start --head`` + ``ray start --address``, two nodes):
``moodlens analyze --ray HOST:PORT`` writes the same JSON as without Ray, using both nodes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from ray_nodes import NODE_ENV, ray_nodes
from recognition_media import photo_archive

pytest.importorskip("ray")
pytestmark = pytest.mark.slow


def moodlens(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", "from moodlens.cli import app; app()", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_analyze_on_a_two_node_cluster_started_with_ray_start(tmp_path):
    photos = photo_archive(tmp_path / "photos")
    plain = moodlens("analyze", str(photos), "--json", str(tmp_path / "plain.json"))
    assert plain.returncode == 0, plain.stderr
    with ray_nodes((1, 1)) as address:
        joined = moodlens("analyze", str(photos), "--ray", address, "--json", str(tmp_path / "ray.json"),
                          env=NODE_ENV)
        # `auto` finds the cluster as Ray does on a machine that ran `ray start` (here through $RAY_ADDRESS)
        auto = moodlens("analyze", str(photos), "--ray", "auto", "--json", str(tmp_path / "auto.json"),
                        env={**NODE_ENV, "RAY_ADDRESS": address})
    for run in (joined, auto):
        assert run.returncode == 0, run.stderr
        assert run.stdout == plain.stdout
    # one single-CPU actor per node: both machines analyse
    assert f"Ray cluster {address}: 2 CPU(s) on 2 node(s), 2 worker(s)" in joined.stderr
    assert "Ray cluster auto: 2 CPU(s) on 2 node(s), 2 worker(s)" in auto.stderr
    assert (tmp_path / "ray.json").read_text() == (tmp_path / "plain.json").read_text()
    assert (tmp_path / "auto.json").read_text() == (tmp_path / "plain.json").read_text()
