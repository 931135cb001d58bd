"""SIGKILL an ingest mid-way: the database stays consistent and the resumed ingest equals an uninterrupted one."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from events_media import Crossing, make_video

from moodlens.events.store import PROB_COLUMNS, EventStore
from moodlens.events.stream_ingest import ingest_video

# Two groups of overlapping crossings with a quiet gap (frames 40..51) between them; 10 fps.
CROSSINGS = [Crossing(s, s + 20, y=20 + 140 * (i % 3)) for i, s in enumerate((0, 10, 20, 52, 62, 72, 82, 92))]
FRAMES = 112
KILL_AFTER = 64  # kill once frames up to here are committed: tracks are open, the last quiet frame is before 52


def moodlens_cmd() -> list[str]:
    script = Path(sys.executable).parent / "moodlens"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from moodlens.cli import app; app()"]


def rows(store: EventStore, event: str) -> list[tuple]:
    df = store.observations(event)
    return sorted(zip(df["frame"], df["track"], df["box_w"], df["box_h"], strict=True))


def test_sigkill_then_resume_matches_uninterrupted(event_db_url, tmp_path):
    video = make_video(tmp_path / "exit.avi", CROSSINGS, frames=FRAMES, fps=10.0, size=(320, 240))
    store = EventStore(event_db_url)
    for name in ("killed", "reference"):
        store.create_event(name)

    reference = ingest_video(store, "reference", video, progress=False)
    assert reference.finished and reference.new_tracks == len(CROSSINGS)

    cmd = [*moodlens_cmd(), "event", "ingest", "killed", "--video", str(video), "--db", event_db_url,
           "--commit-interval-s", "0.1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cursors: set[int] = set()
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            sources = store.sources("killed")
            if sources:
                cursors.add(sources[0].frames_done)
                if KILL_AFTER <= sources[0].frames_done < FRAMES:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, f"ingest ended before it could be killed:\n{proc.stdout.read()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
        proc.stdout.close()
    assert len(cursors - {0}) >= 2, "commits should happen during the run, not only at the end"

    # Consistent after the kill: the cursor and the observations were committed together.
    [src] = store.sources("killed")
    assert not src.finished and KILL_AFTER <= src.frames_done < FRAMES
    killed_rows = rows(store, "killed")
    assert killed_rows and max(r[0] for r in killed_rows) < src.frames_done
    assert killed_rows == [r for r in rows(store, "reference") if r[0] < src.frames_done]
    if event_db_url.startswith("sqlite"):
        with sqlite3.connect(event_db_url.removeprefix("sqlite:///")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # Resume with the very same command.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    resumed = re.search(r"resumed from frame (\d+)", done.stdout)
    assert resumed and int(resumed.group(1)) <= src.frames_done, done.stdout

    assert rows(store, "killed") == rows(store, "reference")
    a, b = store.observations("killed"), store.observations("reference")
    assert np.allclose(a.sort_values(["frame", "track"])[list(PROB_COLUMNS)].to_numpy(),
                       b.sort_values(["frame", "track"])[list(PROB_COLUMNS)].to_numpy(), atol=1e-5)
    summary = {e.name: (e.people, e.faces) for e in store.list_events()}
    assert summary["killed"] == summary["reference"] == (len(CROSSINGS), reference.faces)
    assert store.sources("killed")[0].finished
    store.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc), 0 once it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("event_db_url", ["sqlite"], indirect=True)
def test_ctrl_c_commits_and_resumes(event_db_url, tmp_path):
    """SIGINT (Ctrl-C) and SIGTERM end the ingest cleanly with everything analysed so far committed."""
    # Long enough that the ingest is still running when the signal comes, however fast the machine: a signal
    # that lands while a finished process is exiting kills it (-15) instead of being handled.
    video = make_video(tmp_path / "v.avi", CROSSINGS[:3], frames=3000, fps=10.0, size=(320, 240))
    store = EventStore(event_db_url)
    store.create_event("e")
    cmd = [*moodlens_cmd(), "event", "ingest", "e", "--video", str(video), "--db", event_db_url,
           "--commit-interval-s", "60", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not store.sources("e"):
        time.sleep(0.05)
    # Let it analyse some frames (with a 60 s interval nothing is committed yet): 5 s of its CPU time, not of
    # the wall clock, which a loaded machine may spend before the model is even loaded (start-up takes about
    # 2 s of CPU time; the whole video about 20).
    while time.monotonic() < deadline and cpu_seconds(proc.pid) < 5.0:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped before the end" in out
    [src] = store.sources("e")
    assert src.frames_done > 0  # the final commit on SIGTERM kept the analysed frames
    assert store.data_version("e")[0] > 0
    store.close()
