"""Photos/s of ``moodlens analyze``: plain (one process) against the Ray pipeline with 1, 2, ... workers, on
the same folder in the same run, checking that every run finds the same faces; optionally live cameras sustained
through the Ray path, and the event store's write capacity with many writers (PostgreSQL).

    python benchmarks/bench_ray.py                                    # 16 photos, long side 1600 px
    python benchmarks/bench_ray.py --photos 200 --workers 1 2 4 --address auto
    python benchmarks/bench_ray.py --store-writers 1 4 16 32          # + PostgreSQL capacity (bench_events.py)
    python benchmarks/bench_ray.py --photos 0 --cameras 1 2 4 --camera-workers 1 2 --camera-seconds 20

The photos are scikit-image's astronaut (scaled, mirrored, cropped) plus one without a face; at the default
1280 px detection size, detection is most of the cost. A Ray run's time includes starting its actors (each
loads the model and the detector) but not starting the cluster, which is reported on its own.

Cameras: N live 640x480 MJPEG-over-HTTP cameras at ``--fps`` served from this process (bench_streams.py's
camera), each read for ``--camera-seconds``, ingested into a throwaway PostgreSQL: once in this process
(``ingest_streams``, the single-process multi-camera figure of bench_streams.py) and once through a Ray cluster
of separate nodes started here (``ray start``: a head that only coordinates and W worker nodes of one CPU each,
each pinned to its own core, so that W stands for W one-core machines), one actor per camera. Per run: frames
analysed and dropped per camera, and the observations (faces) stored.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test photos' generator
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine_facts  # noqa: E402
from recognition_media import photo_archive  # noqa: E402

from moodlens.distributed.cluster import LOCAL, ray_cluster, usable_cpus  # noqa: E402
from moodlens.distributed.photos import analyze_paths_on_ray  # noqa: E402
from moodlens.recognition.analyzer import Analyzer  # noqa: E402
from moodlens.settings import DEFAULTS  # noqa: E402

PACKAGES = ("numpy", "onnxruntime", "opencv-python-headless", "ray", "pyarrow")


def fingerprint(results) -> list:  # noqa: ANN001 - (path, Faces | ImageError) pairs
    """What must be equal between runs: per photo, the boxes and the class scores (or the error)."""
    return [(str(p), str(r)) if isinstance(r, Exception) else (str(p), r.boxes.tolist(), r.probs.tobytes())
            for p, r in results]


def bench_plain(folder: Path) -> tuple[dict, list]:
    t = time.perf_counter()
    analyzer = Analyzer(DEFAULTS)
    ready = time.perf_counter()
    results = list(analyzer.analyze_paths([folder]))
    done = time.perf_counter()
    return {"photos": len(results), "model_load_s": round(ready - t, 2), "analyse_s": round(done - ready, 2),
            "photos_per_s": round(len(results) / (done - ready), 2)}, fingerprint(results)


def bench_ray(folder: Path, workers: int) -> tuple[dict, list]:
    t = time.perf_counter()
    first = None
    results = []
    for item in analyze_paths_on_ray([folder], DEFAULTS, workers=workers):
        first = first or time.perf_counter()
        results.append(item)
    done = time.perf_counter()
    return {"workers": workers, "photos": len(results), "analyse_s": round(done - t, 2),
            "first_result_s": round(first - t, 2), "photos_per_s": round(len(results) / (done - t), 2)}, \
        fingerprint(results)


def bench_store(writers: list[int], seconds: float) -> list[dict]:
    """bench_events.py's PostgreSQL capacity run, once per writer count, on one throwaway server."""
    from bench_events import bench_db_capacity

    from moodlens.events.pgtemp import create_database, temporary_postgres

    with temporary_postgres(fsync=True, max_connections=max(50, 2 * max(writers) + 10)) as server:
        return [bench_db_capacity(create_database(server, f"capacity{n}"), writers=n, seconds=seconds)
                for n in writers]


def bench_photos(photos: int, side: int, workers: list[int], address: str) -> dict:
    """The plain run, then the Ray pipeline with each pool size, on one folder of photos."""
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = photo_archive(Path(tmp) / "photos", sizes=(side,) * photos, broken=False)
        out["plain"], expected = bench_plain(folder)
        print(f"plain: {out['plain']}", flush=True)
        t = time.perf_counter()
        with ray_cluster(address) as cluster:
            out["ray_cluster"] = {"address": cluster.address, "cpus": cluster.cpus, "nodes": cluster.nodes,
                                  "start_s": round(time.perf_counter() - t, 2)}
            print(f"ray cluster: {out['ray_cluster']}", flush=True)
            out["ray"] = []
            for pool in workers:
                run, found = bench_ray(folder, pool)
                run["same_faces_as_plain"] = found == expected
                run["speed_vs_plain"] = round(run["photos_per_s"] / out["plain"]["photos_per_s"], 2)
                out["ray"].append(run)
                print(f"ray: {run}", flush=True)
    return out


def camera_run(label: str, results: list, wall: float) -> dict:  # noqa: ANN001 - IngestResult list
    """One camera run's figures: per camera, frames analysed and dropped; observations (faces) stored."""
    analysed, dropped = [r.frames for r in results], [r.frames_dropped for r in results]
    return {"run": label, "cameras": len(results), "frames_analysed": analysed, "frames_dropped": dropped,
            "observations": sum(r.faces for r in results),
            "dropped_share": round(sum(dropped) / max(sum(analysed) + sum(dropped), 1), 4), "wall_s": round(wall, 1)}


def bench_cameras(counts: list[int], workers: list[int], seconds: float, fps: float, detect_every: int,
                  max_side: int) -> list[dict]:
    """Live cameras in one process, then through Ray clusters of 1, 2, ... one-core worker nodes."""
    from contextlib import ExitStack

    from bench_streams import camera_jpegs

    from moodlens.distributed.nodes import ray_nodes
    from moodlens.distributed.streams import ingest_streams_on_ray
    from moodlens.events.pgtemp import create_database, temporary_postgres
    from moodlens.events.store import EventStore
    from moodlens.events.stream_ingest import ingest_streams
    from moodlens.stream.mjpeg import MjpegServer

    analysis = DEFAULTS.with_(max_side=max_side)  # as bench_streams.py
    analyzer = Analyzer(analysis)
    frames = int(seconds * fps)
    live = {"max_frames": frames, "detect_every": detect_every}
    runs: list[dict] = []
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(usable_cpus()))
    with tempfile.TemporaryDirectory() as tmp, temporary_postgres() as server:
        jpegs = camera_jpegs(Path(tmp), seconds, fps, analyzer)
        db = create_database(server, "cameras")

        def run(label: str, n: int, ingest) -> None:  # noqa: ANN001 - (event, urls) -> results
            event = f"{label}-{n}".replace(" ", "-")
            with EventStore(db) as store:
                store.create_event(event)
            with ExitStack() as stack:
                urls = [stack.enter_context(MjpegServer(jpegs, fps=fps)).url for _ in range(n)]
                t = time.perf_counter()
                results = ingest(event, urls)
            runs.append(camera_run(label, results, time.perf_counter() - t))
            print(f"cameras: {runs[-1]}", flush=True)

        for n in counts:
            with EventStore(db) as store:
                run("one process", n, lambda event, urls, store=store: ingest_streams(
                    store, event, cameras=urls, analyzer=analyzer, progress=False, **live))
        for w in workers:
            pinned = [None] + [{cores[i % len(cores)]} for i in range(w)]
            with ray_nodes((0,) + (1,) * w, cores=pinned) as address:
                for n in counts:
                    run(f"ray {w} worker(s)", n, lambda event, urls, address=address: ingest_streams_on_ray(
                        db, event, cameras=urls, analysis=analysis, address=address, **live))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=16, help="photos with a face (one without is added)")
    parser.add_argument("--side", type=int, default=1600, help="long side of the photos, pixels")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray actor pool sizes to run")
    parser.add_argument("--address", default=LOCAL, help="Ray cluster (default: a local one, sized to the machine)")
    parser.add_argument("--store-writers", type=int, nargs="*", default=[],
                        help="also measure PostgreSQL write capacity with these numbers of writers")
    parser.add_argument("--store-seconds", type=float, default=10.0, help="timed seconds per store run")
    parser.add_argument("--cameras", type=int, nargs="*", default=[], help="also run this many live cameras")
    parser.add_argument("--camera-workers", type=int, nargs="+", default=[1, 2],
                        help="one-core Ray worker nodes for the camera runs")
    parser.add_argument("--camera-seconds", type=float, default=20.0, help="seconds read from each camera")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate of each camera")
    parser.add_argument("--detect-every", type=int, default=3, help="camera runs: detector on every Nth frame")
    parser.add_argument("--max-side", type=int, default=320, help="camera runs: detection size")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    out: dict = {"machine": machine_facts(PACKAGES)}
    print("machine:", "; ".join(f"{k}: {v}" for k, v in out["machine"].items()), flush=True)
    out["ray"] = []
    if args.photos > 0:
        out.update(bench_photos(args.photos, args.side, args.workers, args.address))
    if args.cameras:
        out["cameras"] = bench_cameras(args.cameras, args.camera_workers, args.camera_seconds, args.fps,
                                       args.detect_every, args.max_side)
    if args.store_writers:
        out["store_capacity"] = bench_store(args.store_writers, args.store_seconds)
        for run in out["store_capacity"]:
            print(f"store: {run}", flush=True)
    out["machine"]["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    if not all(run["same_faces_as_plain"] for run in out["ray"]):
        sys.exit("a Ray run found different faces than the plain run")


if __name__ == "__main__":
    main()
