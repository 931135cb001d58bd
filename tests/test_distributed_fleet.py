"""The Ray deployment check (``scripts/ray_local_demo.sh``): PostgreSQL, a head and two worker nodes started with
``ray start``, four sources ingested through the cluster and in one process, the same totals; and a mismatch is
reported as one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ray_nodes import NODE_ENV

from moodlens.distributed.fleet_check import SAMPLE_PEOPLE, FleetCheck, SourceTotals, report

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.postgres
def test_the_deployment_check_passes_on_a_head_and_two_worker_nodes():
    pytest.importorskip("ray")
    proc = subprocess.run([sys.executable, "-m", "moodlens.distributed.fleet_check"],
                          capture_output=True, text=True, timeout=900, env={**os.environ, **NODE_ENV})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Ray cluster 127.0.0.1:" in proc.stderr and "2 CPU(s) on 3 node(s), 4 source(s), 0.5 CPU each" in proc.stderr
    lines = proc.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("source ")) + 1:]
    rows = {line.split()[0]: line.split() for line in table}
    assert set(rows) == {*SAMPLE_PEOPLE, "total", "OK:"}
    people = {name: rows[name][-3:] for name in SAMPLE_PEOPLE}  # "Ray / one process"
    assert people == {name: [str(len(c)), "/", str(len(c))] for name, c in SAMPLE_PEOPLE.items()}
    assert int(rows["total"][1]) > 100 and rows["total"][1] == rows["total"][3]


def test_a_mismatch_fails_the_check():
    same = {name: SourceTotals(30, len(c)) for name, c in SAMPLE_PEOPLE.items()}
    assert FleetCheck(same, dict(same), True, 1.0).passed
    assert not FleetCheck(same, {**same, "camera": SourceTotals(29, 3)}, True, 1.0).passed
    assert not FleetCheck(same, dict(same), False, 1.0).passed  # same counts, other observations
    assert not FleetCheck({}, {}, True, 1.0).passed  # nothing ingested is no success
    assert "29 / 30" in FleetCheck({**same, "camera": SourceTotals(29, 3)}, same, False, 1.0).table()


def test_the_exit_code_is_1_on_a_difference(capsys):
    same = {name: SourceTotals(30, len(c)) for name, c in SAMPLE_PEOPLE.items()}
    assert report(FleetCheck(same, dict(same), True, 1.0)) == 0
    assert "OK: every source has the same observations" in capsys.readouterr().out
    fewer_people = {**same, "camera": SourceTotals(30, 2)}
    assert report(FleetCheck(same, fewer_people, True, 1.0)) == 1
    out, err = capsys.readouterr()
    assert "MISMATCH" in err and "OK" not in out
    assert [line.split()[-3:] for line in out.splitlines() if line.startswith("total")] == [["8", "/", "7"]]


def test_the_script_is_a_shell_entry_point_for_the_check():
    script = ROOT / "scripts" / "ray_local_demo.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert "-m moodlens.distributed.fleet_check" in script.read_text()
