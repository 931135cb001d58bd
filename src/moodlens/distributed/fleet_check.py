"""The Ray deployment checked end to end on one machine (``bash scripts/ray_local_demo.sh``).

A throwaway PostgreSQL server (:mod:`moodlens.events.pgtemp`), a Ray cluster of separate nodes started as on
several machines (a head that only coordinates and ``workers`` worker nodes of one CPU each,
:mod:`moodlens.distributed.nodes`), and four sources made here from the packaged astronaut photo: three video
files of people crossing the frame and one live MJPEG-over-HTTP camera. The sources are ingested into one event
through the cluster (one actor per source) and into another in this process, as without ``--ray``; the check
passes when every source has the same observations, people and faces both ways.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from moodlens.events.store import EventStore
from moodlens.samples import Crossing, crossing_video

FPS, SIZE, FRAMES = 10.0, (320, 240), 40
#: The people crossing each sample source (rows are given for a 480-pixel-high frame).
SAMPLE_PEOPLE: dict[str, list[Crossing]] = {
    "door-a.avi": [Crossing(2, 30)],
    "door-b.avi": [Crossing(0, 30, y=20), Crossing(6, 36, y=310, left_to_right=False, mirror=True)],
    "hall.avi": [Crossing(0, 16, y=20), Crossing(20, 38, y=170, mirror=True)],
    "camera": [Crossing(0, 28, y=20), Crossing(3, 33, y=170, left_to_right=False, mirror=True), Crossing(8, 38, y=320)],
}
CAMERA = "camera"


def source_observations(store: EventStore, event: str, rename: Mapping[str, str] | None = None,
                        ) -> dict[str, list[tuple[int, int, int, int]]]:
    """Each source's observations as sorted (frame, track, box width, box height), by source label (``rename``:
    other names for some labels, e.g. a camera served at a different port each run)."""
    df = store.observations(event)
    rename = rename or {}
    return {rename.get(label, label): sorted(zip(*(part[c].astype(int) for c in ("frame", "track", "box_w", "box_h")),
                                                 strict=True))
            for label, part in df.groupby("source")}


@dataclass(frozen=True)
class SourceTotals:
    observations: int
    people: int

    @staticmethod
    def of(rows: list[tuple[int, int, int, int]]) -> SourceTotals:
        return SourceTotals(len(rows), len({r[1] for r in rows}))


@dataclass(frozen=True)
class FleetCheck:
    """Per source, the totals through the cluster and in one process, and whether the observations are equal."""

    ray: dict[str, SourceTotals]
    single: dict[str, SourceTotals]
    same_observations: bool
    seconds: float

    @property
    def passed(self) -> bool:
        return self.same_observations and self.ray == self.single and len(self.ray) == len(SAMPLE_PEOPLE)

    def table(self) -> str:
        lines = [f"{'source':<12} {'observations (Ray / one process)':>34} {'people (Ray / one process)':>28}"]
        for name in sorted(set(self.ray) | set(self.single)):
            r, s = self.ray.get(name, SourceTotals(0, 0)), self.single.get(name, SourceTotals(0, 0))
            lines.append(f"{name:<12} {f'{r.observations} / {s.observations}':>34} {f'{r.people} / {s.people}':>28}")
        ray_sum = [sum(t.observations for t in self.ray.values()), sum(t.people for t in self.ray.values())]
        single_sum = [sum(t.observations for t in self.single.values()), sum(t.people for t in self.single.values())]
        lines.append(f"{'total':<12} {f'{ray_sum[0]} / {single_sum[0]}':>34} {f'{ray_sum[1]} / {single_sum[1]}':>28}")
        return "\n".join(lines)


def sample_sources(folder: Path) -> dict[str, Path]:
    """The sample videos (the camera's frames come from ``camera.avi``)."""
    return {name: crossing_video(folder / (name if name.endswith(".avi") else f"{name}.avi"), people, FRAMES, FPS, SIZE)
            for name, people in SAMPLE_PEOPLE.items()}


def run_fleet_check(workers: int = 2, say: Callable[[str], None] = print, progress: bool = True,
                    interrupted: threading.Event | None = None) -> FleetCheck:
    """Start PostgreSQL and a Ray cluster of a head and ``workers`` worker nodes here, ingest the sample sources
    both ways, compare; everything started is stopped and deleted afterwards. ``interrupted``: set on Ctrl-C,
    which the Ray ingest ends cleanly on; the check then stops before the second ingest."""
    from moodlens.distributed.nodes import ray_nodes
    from moodlens.distributed.streams import ingest_streams_on_ray
    from moodlens.events.pgtemp import create_database, temporary_postgres
    from moodlens.events.stream_ingest import ingest_streams
    from moodlens.recognition.analyzer import Analyzer
    from moodlens.settings import VIDEO_DEFAULTS
    from moodlens.stream.mjpeg import MjpegServer, video_jpegs

    live = {"max_frames": FRAMES, "drop_late_frames": False}  # every camera frame analysed: comparable runs
    with tempfile.TemporaryDirectory(prefix="moodlens-fleet-") as tmp, temporary_postgres() as server:
        media = sample_sources(Path(tmp))
        videos = [path for name, path in media.items() if name != CAMERA]
        camera_frames = video_jpegs(media[CAMERA])
        db = create_database(server, "moodlens")
        say(f"throwaway PostgreSQL (deleted at the end): {db}")
        with EventStore(db) as store:
            store.create_event("ray")
            store.create_event("single")
        t = time.perf_counter()
        say(f"starting a Ray head and {workers} worker node(s) of 1 CPU each")
        with ray_nodes((0,) + (1,) * workers) as address, MjpegServer(camera_frames) as camera:
            say(f"ingesting {len(media)} sources through the Ray cluster at {address}")
            ingest_streams_on_ray(db, "ray", videos, [camera.url], address=address, progress=progress, **live)
            ray_camera = camera.url
        if interrupted is not None and interrupted.is_set():
            raise KeyboardInterrupt
        say("ingesting the same sources in this process")
        with EventStore(db) as store, MjpegServer(camera_frames) as camera:
            ingest_streams(store, "single", videos, [camera.url], Analyzer(VIDEO_DEFAULTS), progress=progress, **live)
            ray_rows = source_observations(store, "ray", {ray_camera: CAMERA})
            single_rows = source_observations(store, "single", {camera.url: CAMERA})
    return FleetCheck({k: SourceTotals.of(v) for k, v in ray_rows.items()},
                      {k: SourceTotals.of(v) for k, v in single_rows.items()}, ray_rows == single_rows,
                      round(time.perf_counter() - t, 1))


def report(check: FleetCheck) -> int:
    """Print the table and the verdict; the exit code: 0 when the check passed, 1 on any difference."""
    print(check.table())
    if check.passed:
        print(f"OK: every source has the same observations through Ray as in one process ({check.seconds} s)")
        return 0
    print("MISMATCH: the Ray ingest differs from the single-process ingest", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="Ray worker nodes of one CPU each")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    # Both ingests end cleanly on Ctrl-C and return what they committed: remember it, so that an interrupted
    # check is reported as such rather than as a difference.
    interrupted = threading.Event()

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        interrupted.set()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        check = run_fleet_check(args.workers, progress=not args.no_progress, interrupted=interrupted)
    except KeyboardInterrupt:
        interrupted.set()
    except Exception as exc:  # noqa: BLE001 - a missing PostgreSQL or Ray, a failed node: one line, exit 2
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    if interrupted.is_set():
        print("interrupted: the Ray nodes and PostgreSQL were stopped", file=sys.stderr)
        return 130
    return report(check)


if __name__ == "__main__":
    sys.exit(main())
