"""Photos/s of ``moodlens analyze``: plain (one process) against the Ray pipeline with 1, 2, ... workers, on
the same folder in the same run, checking that every run finds the same faces; optionally the event store's
write capacity with many writers (PostgreSQL), for the streams that Ray runs in parallel.

    python benchmarks/bench_ray.py                                    # 16 photos, long side 1600 px
    python benchmarks/bench_ray.py --photos 200 --workers 1 2 4 --address auto
    python benchmarks/bench_ray.py --store-writers 1 4 16 32          # + PostgreSQL capacity (bench_events.py)

The photos are scikit-image's astronaut (scaled, mirrored, cropped) plus one without a face; at the default
1280 px detection size, detection is most of the cost. A Ray run's time includes starting its actors (each
loads the model and the detector) but not starting the cluster, which is reported on its own.
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

from moodlens.distributed.cluster import LOCAL, ray_cluster  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=16, help="photos with a face (one without is added)")
    parser.add_argument("--side", type=int, default=1600, help="long side of the photos, pixels")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray actor pool sizes to run")
    parser.add_argument("--address", default=LOCAL, help="Ray cluster (default: a local one, sized to the machine)")
    parser.add_argument("--store-writers", type=int, nargs="*", default=[],
                        help="also measure PostgreSQL write capacity with these numbers of writers")
    parser.add_argument("--store-seconds", type=float, default=10.0, help="timed seconds per store run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    out: dict = {"machine": machine_facts(PACKAGES)}
    print("machine:", "; ".join(f"{k}: {v}" for k, v in out["machine"].items()), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = photo_archive(Path(tmp) / "photos", sizes=(args.side,) * args.photos, broken=False)
        out["plain"], expected = bench_plain(folder)
        print(f"plain: {out['plain']}", flush=True)
        t = time.perf_counter()
        with ray_cluster(args.address) as cluster:
            out["ray_cluster"] = {"address": cluster.address, "cpus": cluster.cpus, "nodes": cluster.nodes,
                                  "start_s": round(time.perf_counter() - t, 2)}
            print(f"ray cluster: {out['ray_cluster']}", flush=True)
            out["ray"] = []
            for workers in args.workers:
                run, found = bench_ray(folder, workers)
                run["same_faces_as_plain"] = found == expected
                run["speed_vs_plain"] = round(run["photos_per_s"] / out["plain"]["photos_per_s"], 2)
                out["ray"].append(run)
                print(f"ray: {run}", flush=True)
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
