"""Event ingest throughput: frames/s of ``moodlens event ingest --video`` and PostgreSQL write rates.

    python benchmarks/bench_events.py                    # starts a throwaway PostgreSQL (needs `postgresql`)
    python benchmarks/bench_events.py --pg-url postgresql://user@host/db --frames 300

1. A 640x480, 25 fps video in which 1 to 3 faces (the astronaut photo) walk across a background is
   ingested into SQLite: in-process (steady state, model already loaded) and through the CLI (end to end,
   including start-up).
2. Four ``moodlens event ingest --video`` processes write into one PostgreSQL database at once: the
   observations/s they hold together (bound by analysis on a small machine).
3. Four writers commit synthetic observation batches into PostgreSQL as fast as they can: the
   database's own write capacity, without analysis.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test videos' generator

from events_media import Crossing, make_video  # noqa: E402
from machine import machine_facts  # noqa: E402

from moodlens.events.pgtemp import create_database, temporary_postgres  # noqa: E402
from moodlens.events.store import PROB_COLUMNS, EventStore  # noqa: E402
from moodlens.events.stream_ingest import ingest_video  # noqa: E402
from moodlens.recognition.analyzer import Analyzer  # noqa: E402

FPS = 25.0


def crowd_video(path: Path, frames: int, seed: int = 0) -> Path:
    """1-3 faces at any time: three lanes of people crossing in 2.4 s; lane 0 is never empty."""
    rng = np.random.default_rng(seed)
    crossings = []
    for lane, y in enumerate((20, 175, 330)):
        start = 0 if lane == 0 else int(rng.integers(10, 60))
        while start < frames:
            crossings.append(Crossing(start, min(start + 60, frames), y=y, left_to_right=lane % 2 == 0,
                                      mirror=lane == 1))
            start += 60 + (0 if lane == 0 else int(rng.integers(5, 40)))
    return make_video(path, crossings, frames=frames, fps=FPS)


def moodlens_cmd() -> list[str]:
    script = Path(sys.executable).parent / "moodlens"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from moodlens.cli import app; app()"]


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_single(video: Path, frames: int, tmp: Path) -> dict:
    store = EventStore(tmp / "single.db")
    store.create_event("inproc")
    analyzer = Analyzer()
    analyzer.analyze(np.zeros((480, 640, 3), np.uint8))  # warm-up
    t, cpu = time.perf_counter(), time.process_time()
    result = ingest_video(store, "inproc", video, analyzer=analyzer, progress=False)
    steady, steady_cpu = time.perf_counter() - t, time.process_time() - cpu
    store.create_event("cli")
    t, cpu = time.perf_counter(), children_cpu_s()
    subprocess.run([*moodlens_cmd(), "event", "ingest", "cli", "--video", str(video), "--db", str(tmp / "single.db"),
                    "--no-progress"], check=True, capture_output=True)
    end_to_end, cli_cpu = time.perf_counter() - t, children_cpu_s() - cpu
    faces = store.observations("inproc")
    per_frame = faces.groupby("frame").size().reindex(range(frames), fill_value=0)
    store.close()
    return {"frames": frames, "faces": result.faces, "faces_per_frame_min_max": [int(per_frame.min()),
                                                                                  int(per_frame.max())],
            "steady_frames_per_s": round(frames / steady, 2),
            "steady_cpu_ms_per_frame": round(1000 * steady_cpu / frames, 1),
            "cli_end_to_end_s": round(end_to_end, 2), "cli_frames_per_s_incl_startup": round(frames / end_to_end, 2),
            "cli_cpu_s": round(cli_cpu, 2)}


def bench_concurrent_ingest(videos: list[Path], frames: int, url: str) -> dict:
    store = EventStore(url)
    store.create_event("concurrent")
    t, cpu = time.perf_counter(), children_cpu_s()
    procs = [subprocess.Popen([*moodlens_cmd(), "event", "ingest", "concurrent", "--video", str(v), "--db", url,
                               "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for v in videos]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise RuntimeError(err.decode())
    wall, used = time.perf_counter() - t, children_cpu_s() - cpu
    df = store.observations("concurrent")
    store.close()
    return {"processes": len(videos), "frames": len(videos) * frames, "observations": len(df),
            "wall_s": round(wall, 2), "observations_per_s": round(len(df) / wall, 1),
            "frames_per_s_all_processes": round(len(videos) * frames / wall, 2), "cpu_s_all_processes": round(used, 1)}


def bench_db_capacity(url: str, writers: int = 4, seconds: float = 10.0, batch: int = 50) -> dict:
    """Each writer commits ``batch`` observations per transaction (a second of 2 faces at 25 fps)."""
    store = EventStore(url)
    store.create_event("capacity")
    sources = [store.open_source("capacity", "camera", f"camera:{i}") for i in range(writers)]
    probs = dict(zip(PROB_COLUMNS, [1 / 7] * 7, strict=True))
    counts = [0] * writers
    stop = time.perf_counter() + seconds

    def write(i: int) -> None:
        frame, t0 = 0, datetime(2025, 1, 1)
        while time.perf_counter() < stop:
            rows = [{"frame": frame + k // 2, "ts": t0 + timedelta(seconds=(frame + k // 2) / FPS), "track": k % 2,
                     "box_w": 80, "box_h": 100, **probs} for k in range(batch)]
            frame += batch // 2
            store.commit_batch(sources[i].id, rows, frame)
            counts[i] += batch

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    assert store.data_version("capacity")[0] == sum(counts)
    store.close()
    return {"writers": writers, "batch": batch, "observations": sum(counts),
            "observations_per_s": round(sum(counts) / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150, help="frames of the single-ingest video (25 fps)")
    parser.add_argument("--concurrent-frames", type=int, default=75, help="frames of each concurrent video")
    parser.add_argument("--pg-url", help="PostgreSQL database to use (default: start a throwaway server)")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` still stops the throwaway server

    out: dict = {"machine": machine_facts(("numpy", "onnxruntime", "opencv-python-headless", "sqlalchemy", "psycopg"))}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        video = crowd_video(tmp / "crowd.avi", args.frames)
        out["single_ingest_640x480"] = bench_single(video, args.frames, tmp)
        print(json.dumps(out, indent=2), flush=True)
        if not args.skip_postgres:
            videos = [crowd_video(tmp / f"cam{i}.avi", args.concurrent_frames, seed=i) for i in range(4)]
            if args.pg_url:
                out["postgres_4_ingests"] = bench_concurrent_ingest(videos, args.concurrent_frames, args.pg_url)
                out["postgres_capacity"] = bench_db_capacity(args.pg_url)
            else:
                with temporary_postgres(fsync=True) as server:
                    out["postgres_4_ingests"] = bench_concurrent_ingest(videos, args.concurrent_frames,
                                                                        create_database(server, "bench1"))
                    out["postgres_capacity"] = bench_db_capacity(create_database(server, "bench2"))
            out["machine"]["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
