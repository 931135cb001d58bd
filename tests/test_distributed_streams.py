"""Videos and live cameras ingested on a local Ray cluster started by this module, one actor per source, into a
real PostgreSQL: the same people, faces and observations per source as a single-process ingest, also after an
actor's process is SIGKILLed mid-ingest; Ctrl-C commits every source; stores the actors cannot share are refused."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from events_media import Crossing, make_video
from ray_nodes import QUIET_MEMORY_MONITOR, dies_once_detector, free_port
from stream_media import MjpegServer, video_jpegs
from typer.testing import CliRunner

pytest.importorskip("ray")

from moodlens.cli import app  # noqa: E402
from moodlens.distributed.cluster import LOCAL, ClusterError  # noqa: E402
from moodlens.distributed.streams import analysed_frames, ingest_streams_on_ray, source_share  # noqa: E402
from moodlens.events.pgtemp import create_database  # noqa: E402
from moodlens.events.store import EventStore  # noqa: E402
from moodlens.events.stream_ingest import ingest_streams  # noqa: E402
from moodlens.recognition.analyzer import Analyzer  # noqa: E402
from moodlens.settings import VIDEO_DEFAULTS  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
runner = CliRunner()

FPS, SIZE, FRAMES = 10.0, (320, 240), 36
PEOPLE = {
    "one.avi": [Crossing(2, 30)],
    "two.avi": [Crossing(0, 30, y=20), Crossing(4, 34, y=310, left_to_right=False, mirror=True)],
    "camera": [Crossing(0, 28, y=20), Crossing(3, 33, y=170, left_to_right=False, mirror=True), Crossing(8, 36, y=320)],
}
# Two groups of overlapping crossings with a quiet gap (frames 40..51) between them: killed in the second group,
# the video goes back to a frame before 52 and replays from there.
LONG = [Crossing(s, s + 20, y=20 + 140 * (i % 3)) for i, s in enumerate((0, 10, 20, 52, 62, 72, 82, 92))]
LONG_FRAMES = 112
#: The detector runs on every 3rd frame: its 32nd call analyses frame 93, with tracks of the second group open;
#: the store then holds commits past the quiet gap (the sink runs at most about 20 frames behind detection).
KILL_AT_CALL = 32


@pytest.fixture(scope="module")
def db(postgres_server) -> str:
    return create_database(postgres_server, f"moodlens_ray_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    out = {name: make_video(folder / (name if name.endswith(".avi") else f"{name}.avi"), people, frames=FRAMES,
                            fps=FPS, size=SIZE) for name, people in PEOPLE.items()}
    out["long.avi"] = make_video(folder / "long.avi", LONG, frames=LONG_FRAMES, fps=FPS, size=SIZE)
    return out


def ingest_event(db: str, name: str) -> EventStore:
    store = EventStore(db)
    store.create_event(name)
    return store


def per_source(db: str, event: str) -> dict[str, list[tuple]]:
    """Each source's observations (frame, track, box size) in order; the camera's name without its port."""
    with EventStore(db) as store:
        df = store.observations(event)
    return {("camera" if kind == "camera" else label): sorted(zip(part["frame"], part["track"], part["box_w"],
                                                                    part["box_h"], strict=True))
            for (kind, label), part in df.groupby(["kind", "source"])}


def totals(db: str, event: str) -> tuple[int, int]:
    with EventStore(db) as store:
        [summary] = [e for e in store.list_events() if e.name == event]
    return summary.people, summary.faces


@pytest.fixture(scope="module")
def single(db, media) -> str:
    """The reference: every source ingested in this process, as `moodlens event ingest` without --ray does."""
    with ingest_event(db, "single") as store, MjpegServer(video_jpegs(media["camera"])) as camera:
        ingest_streams(store, "single", [media["one.avi"], media["two.avi"], media["long.avi"]], [camera.url],
                       Analyzer(VIDEO_DEFAULTS), progress=False, max_frames=FRAMES, drop_late_frames=False)
    return "single"


def test_ray_ingest_of_four_sources_equals_a_single_process_ingest(ray_local, db, media, single):
    ingest_event(db, "ray").close()
    with MjpegServer(video_jpegs(media["camera"])) as camera:
        result = runner.invoke(app, ["event", "ingest", "ray", "--video", str(media["one.avi"]), "--video",
                                     str(media["two.avi"]), "--video", str(media["long.avi"]), "--camera", camera.url,
                                     "--max-frames", str(FRAMES), "--no-drop-late-frames", "--db", db, "--ray", LOCAL])
    assert result.exit_code == 0, result.output
    assert "Ray cluster local: 2 CPU(s) on 1 node(s), 4 source(s), 0.5 CPU each" in result.output
    assert "long.avi" in result.output and "frame/s" in result.output  # a progress bar per source
    lines = [line for line in result.stdout.splitlines() if "analysed" in line]
    assert [line.split(":")[0] for line in lines[:3]] == ["one.avi", "two.avi", "long.avi"]
    assert "long.avi: 112 frames analysed" in lines[2] and f"{FRAMES} frames analysed" in lines[3]
    expected = per_source(db, single)
    assert per_source(db, "ray") == expected
    assert {name: len({r[1] for r in rows}) for name, rows in expected.items()} == {
        "one.avi": 1, "two.avi": 2, "long.avi": len(LONG), "camera": 3}
    assert totals(db, "ray") == totals(db, single)


def test_actor_killed_mid_video_resumes_to_the_same_observations(ray_local, db, media, single, tmp_path):
    marker = tmp_path / "killed.pid"
    ingest_event(db, "killed").close()
    analysis = VIDEO_DEFAULTS.with_(detector=dies_once_detector(marker, KILL_AT_CALL))
    results = ingest_streams_on_ray(db, "killed", [media["long.avi"], media["one.avi"]], analysis=analysis,
                                    commit_interval_s=0.1)
    killed = int(marker.read_text())  # only long.avi reaches the 32nd detection (one.avi has 12)
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)  # the actor's process is really gone
    long_run, one_run = results
    assert long_run.finished and one_run.finished and one_run.resumed_from is None
    # The restarted actor went back to where the first track alive at the kill began (the second group, from
    # frame 52 on): the store held commits past it.
    assert long_run.resumed_from is not None and 40 <= long_run.resumed_from <= 60
    assert long_run.frames == LONG_FRAMES - long_run.resumed_from
    got, expected = per_source(db, "killed"), per_source(db, single)
    assert got == {name: expected[name] for name in ("long.avi", "one.avi")}
    people, faces = totals(db, "killed")
    assert people == len(LONG) + 1 and faces == sum(len(expected[name]) for name in ("long.avi", "one.avi"))


def test_actor_killed_mid_camera_loses_the_gap_and_repeats_nothing(ray_local, db, media, tmp_path):
    """A live camera cannot be replayed: frames read after the last commit and frames shown while the actor
    restarted are not recorded; the restarted actor continues the numbering and reads the rest of max_frames."""
    marker = tmp_path / "killed.pid"
    ingest_event(db, "camera-killed").close()
    analysis = VIDEO_DEFAULTS.with_(detector=dies_once_detector(marker, on_call=10))  # frame 27
    frames = 48
    with MjpegServer(video_jpegs(media["camera"]) * 8, fps=20.0) as camera:  # paced: frames left after the restart
        [result] = ingest_streams_on_ray(db, "camera-killed", cameras=[camera.url], analysis=analysis,
                                         max_frames=frames, drop_late_frames=False, commit_interval_s=0.1)
        assert camera.connections == 2  # the restarted actor opened the stream again
        served = camera.sent
    assert marker.exists()
    with EventStore(db) as store:
        [src] = store.sources("camera-killed")
        df = store.observations("camera-killed").sort_values(["frame", "track"])
    resumed = result.resumed_from
    assert resumed is not None and 0 < resumed <= 27  # committed before the kill, kept
    assert result.frames == frames - resumed and src.frames_done == frames  # the rest of max_frames
    assert served > frames  # frames were sent that no commit holds: the gap
    assert not df.duplicated(["frame", "track"]).any() and df["frame"].max() < frames
    assert df["ts"].is_monotonic_increasing  # later frames, later times: nothing replayed


def test_ctrl_c_stops_every_source_and_each_commits(db, media, tmp_path):
    """SIGINT to the command's process group, as a terminal sends it: every actor commits its last batch (the
    commit interval is longer than the run, so everything stored comes from that last commit)."""
    ingest_event(db, "stopped").close()
    code = "from moodlens.cli import app; app()"
    with MjpegServer(video_jpegs(media["camera"]) * 20, fps=FPS) as cam1, \
            MjpegServer(video_jpegs(media["one.avi"]) * 20, fps=FPS) as cam2:
        proc = subprocess.Popen([sys.executable, "-c", code, "event", "ingest", "stopped", "--camera", cam1.url,
                                 "--camera", cam2.url, "--db", db, "--ray", LOCAL, "--commit-interval-s", "600"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                env={**os.environ, **QUIET_MEMORY_MONITOR})
        try:
            deadline = time.monotonic() + 240
            while min(cam1.sent, cam2.sent) < 30 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert proc.poll() is None, proc.communicate()
            os.killpg(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    lines = [line for line in out.splitlines() if "frames analysed" in line]
    assert len(lines) == 2 and all("stopped before the end" in line for line in lines), out
    with EventStore(db) as store:
        sources = store.sources("stopped")
    analysed = sorted(int(line.split(": ")[1].split(" ")[0]) for line in lines)
    assert sorted(s.frames_done for s in sources) == analysed and min(analysed) >= 20


def one_error_line(*args: str, new_process: bool = False) -> str:
    """``moodlens ARGS``'s output, which must be one error line and exit code 1. ``new_process``: run it in a fresh
    interpreter, as a user does (this one may be connected to the module's Ray cluster, which it would use)."""
    if new_process:
        proc = subprocess.run([sys.executable, "-c", "from moodlens.cli import app; app()", *args],
                              capture_output=True, text=True, timeout=120)
        code, output = proc.returncode, proc.stdout + proc.stderr
    else:
        result = runner.invoke(app, list(args))
        code, output = result.exit_code, result.output
    assert code == 1, output
    assert "Traceback" not in output and output.count("error:") == 1, output
    return output


def test_sqlite_needs_a_local_cluster(media, tmp_path):
    """Checked before any cluster is joined: no Ray cluster listens at this address."""
    sqlite = f"sqlite:///{tmp_path / 'events.db'}"
    ingest_event(sqlite, "gala").close()
    out = one_error_line("event", "ingest", "gala", "--video", str(media["one.avi"]), "--db", sqlite,
                         "--ray", "10.0.0.5:6379")
    assert "a SQLite file is on one machine; the Ray cluster at 10.0.0.5:6379 needs a PostgreSQL store" in out
    out = one_error_line("event", "ingest", "gala", "--video", str(media["one.avi"]), "--db", "sqlite://",
                         "--ray", LOCAL)
    assert "an in-memory SQLite database cannot be shared by Ray actors" in out


def test_sqlite_with_a_local_cluster_equals_a_single_process_ingest(ray_local, media, tmp_path):
    sqlite = f"sqlite:///{tmp_path / 'events.db'}"
    with ingest_event(sqlite, "single") as store:
        store.create_event("ray")
        ingest_streams(store, "single", [media["one.avi"], media["two.avi"]], progress=False)
    ingest_streams_on_ray(sqlite, "ray", [media["one.avi"], media["two.avi"]])
    assert per_source(sqlite, "ray") == per_source(sqlite, "single")


def test_bad_ray_addresses_are_one_line_errors(db, media):
    """Checked before any source is opened; nothing listens at the free port."""
    ingest_event(db, "address").close()
    ingest = ("event", "ingest", "address", "--video", str(media["one.avi"]), "--db", db, "--ray")
    out = one_error_line(*ingest, "head:port")
    assert "'head:port' is not a Ray address: use local, auto, HOST:PORT or ray://HOST:PORT" in out
    port = free_port()
    t = time.monotonic()
    out = one_error_line(*ingest, f"127.0.0.1:{port}", new_process=True)
    assert f"error: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused" in out
    assert time.monotonic() - t < 60  # an interpreter start, not Ray's minutes of retries


def test_bad_sources_are_one_line_errors(ray_local, db, media, tmp_path):
    ingest_event(db, "bad").close()
    out = one_error_line("event", "ingest", "bad", "--camera", "0", "--db", db, "--ray", "10.0.0.5:6379")
    assert "on a Ray cluster give cameras as stream URLs" in out
    out = one_error_line("event", "ingest", "bad", "--video", str(media["one.avi"]), "--video",
                         str(media["one.avi"]), "--db", db, "--ray", LOCAL)
    assert "one.avi is given twice" in out
    out = one_error_line("event", "ingest", "missing", "--video", str(media["one.avi"]), "--db", db, "--ray", LOCAL)
    assert "no event named 'missing'" in out
    # opened by the actor, reported with the source's own message; the other source is stopped
    missing = tmp_path / "nope.avi"
    with pytest.raises(ClusterError, match=rf"^{re.escape(str(missing))}: video file not found"
                                           "(; the other sources stopped and committed what they analysed)?$"):
        ingest_streams_on_ray(db, "bad", [media["one.avi"], missing])


@pytest.mark.parametrize("source", ["video", "camera"])
def test_a_source_that_cannot_be_opened_is_the_same_error_line_as_without_ray(ray_local, db, tmp_path, source):
    """A missing video file, a camera URL where nothing listens: the message of the single-process ingest."""
    ingest_event(db, f"unopened-{source}").close()
    given = str(tmp_path / "nope.avi") if source == "video" else f"http://127.0.0.1:{free_port()}/stream.mjpg"
    ingest = ("event", "ingest", f"unopened-{source}", f"--{source}", given, "--open-timeout-s", "1", "--db", db)
    error = [line for line in one_error_line(*ingest).splitlines() if line.startswith("error:")]
    assert [line for line in one_error_line(*ingest, "--ray", LOCAL).splitlines() if line.startswith("error:")] == error
    assert len(error) == 1 and given in error[0]
    with EventStore(db) as store:
        assert store.data_version(f"unopened-{source}") == (0, 0)


def test_source_share_fits_every_source_on_the_nodes():
    assert source_share([2.0], 1) == 1.0
    assert source_share([2.0], 4) == 0.5
    assert source_share([0.0, 1.0, 1.0], 4) == 0.5  # a head that only coordinates
    assert source_share([1.0, 1.0], 3) == 0.5  # 2/3 would fit one per node
    assert source_share([2.0], 3) == 0.6666
    assert source_share([4.0, 1.0], 2) == 1.0


def test_analysed_frames_counts_the_live_sources_schedule():
    assert analysed_frames(0, 10, 1) == 10 and analysed_frames(5, 10, 1) == 5
    assert analysed_frames(0, 10, 3) == 4  # 0, 3, 6, 9
    assert analysed_frames(4, 10, 3) == 2  # 6, 9
    assert analysed_frames(7, 7, 3) == 0
