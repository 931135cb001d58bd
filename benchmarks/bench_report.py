"""Event report speed: build (read + aggregate), HTML (charts) and files for a large event.

    python benchmarks/bench_report.py                                  # 100,000 observations over 3 days
    python benchmarks/bench_report.py --observations 20000 --days 1 --repeats 1 --json out/bench_report.json

The event is written into a throwaway SQLite store (or ``--db URL``): two video sources whose people
are tracks of about 20 observations each and one photo folder (one observation per face), seen from
09:00 to 18:00 UTC on each day. Each repeat times, separately:

1. ``build_report``: reading the observations and aggregating them (totals, time bins, sources, peaks,
   privacy rules, model facts); the target is 2 s on 2 cores for 100,000 observations over 3 days;
2. ``render_html``: the self-contained page with its charts;
3. ``write_report``: report.json and the CSV tables.

Wall-clock and CPU times are printed (best and median of the repeats), with the machine and its load:
on a busy machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from machine import machine_facts

from moodlens.events.report import build_report
from moodlens.events.report_files import write_report
from moodlens.events.report_html import render_html
from moodlens.events.store import PROB_COLUMNS, EventStore

TARGET_S = 2.0
START = datetime(2025, 6, 2)


def fill_event(store: EventStore, name: str, observations: int, days: int, seed: int = 0) -> None:
    """``observations`` rows in 3 sources over ``days`` days, 09:00-18:00 each day."""
    rng = np.random.default_rng(seed)
    store.create_event(name, starts_at=START, ends_at=START + timedelta(days=days))
    plan = [("video", "entrance.mp4", 0.45, 20), ("video", "hall-camera.mp4", 0.45, 20),
            ("photos", "photographer", 0.10, 1)]
    for kind, label, share, per_track in plan:
        n = int(observations * share)
        tracks = max(1, n // per_track)
        src = store.open_source(name, kind, label, label=label)
        day = rng.integers(0, days, tracks)
        first = START + timedelta(hours=9)
        seconds = day * 86400 + rng.uniform(0, 9 * 3600, tracks)
        mood = rng.dirichlet(np.ones(7) * 0.7, tracks)
        track = np.arange(n) % tracks
        ts = seconds[track] + (np.arange(n) // tracks) * 0.5
        probs = 0.7 * mood[track] + 0.3 * rng.dirichlet(np.ones(7), n)
        rows = [{"frame": i, "ts": first + timedelta(seconds=float(ts[i])), "track": int(track[i]) + 1,
                 "box_w": 60, "box_h": 70, **dict(zip(PROB_COLUMNS, map(float, probs[i]), strict=True))}
                for i in range(n)]
        store.commit_batch(src.id, rows, n, True)


def timed(fn, *args, **kwargs):  # noqa: ANN001, ANN201 - any callable
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--observations", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--db", help="store URL (default: a throwaway SQLite file)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    facts = machine_facts(("numpy", "pandas", "matplotlib", "sqlalchemy"))
    print("machine:", json.dumps(facts))
    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore(args.db or Path(tmp) / "bench.db")
        name = f"bench-{args.observations}-{args.days}d-{time.time_ns()}"
        _, fill_s, _ = timed(fill_event, store, name, args.observations, args.days)
        print(f"event: {args.observations:,} observations over {args.days} days in 3 sources "
              f"(written in {fill_s:.1f} s)")
        times: dict[str, list[tuple[float, float]]] = {"build_report": [], "render_html": [], "write_report": []}
        report = None
        for _ in range(args.repeats):
            report, wall, cpu = timed(build_report, store, name)
            times["build_report"].append((wall, cpu))
            _, wall, cpu = timed(render_html, report)
            times["render_html"].append((wall, cpu))
            _, wall, cpu = timed(write_report, report, Path(tmp) / "out", "json,csv")
            times["write_report"].append((wall, cpu))
        store.delete_event(name)
        store.close()
    d = report.data
    print(f"report: {d['totals']['people']:,} people, {d['period']['bins']} bins of {d['period']['bin']}, "
          f"{len(d['sources'])} sources")
    print(f"\n{'step':<14} {'best wall s':>11} {'median wall s':>13} {'best CPU s':>10}")
    summary = {}
    for step, values in times.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        summary[step] = {"best_wall_s": round(min(walls), 3), "median_wall_s": round(statistics.median(walls), 3),
                         "best_cpu_s": round(min(cpus), 3)}
        print(f"{step:<14} {min(walls):>11.3f} {statistics.median(walls):>13.3f} {min(cpus):>10.3f}")
    build = summary["build_report"]["best_wall_s"]
    verdict = "meets" if build <= TARGET_S else "misses"
    print(f"\nbuild_report {verdict} the target of {TARGET_S:.0f} s (best of {args.repeats}: {build:.3f} s wall); "
          f"load average at start {facts.get('load_average_1min')}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": facts, "observations": args.observations, "days": args.days,
                                         "repeats": args.repeats, "people": d["totals"]["people"],
                                         "bins": d["period"]["bins"], "bin": d["period"]["bin"],
                                         "target_s": TARGET_S, "times": summary}, indent=2))


if __name__ == "__main__":
    main()
